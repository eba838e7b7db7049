import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { asSluiceError, SluiceError } from '../../core/errors.ts';
import { currentHolder } from '../../core/holder.ts';
import {
  type Claim,
  type ClaimedRequest,
  type ClaimOptions,
  claimOf,
  type NewRunRequest,
  type RunEnd,
  type RunQueue,
  type RunRecord,
  type RunRequest,
} from '../../core/ports.ts';
import type { Json, RunTrigger } from '../../core/types.ts';
import { endedFields, executeRequest, type RequestEnd } from '../execute.ts';
import { bundleIndex, laneOf } from '../lanes.ts';
import type { Runtime, RuntimeEvents } from '../port.ts';
import { Scheduler } from '../scheduler.ts';
import { Ticks } from '../ticks.ts';
import type { Workspace } from '../workspace.ts';

export type LocalRuntimeOptions = {
  /** Runs at once across all lanes. @defaultValue config `runtime.concurrency` */
  concurrency?: number;
  /** Queue poll interval besides being woken. @defaultValue config `runtime.poll` */
  pollMs?: number;
  /** Grace after maxRunDuration before a run is aborted. @defaultValue config `runtime.grace` */
  graceMs?: number;
  holder?: string;
};

const PRUNE_EVERY_MS = 3_600_000;
// Each sync keeps at least its newest runs, whatever their age: status and lag read them.
const KEEP_RUNS = 100;

/** A request settled: what its end claimed for the slots it freed, and the successor it queued. */
type Settled = { claimed: ClaimedRequest[]; next: NewRunRequest | undefined };

/**
 * A run under way: its claim on the request, its run once recorded, the promise that ends with it,
 * and whether it began (one claimed at its predecessor's end waits for that run to be told ended).
 */
type InFlight = { claim: Claim; done: Promise<void>; run: RunRecord | null; began: boolean };

// A run whose sync is busy elsewhere (a CLI run, another lane) waits this long before trying again.
const BUSY_RETRY_MS = 250;

/**
 * The in-process runtime on the embedded store: a durable queue in the store's SQLite file, lanes
 * that run one request at a time, schedules, and the rerun and retry policies of core/policy.
 */
export class LocalRuntime extends EventEmitter<RuntimeEvents> implements Runtime {
  private readonly ws: Workspace;
  private readonly queue: RunQueue;
  private readonly concurrency: number;
  private readonly pollMs: number;
  private readonly graceMs: number;
  private readonly holder: string;
  private readonly bundles: Map<string, string>;
  private readonly leaseMs: number;
  private readonly scheduler = new Scheduler();
  private readonly ticks: Ticks;
  /** Runs under way, by claim (a request claimed again after a freeze is another entry). */
  private readonly inFlight = new Map<string, InFlight>();
  private readonly stopController = new AbortController();
  /** Aborted when a shutdown's grace runs out: the runs still going stop at once. */
  private readonly killController = new AbortController();
  private renewals: NodeJS.Timeout | null = null;
  private pruning: NodeJS.Timeout | null = null;
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  private loopDone: Promise<void> | null = null;

  constructor(ws: Workspace, options: LocalRuntimeOptions = {}) {
    super();
    if (!ws.store.queue) {
      throw new SluiceError(
        'RUNTIME_NEEDS_QUEUE',
        'the local runtime keeps its queue in the embedded SQLite store; set store to a SQLite path',
      );
    }
    this.ws = ws;
    this.queue = ws.store.queue;
    const runtime = ws.config.config.runtime;
    this.concurrency = options.concurrency ?? runtime.concurrency;
    this.pollMs = options.pollMs ?? runtime.poll;
    this.graceMs = options.graceMs ?? runtime.grace;
    this.holder = options.holder ?? currentHolder();
    this.leaseMs = runtime.lease;
    this.bundles = bundleIndex(ws.config.config.bundles);
    const queue = this.queue;
    this.ticks = new Ticks(ws, this.bundles, {
      busy: async (sync) => (await queue.pending(sync)).length > 0,
      nextAttempt: async (sync) => {
        const last = await queue.lastFinished(sync);
        // A failed request's attempt is its failure's attempt at the batch now at the checkpoint.
        return last?.status === 'failed' ? last.attempt + 1 : 1;
      },
      enqueue: async (request) => {
        await queue.enqueue(request);
        this.wake();
      },
    });
  }

