import { stringifyJson } from '../../core/json.ts';
import type { Runtime } from '../../runtime/port.ts';
import type { Workspace } from '../../runtime/workspace.ts';
import { type LiveState, type Snapshot, snapshot } from './views.ts';

export type LiveOptions = {
  /** Snapshots are read at most this often, however many events arrive. @defaultValue 400 */
  minIntervalMs?: number;
  /**
   * While a page listens, a snapshot is read this often anyway, for runs of other processes (sent
   * only when it differs from the last one). @defaultValue 2000
   */
  refreshMs?: number;
  now?: () => number;
};

/** What a listening page gets: an event name and its JSON text; `end` when the feed closes. */
export type Listener = (event: 'snapshot' | 'error' | 'end', data: string) => void;

/**
 * The dashboard's live feed. The runtime's events (a run starting, a batch saved, a run ending, a
 * chain breaking) mark the picture stale; one snapshot is then read from the store — at once, or
 * `minIntervalMs` after the last one — and sent to every listening page. However many syncs and
 * pages, the store is read at most once per interval, never once per page or per event. Runs of
 * other processes sharing the store (`sluice worker`, a CLI backfill) send no events here: while a
 * page listens, a snapshot is also read every `refreshMs`, and sent when something in it moved.
 */
export class LiveFeed {
  readonly state: LiveState = { progress: new Map(), chainBroken: new Map() };
  private readonly listeners = new Set<Listener>();
  private readonly minIntervalMs: number;
  private readonly refreshMs: number;
  private readonly now: () => number;
  private lastReadAt = 0;
  private reading: Promise<void> | null = null;
  private stale = false;
  /** A runtime event came since the last snapshot was read. */
  private eventSinceRead = false;
  /** What the last snapshot sent said, its clock and lags aside; and when it was sent. */
  private lastSent: { signature: string; at: number } | null = null;
  private timer: NodeJS.Timeout | null = null;
  private refresher: NodeJS.Timeout | null = null;
  private last: { at: number; text: string } | null = null;
  private readonly ws: Workspace;

  constructor(ws: Workspace, runtime: Runtime, options: LiveOptions = {}) {
    this.ws = ws;
    this.minIntervalMs = options.minIntervalMs ?? 400;
    this.refreshMs = options.refreshMs ?? 2_000;
    this.now = options.now ?? Date.now;
    runtime.on('run:start', ({ request }) => {
      this.state.chainBroken.delete(request.sync);
      this.touch();
    });
    runtime.on('run:progress', (p) => {
      this.state.progress.set(p.sync, {
        sync: p.sync,
        runId: p.runId,
        phase: p.phase,
        run: p.run,
        backfillDone: p.backfillDone,
        backfillEstimate: p.backfillEstimate,
        estimateExact: p.estimateExact,
        rate: p.rate,
        etaMs: p.etaMs,
        elapsedMs: p.elapsedMs,
        at: this.now(),
      });
      this.touch();
    });
    runtime.on('run:end', ({ request }) => {
      this.state.progress.delete(request.sync);
      this.touch();
    });
    runtime.on('chain:broken', ({ sync, reason }) => {
      this.state.chainBroken.set(sync, reason);
      this.touch();
    });
  }

  /**
   * Adds a page: it gets the current snapshot at once (unless it already has it: `since` is the
   * `now` of the snapshot it holds), then every change. Returns its removal.
   */
  listen(listener: Listener, since?: number): () => void {
    this.listeners.add(listener);
    if (!this.refresher) {
      this.refresher = setInterval(() => {
        if (this.now() - this.lastReadAt >= this.refreshMs - 50) this.schedule();
      }, this.refreshMs);
      this.refresher.unref();
    }
    const age = this.last ? this.now() - this.last.at : Number.POSITIVE_INFINITY;
    // The page holds the last snapshot and no event came since: it waits for the next change.
    if (this.last?.at === since && !this.eventSinceRead && age < this.refreshMs)
      return this.remover(listener);
    if (age < this.minIntervalMs) listener('snapshot', this.last!.text);
    else this.touch();
    return this.remover(listener);
  }

  private remover(listener: Listener): () => void {
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopTimers();
    };
  }

  /** The current picture, read now. */
  async read(): Promise<Snapshot> {
    return snapshot(this.ws, this.state, this.now());
  }

  /** The current picture as JSON text: the last one sent if it is fresh, else read now (a page's first load). */
  async text(): Promise<string> {
    if (this.last && this.now() - this.last.at < this.minIntervalMs) return this.last.text;
    this.eventSinceRead = false;
    const snap = await this.read();
    const text = stringifyJson(snap);
    this.last = { at: snap.now, text };
    return text;
  }

  get listening(): number {
    return this.listeners.size;
  }

  /** Ends every page's stream (the server is closing) and stops reading. */
  close(): void {
    this.stopTimers();
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const listener of listeners) listener('end', '');
  }

  private stopTimers(): void {
    if (this.refresher) clearInterval(this.refresher);
    if (this.timer) clearTimeout(this.timer);
    this.refresher = null;
    this.timer = null;
  }

  /** An event marks the picture stale; a snapshot follows within `minIntervalMs` (if a page listens). */
  private touch(): void {
    this.eventSinceRead = true;
    this.schedule();
  }

  private schedule(): void {
    if (this.listeners.size === 0) return;
    this.stale = true;
    if (this.reading || this.timer) return;
    const wait = Math.max(0, this.lastReadAt + this.minIntervalMs - this.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.reading = this.send().finally(() => {
        this.reading = null;
        if (this.stale) this.schedule();
      });
    }, wait);
  }

  private async send(): Promise<void> {
    this.stale = false;
    this.lastReadAt = this.now();
    let text: string;
    let signature: string;
    const byEvent = this.eventSinceRead;
    try {
      this.eventSinceRead = false;
      const snap = await this.read();
      this.lastReadAt = snap.now;
      text = stringifyJson(snap);
      signature = stringifyJson({ ...snap, now: 0, syncs: snap.syncs.map((s) => ({ ...s, lagMs: null })) });
    } catch (err) {
      // The store is busy or closed: the pages say so and the next event or refresh tries again.
      this.broadcast('error', stringifyJson({ error: (err as Error).message }));
      return;
    }
    this.last = { at: this.lastReadAt, text };
    // A refresh that found nothing moved sends nothing (but lags go on growing: once in 30 s).
    const unchanged = this.lastSent?.signature === signature && this.lastReadAt - this.lastSent.at < 30_000;
    if (!byEvent && unchanged) return;
    this.lastSent = { signature, at: this.lastReadAt };
    this.broadcast('snapshot', text);
  }

  private broadcast(event: 'snapshot' | 'error', data: string): void {
    for (const listener of this.listeners) listener(event, data);
  }
}