  async start(): Promise<void> {
    await this.queue.recover();
    for (const name of this.ws.syncNames()) await this.ticks.continueChain(name, 'recovery');

    this.ticks.schedule(this.scheduler, (sync, tick) => () => {
      if (this.stopping) return;
      tick().catch((err) => this.report(sync, err));
    });
    // The requests this process runs keep their lease while they run; a dead process's lapse.
    this.renewals = setInterval(() => this.renewLeases(), Math.max(10, Math.floor(this.leaseMs / 3)));
    this.renewals.unref();
    this.prune();
    this.pruning = setInterval(() => this.prune(), PRUNE_EVERY_MS);
    this.pruning.unref();
    this.loopDone = this.loop();
  }

  /** History past `runtime.retention` goes, so the store and its per-poll queries stay small. */
  private prune(): void {
    const { retention } = this.ws.config.config.runtime;
    this.ws.store.prune(Date.now() - retention, KEEP_RUNS).catch((err) => this.report(null, err));
  }

  private renewLeases(): void {
    for (const { claim, run, began } of this.inFlight.values()) {
      this.queue.renew(claim, this.leaseMs).catch((err) => this.report(null, err));
      // A run recorded by its claim but not begun yet has no heartbeat of its own.
      if (run && !began)
        this.ws.store.renewRun(run.id, run.holder, this.leaseMs).catch((err) => this.report(run.sync, err));
    }
  }

  /** An error the runtime could not act on: an event for listeners (a host), a line on stderr otherwise. */
  private report(sync: string | null, err: unknown): void {
    const error = asSluiceError(err);
    if (this.listenerCount('error') > 0) this.emit('error', { sync, error });
    else process.stderr.write(`sluice runtime: ${sync ? `${sync}: ` : ''}${error.code}: ${error.message}\n`);
  }

  async request(
    sync: string,
    options: { trigger?: RunTrigger; payload?: Json | null } = {},
  ): Promise<RunRequest> {
    this.ws.sync(sync);
    const trigger = options.trigger ?? 'api';
    const request = await this.queue.enqueue({
      sync,
      lane: laneOf(sync, this.bundles, trigger),
      trigger,
      payload: options.payload ?? null,
    });
    this.wake();
    return request;
  }

  /**
   * Stops taking runs and lets the batches in hand finish and checkpoint, for `timeoutMs` at most
   * (`runtime.grace` by default). Past it the runs still going are stopped at once: recorded
   * `abandoned` with the reason, their requests put back in the queue (the next start resumes them
   * from their checkpoints). Resolves true when everything finished within the grace.
   */
  async stop(options: { timeoutMs?: number } = {}): Promise<boolean> {
    if (this.stopping) return true;
    this.stopping = true;
    this.scheduler.stop();
    this.stopController.abort();
    this.wake();
    const drained = this.drain();
    const timeoutMs = options.timeoutMs ?? this.graceMs;
    const clean = await Promise.race([drained.then(() => true), sleep(timeoutMs, false, { ref: false })]);
    if (!clean) {
      this.killController.abort(
        new SluiceError(
          'RUN_KILLED',
          `the process stopped and its shutdown grace of ${timeoutMs} ms ran out`,
        ),
      );
      const settled = await Promise.race([drained.then(() => true), sleep(2_000, false, { ref: false })]);
      // A run that ignores even that (a `map` awaiting something that never ends) is ended here:
      // recorded abandoned, its request back in the queue; the process may exit under it.
      if (!settled) await this.abandonInFlight(timeoutMs);
    }
    if (this.renewals) clearInterval(this.renewals);
    if (this.pruning) clearInterval(this.pruning);
    return clean;
  }

  /** Until no run is under way: a run's end may have launched the next before the stop was seen. */
  private async drain(): Promise<void> {
    await this.loopDone;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight.values()].map((r) => r.done));
  }

  private wake(): void {
    this.wakeUp?.();
  }

  private async loop(): Promise<void> {
    let recoveredAt = 0;
    while (!this.stopping) {
      try {
        // A lane whose holder died (its lease ran out, or its process is gone) is taken over here,
        // within one poll: its request goes back in the queue and resumes from the checkpoint.
        if (Date.now() - recoveredAt >= this.pollMs) {
          recoveredAt = Date.now();
          const recovered = await this.queue.recover();
          if (recovered.length > 0) this.emit('recovered', { requests: recovered });
        }
        const free = this.concurrency - this.inFlight.size;
        if (free > 0) {
          const claimed = await this.queue.claim(this.claimOptions(free));
          for (const taken of claimed) this.launch(taken);
          // Fewer than asked for: nothing else is claimable until a run ends or a request falls due.
          if (claimed.length === free) continue;
        }
      } catch (err) {
        // The store is busy or unwell: say so and try again at the next poll, never die undrained.
        this.report(null, err);
      }
      const waitMs = await this.untilNextDue();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = null;
    }
  }

  private async abandonInFlight(graceMs: number): Promise<void> {
    const reason = `the process stopped and its shutdown grace of ${graceMs} ms ran out; the run ignored its abort`;
    for (const { claim, run } of this.inFlight.values()) await this.putBack(claim, run, 'RUN_KILLED', reason);
  }

  /** A request back in the queue, its run (where one was recorded) ended `abandoned` with the reason. */
  private async putBack(claim: Claim, run: RunRecord | null, code: string, reason: string): Promise<void> {
    try {
      if (run) {
        await this.ws.store.finishRun(run.id, {
          holder: run.holder,
          status: 'abandoned',
          more: true,
          errorCode: code,
          errorMessage: reason,
        });
      }
      await this.queue.release(claim, Date.now());
    } catch (err) {
      this.report(run?.sync ?? null, err);
    }
  }

  /** A poll, or less where a queued request falls due sooner (a retry's backoff, a busy lane's wait). */
  private async untilNextDue(): Promise<number> {
    const next = await this.queue.nextDue(this.holder).catch(() => null);
    return next === null ? this.pollMs : Math.min(this.pollMs, Math.max(1, next - Date.now()));
  }

  /**
   * What a run's end claims with its request's end: the slot it frees and any other free one, so
   * everything due for this process's slots is claimed and the loop need not be woken; nothing once
   * the runtime stops.
   */
  private refill(): { claim?: ClaimOptions } {
    const limit = this.stopping ? 0 : this.concurrency - this.inFlight.size + 1;
    return limit > 0 ? { claim: this.claimOptions(limit) } : {};
  }

  /**
   * A claim of up to `limit` requests that records each one's run as it takes it: the run holds its
   * lane from the claim on, and the claim and the run's start are one write. A request whose sync
   * is no longer in the config is claimed without a run, to be cancelled.
   */
  private claimOptions(limit: number): ClaimOptions {
    return {
      holder: this.holder,
      leaseMs: this.leaseMs,
      limit,
      start: (request) =>
        this.ws.hasSync(request.sync) ? this.ws.runStartOf(request.sync, request.trigger) : null,
    };
  }

  /**
   * Takes a claimed request under way: counted against `concurrency`, its leases renewed and seen by
   * `stop` from now on. It begins once `after` settles (its predecessor's end told, so a lane's
   * events stay in order), or is put back if the runtime stopped meanwhile.
   */
  private launch({ request, run, refused }: ClaimedRequest, after?: Promise<void>): void {
    const key = `${request.id}@${request.startedAt}`;
    const claim = claimOf(request);
    const begin = async (): Promise<boolean> => {
      await after;
      const entry = this.inFlight.get(key);
      if (this.stopping) {
        const why = 'the runtime stopped before this run began; its request is back in the queue';
        await this.putBack(claim, run, 'RUNTIME_STOPPED', why);
        return false;
      }
      if (entry) entry.began = true;
      return this.execute(request, run, refused, (started) => {
        if (entry) entry.run = started;
      });
    };
    const done = begin()
      .catch((err) => {
        this.report(request.sync, err);
        return false;
      })
      .then((handedOn) => {
        this.inFlight.delete(key);
        // A slot the run's end did not take again is the loop's to fill.
        if (!handedOn) this.wake();
      });
    this.inFlight.set(key, { claim, done, run, began: false });
  }

  /**
   * Runs a claimed request (its run recorded by the claim, or refused there) and settles it. True
   * when its end also claimed what was due for the slot it frees (and launched it), so the loop has
   * nothing to look for.
   */
  private async execute(
    request: RunRequest,
    run: RunRecord | null,
    refused: SluiceError | null,
    onStart: (run: RunRecord) => void,
  ): Promise<boolean> {
    const startedAt = Date.now();
    this.emit('run:start', {
      request,
      laneWaitMs: Math.max(
        0,
        (request.startedAt ?? startedAt) - Math.max(request.createdAt, request.notBefore),
      ),
    });
    if (!this.ws.hasSync(request.sync)) {
      await this.queue.finish(claimOf(request), {
        status: 'cancelled',
        errorCode: 'SYNC_UNKNOWN',
        errorMessage: `no sync named "${request.sync}" in the config`,
      });
      return false;
    }
    // What this run's end claims begins once the end is told, whatever happens in between.
    const told = Promise.withResolvers<void>();
    try {
      return await this.runAndSettle(request, run, refused, onStart, told.promise, startedAt);
    } finally {
      told.resolve();
    }
  }

  private async runAndSettle(
    request: RunRequest,
    run: RunRecord | null,
    refused: SluiceError | null,
    onStart: (run: RunRecord) => void,
    toldEnd: Promise<void>,
    startedAt: number,
  ): Promise<boolean> {
    const claim = claimOf(request);
    // Set where the run's end settled the request in the same write (see `settle`).
    let settledAtEnd: Settled | null = null;
    const end: RequestEnd = refused
      ? { kind: 'busy', error: refused }
      : await executeRequest(this.ws, request, {
          stop: this.stopController.signal,
          kill: this.killController.signal,
          graceMs: this.graceMs,
          bundles: this.bundles,
          run,
          onStart,
          onProgress: (p) => this.emit('run:progress', p),
          // A run that succeeds ends with its request, its successor and the next claim: one write.
          settle: async (ran, runEnd, successor) => {
            const next = successor.next ?? undefined;
            const settled = await this.endRequest(claim, { status: 'done', runId: ran.id }, next, toldEnd, {
              id: ran.id,
              end: runEnd,
            });
            if (settled.ended) settledAtEnd = { claimed: settled.claimed, next };
            return { run: settled.run!, settled: settled.ended !== null };
          },
        });
    // What the run's end claimed is under way already, even if the run's outcome was lost after (a
    // deadline that fired meanwhile).
    const done = settledAtEnd as Settled | null;
    const { claimed, next } = done ?? (await this.settle(claim, end, toldEnd));
    // The loop has nothing to look for only where the lane went on at once: a lane left free, or a
    // successor due later, changes when it must next look (a request of this lane due later was
    // not waited for while the lane ran).
    const handedOn =
      claimed.some((taken) => taken.request.lane === request.lane) && (next?.notBefore ?? 0) <= Date.now();
    // A partitioned backfill's partitions, each a request of its own where none waits or runs.
    if (end.kind === 'succeeded') await this.ticks.enqueueIdle(end.successor.partitions ?? []);
    this.emit('run:end', { request, durationMs: Date.now() - startedAt, ...endedFields(end) });
    // (A failure told after its request was settled as done queued no chain to break.)
    if ((end.kind === 'succeeded' || (end.kind === 'failed' && !done)) && end.successor.broken !== null)
      this.emit('chain:broken', { sync: request.sync, reason: end.successor.broken });
    return handedOn;
  }

  /**
   * Ends a request with its successor (and its run's end, where given) and claims what is due for
   * the slots it frees, all in one write; what it claimed is under way at once and begins once
   * `toldEnd` settles.
   */
  private async endRequest(
    claim: Claim,
    end: Parameters<RunQueue['finish']>[1],
    next: NewRunRequest | undefined,
    toldEnd: Promise<void>,
    run?: { id: number; end: RunEnd },
  ): ReturnType<RunQueue['finish']> {
    const settled = await this.queue.finish(claim, end, { next, ...(run ? { run } : {}), ...this.refill() });
    for (const taken of settled.claimed) this.launch(taken, toldEnd);
    return settled;
  }

  /** Settles a request its run's end did not: ended (with its successor and the next claim) or put back. */
  private async settle(claim: Claim, end: RequestEnd, toldEnd: Promise<void>): Promise<Settled> {
    switch (end.kind) {
      case 'succeeded':
      case 'failed': {
        const next = end.successor.next ?? undefined;
        const settled = await this.endRequest(
          claim,
          end.kind === 'succeeded'
            ? { status: 'done', runId: end.run.id }
            : {
                status: 'failed',
                runId: end.run?.id ?? null,
                errorCode: end.error.code,
                errorMessage: end.error.message,
                attempt: end.attempt,
              },
          next,
          toldEnd,
        );
        return { claimed: settled.claimed, next };
      }
      case 'killed':
        // Back in the queue, to resume at the next start.
        await this.queue.release(claim, Date.now());
        return { claimed: [], next: undefined };
      case 'busy':
        // A CLI run of the sync, or of another sync in its bundle: try again shortly.
        await this.queue.release(claim, Date.now() + BUSY_RETRY_MS);
        return { claimed: [], next: undefined };
    }
  }
}
