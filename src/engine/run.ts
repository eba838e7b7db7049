import { setImmediate } from 'node:timers/promises';
import { asSluiceError, SluiceError } from '../core/errors.ts';
import type {
  BatchCommit,
  Checkpoint,
  NativeLocation,
  RunContext,
  RunRecord,
  Source,
  Store,
  Target,
} from '../core/ports.ts';
import {
  addCounters,
  type Counters,
  type Cursor,
  type Json,
  type Page,
  type Phase,
  type Row,
  type RunTrigger,
  type WriteResult,
  zeroCounters,
} from '../core/types.ts';
import { etaOf, type Progress, rateOf } from './progress.ts';
import { deadLetter, mapRecords } from './records.ts';

/** What the engine needs to know of a sync; the config layer resolves it. */
export type RunSpec = {
  name: string;
  /** The key fields, to name dead-lettered records. */
  key: readonly string[];
  batchSize: number;
  maxRunDurationMs: number;
  lookbackMs: number;
  map: ((record: Row, ctx: RunContext) => Row | null | undefined | Promise<Row | null | undefined>) | null;
};

export type RunOptions = {
  spec: RunSpec;
  source: Source;
  target: Target;
  store: Store;
  trigger: RunTrigger;
  holder: string;
  /** The lane the run holds (its bundle's), so no other run of the bundle starts meanwhile. */
  lane?: string | null;
  /** Graceful stop: no new batch is started, the batch in hand finishes and is checkpointed. */
  stop?: AbortSignal;
  /** A run still going after its budget plus this grace is aborted and recorded `timed_out`. @defaultValue 60000 */
  graceMs?: number;
  /** End the run when the backfill completes rather than going on into incremental. */
  stopAfterBackfill?: boolean;
  /** What the run was triggered with (a webhook's body, say); `map` sees it as `ctx.payload`. */
  payload?: Json | null;
  /**
   * The batch at the checkpoint failed too often: read it, dead-letter every record in it with this
   * reason instead of writing it, and go on from there.
   */
  skipFirstBatch?: { reason: string };
  now?: () => number;
  onProgress?: (progress: Progress) => void;
};

export type RunOutcome = {
  run: RunRecord;
  checkpoint: Checkpoint;
  /** The run stopped with work left: its budget was spent, or it was stopped. */
  more: boolean;
};

/**
 * One run: read a batch → map → write → checkpoint, until the budget is spent or the phase has no
 * more to give. A checkpoint is saved only after the target confirmed the batch, so a crash at any
 * instant replays at most the batch in hand, which the idempotent target absorbs.
 */
export async function executeRun(options: RunOptions): Promise<RunOutcome> {
  const { spec, store } = options;
  const now = options.now ?? Date.now;
  const graceMs = options.graceMs ?? 60_000;
  const leaseMs = spec.maxRunDurationMs + graceMs;
  const run = await store.startRun({
    sync: spec.name,
    trigger: options.trigger,
    phase: (await store.getCheckpoint(spec.name))?.phase ?? 'backfill',
    holder: options.holder,
    leaseMs,
    lane: options.lane ?? null,
  });
  // Read once the run is ours: a run that ended meanwhile may have moved the checkpoint.
  const existing = await store.getCheckpoint(spec.name);
  // The graceful `stop` only keeps new batches from starting; this deadline aborts the batch in hand.
  const deadline = AbortSignal.timeout(leaseMs);
  try {
    const loop = new RunLoop(options, run, deadline, now, leaseMs);
    const checkpoint = await loop.execute(existing);
    const finished = await store.finishRun(run.id, { status: 'succeeded', more: loop.more });
    return { run: finished, checkpoint, more: loop.more };
  } catch (err) {
    const timedOut = deadline.aborted;
    const error = timedOut
      ? new SluiceError(
          'RUN_TIMED_OUT',
          `run exceeded maxRunDuration plus ${graceMs} ms of grace and was aborted`,
          { cause: err },
        )
      : asSluiceError(err);
    await store.finishRun(run.id, {
      status: timedOut ? 'timed_out' : 'failed',
      more: true,
      errorCode: error.code,
      errorMessage: error.message,
    });
    throw error;
  }
}

class RunLoop {
  more = false;
  private readonly counters: Counters = zeroCounters();
  private readonly startedAt: number;
  private batch = 0;
  private readonly ctx: RunContext;
  private skip: { reason: string } | null;
  /** Set where the target can copy batches straight from the source's own system. */
  private readonly native: NativeLocation | null;
  /** The next page, read while the current batch is written; checkpoints still follow writes in order. */
  private readAhead: { page: Promise<Page<Row>>; cancel: AbortController } | null = null;
  private readonly options: RunOptions;
  private readonly run: RunRecord;
  private readonly signal: AbortSignal;
  private readonly now: () => number;
  private readonly leaseMs: number;

  constructor(options: RunOptions, run: RunRecord, signal: AbortSignal, now: () => number, leaseMs: number) {
    this.options = options;
    this.run = run;
    this.signal = signal;
    this.now = now;
    this.leaseMs = leaseMs;
    this.startedAt = now();
    this.ctx = {
      sync: options.spec.name,
      runId: run.id,
      phase: run.phase,
      data: options.store.data,
      payload: options.payload ?? null,
    };
    this.skip = options.skipFirstBatch ?? null;
    const { source, target, spec } = options;
    // Records must pass through Sluice when a map changes them; otherwise the target may copy them,
    // unless it shares the store's database, where batch and checkpoint commit in one transaction.
    const sharesStore = options.store.database !== undefined && target.database === options.store.database;
    this.native =
      !spec.map && !sharesStore && source.location && source.bounds && target.copyFrom
        ? source.location()
        : null;
  }

  async execute(existing: Checkpoint | null): Promise<Checkpoint> {
    const { source, spec } = this.options;
    let checkpoint = existing ?? (await this.startBackfill());
    if (checkpoint.phase === 'backfill') checkpoint = await this.refreshEstimate(checkpoint);
    // Rows committed late carry cursor values behind the checkpoint: re-read a window before it, but
    // never move the saved checkpoint behind where this run started.
    const floor = checkpoint.phase === 'incremental' ? checkpoint.cursor : null;
    let readFrom = checkpoint.cursor;
    if (floor !== null && spec.lookbackMs > 0 && source.rewind && (await this.previousCaughtUp())) {
      readFrom = source.rewind(floor, spec.lookbackMs);
    }

    try {
      return await this.loop(checkpoint, floor, readFrom);
    } finally {
      // A read-ahead no batch will use (the run ended on its budget, or a write failed) is cancelled,
      // so an API source leaves no request in flight after its run.
      this.readAhead?.cancel.abort();
    }
  }

  private async loop(start: Checkpoint, floor: Cursor | null, from: Cursor | null): Promise<Checkpoint> {
    const { spec } = this.options;
    let checkpoint = start;
    let readFrom = from;
    while (true) {
      // Synchronous connectors (node:sqlite) resolve every await at once; without this yield a
      // backfill would keep timers, webhooks and other lanes from running until it ended.
      await setImmediate();
      if (this.options.stop?.aborted || this.budgetSpent()) {
        this.more = true;
        return checkpoint;
      }
      const phase = checkpoint.phase;
      this.ctx.phase = phase;
      if (this.native && !this.skip && !this.readAhead) {
        const copied = await this.copyNatively(checkpoint, readFrom, floor);
        if (copied) {
          checkpoint = copied.checkpoint;
          readFrom = copied.nextFrom;
          if (copied.last) return checkpoint;
          continue;
        }
      }
      const page = await (this.readAhead?.page ??
        this.read(phase, readFrom, checkpoint.highWaterMark, this.signal));
      this.readAhead = null;
      const { switching, nextFrom, last } = this.whatNext(page, checkpoint);
      // With native copy on, the next batch tries it again rather than being read ahead: one refused
      // row sends its own batch the ordinary way, not the rest of the run.
      if (!this.native && !last && !this.options.stop?.aborted && !this.budgetSpent()) {
        const cancel = new AbortController();
        const signal = AbortSignal.any([this.signal, cancel.signal]);
        const ahead = this.read(
          switching ? 'incremental' : phase,
          nextFrom,
          checkpoint.highWaterMark,
          signal,
        );
        // A failed read-ahead surfaces when it is awaited; until then it must not count as unhandled.
        ahead.catch(() => {});
        this.readAhead = { page: ahead, cancel };
      }
      const unreadable = page.rejected ?? [];
      if (
        page.records.length === 0 &&
        unreadable.length === 0 &&
        !page.done &&
        sameCursor(page.next, readFrom)
      ) {
        throw new SluiceError(
          'SOURCE_STALLED',
          `the source returned an empty page at ${JSON.stringify(readFrom)} without moving on`,
        );
      }
      const cursorFrom = readFrom;
      const skip = this.skip;
      this.skip = null;
      const { mapped, origin, deadLetters } = skip
        ? {
            mapped: [],
            origin: new Map<Row, Row>(),
            deadLetters: page.records.map((r) => deadLetter(r, spec.key, skip.reason)),
          }
        : await mapRecords(page.records, spec, this.ctx);
      for (const r of unreadable) deadLetters.push({ key: null, record: r.record, reason: r.reason });
      this.batch += 1;
      const batch = this.batch;
      // Built once the target has answered: the checkpoint must only ever follow a confirmed write.
      const commitFor = (result: WriteResult<Row>): BatchCommit => {
        // Dead letters keep the source record, so a retry maps it again (after a fix to `map`, say).
        for (const rejected of result.rejected) {
          deadLetters.push(
            deadLetter(origin.get(rejected.record) ?? rejected.record, spec.key, rejected.reason),
          );
        }
        const counters: Counters = {
          batches: 1,
          read: page.records.length + unreadable.length,
          written: result.written,
          rejected: deadLetters.length,
        };
        const next = phase === 'incremental' ? this.notBehind(page.next, floor) : page.next;
        checkpoint = this.advance(checkpoint, counters, next, page.done);
        return {
          sync: spec.name,
          runId: this.run.id,
          batch,
          cursorFrom,
          checkpoint,
          counters,
          deadLetters,
          leaseMs: this.leaseMs,
        };
      };
      const commit = await this.writeAndCommit(mapped, commitFor);
      this.tally(commit.counters, checkpoint);
      readFrom = nextFrom;
      if (last) return checkpoint;
    }
  }

  /** Where reading goes after a page, and whether the run ends with it. */
  private whatNext(page: { next: Cursor; done: boolean }, checkpoint: Checkpoint) {
    const switching = page.done && checkpoint.phase === 'backfill';
    const nextFrom = switching ? (checkpoint.highWaterMark ?? page.next) : page.next;
    const last =
      (page.done && checkpoint.phase === 'incremental') ||
      (switching && this.options.stopAfterBackfill === true);
    return { switching, nextFrom, last };
  }

  private tally(counters: Counters, checkpoint: Checkpoint): void {
    Object.assign(this.counters, addCounters(this.counters, counters));
    this.emitProgress(checkpoint);
  }

  /**
   * One batch copied by the target straight from a source in its own system (no map configured):
   * the source gives the page's bounds from its keys alone, the target copies the rows itself, and
   * the checkpoint follows the confirmed copy as it follows a write. Null when the target declines.
   */
  private async copyNatively(checkpoint: Checkpoint, from: Cursor | null, floor: Cursor | null) {
    const { source, target, spec, store } = this.options;
    const phase = checkpoint.phase;
    const req = {
      phase,
      cursor: from,
      limit: spec.batchSize,
      highWaterMark: checkpoint.highWaterMark,
      signal: this.signal,
    };
    const bounds = await source.bounds!(req);
    const result = await target.copyFrom!(this.native!, bounds.range, { signal: this.signal });
    if (!result) return null;
    const { nextFrom, last } = this.whatNext(bounds, checkpoint);
    const counters: Counters = { batches: 1, read: bounds.count, written: result.written, rejected: 0 };
    const next = phase === 'incremental' ? this.notBehind(bounds.next, floor) : bounds.next;
    const advanced = this.advance(checkpoint, counters, next, bounds.done);
    this.batch += 1;
    await store.commitBatch({
      sync: spec.name,
      runId: this.run.id,
      batch: this.batch,
      cursorFrom: from,
      checkpoint: advanced,
      counters,
      deadLetters: [],
      leaseMs: this.leaseMs,
    });
    this.tally(counters, advanced);
    return { checkpoint: advanced, nextFrom, last };
  }

  /**
   * Whether the sync's previous run ended caught up. After a run its budget cut short, the next one
   * goes on from the checkpoint without re-reading the lookback window: a window holding more than
   * one run can read would otherwise be re-read by every run, and the sync would never move on.
   */
  private async previousCaughtUp(): Promise<boolean> {
    const [, previous] = await this.options.store.listRuns({ sync: this.options.spec.name, limit: 2 });
    return !(previous?.status === 'succeeded' && previous.more === true);
  }

  /** The first batch always starts, so every run moves the sync forward, however small its budget. */
  private budgetSpent(): boolean {
    return this.batch > 0 && this.now() - this.startedAt >= this.options.spec.maxRunDurationMs;
  }

  private read(
    phase: Phase,
    cursor: Cursor | null,
    highWaterMark: Cursor | null,
    signal: AbortSignal,
  ): Promise<Page<Row>> {
    const { source, spec } = this.options;
    return source.read({ phase, cursor, limit: spec.batchSize, highWaterMark, signal });
  }

  private async startBackfill(): Promise<Checkpoint> {
    const { source, spec, store } = this.options;
    const highWaterMark = source.highWaterMark ? await source.highWaterMark() : null;
    const estimate = source.estimate
      ? await source.estimate({ phase: 'backfill', cursor: null, highWaterMark })
      : null;
    const now = new Date(this.now()).toISOString();
    const checkpoint: Checkpoint = {
      sync: spec.name,
      phase: 'backfill',
      cursor: null,
      highWaterMark,
      totals: zeroCounters(),
      backfillDone: 0,
      backfillEstimate: estimate,
      backfillStartedAt: now,
      backfillEndedAt: null,
      updatedAt: now,
    };
    await store.saveCheckpoint(checkpoint);
    return checkpoint;
  }

  /**
   * Estimates again only when the estimate is missing or has been overtaken: a count at every run
   * start costs a scan of what is left (a twentieth of a SQLite backfill's time in the profile).
   */
  private async refreshEstimate(checkpoint: Checkpoint): Promise<Checkpoint> {
    const { source } = this.options;
    if (!source.estimate || checkpoint.cursor === null) return checkpoint;
    const estimate = checkpoint.backfillEstimate;
    if (estimate !== null && checkpoint.backfillDone < estimate) return checkpoint;
    const left = await source.estimate({
      phase: 'backfill',
      cursor: checkpoint.cursor,
      highWaterMark: checkpoint.highWaterMark,
    });
    return left === null ? checkpoint : { ...checkpoint, backfillEstimate: checkpoint.backfillDone + left };
  }

  /**
   * Writes the batch, then saves its checkpoint. Where the target lives in the store's database the
   * two commit in one transaction; elsewhere the checkpoint follows the confirmed write, and a crash
   * between them replays the batch into the idempotent target.
   */
  private async writeAndCommit(
    mapped: Row[],
    commitFor: (result: WriteResult<Row>) => BatchCommit,
  ): Promise<BatchCommit> {
    const { store, target } = this.options;
    const req = { signal: this.signal };
    const none: WriteResult<Row> = { written: 0, rejected: [] };
    if (
      store.transaction &&
      target.writeIn &&
      store.database !== undefined &&
      target.database === store.database
    ) {
      const writeIn = target.writeIn.bind(target);
      return store.transaction(async (tx) => {
        const commit = commitFor(mapped.length ? await writeIn(tx, mapped, req) : none);
        await store.commitBatch(commit, tx);
        return commit;
      });
    }
    const commit = commitFor(mapped.length ? await target.write(mapped, req) : none);
    await store.commitBatch(commit);
    return commit;
  }

  private notBehind(next: Cursor, floor: Cursor | null): Cursor {
    const { source } = this.options;
    if (floor === null || !source.compare) return next;
    return source.compare(next, floor) < 0 ? floor : next;
  }

  private advance(checkpoint: Checkpoint, batch: Counters, next: Cursor, done: boolean): Checkpoint {
    const now = new Date(this.now()).toISOString();
    const inBackfill = checkpoint.phase === 'backfill';
    const backfillDone = inBackfill ? checkpoint.backfillDone + batch.read : checkpoint.backfillDone;
    const base = {
      ...checkpoint,
      totals: addCounters(checkpoint.totals, batch),
      backfillDone,
      updatedAt: now,
    };
    if (!inBackfill || !done) return { ...base, cursor: next };
    // The history is done: incremental starts at the high-water mark taken when the backfill began,
    // so everything changed since then is read again.
    return {
      ...base,
      phase: 'incremental',
      cursor: checkpoint.highWaterMark ?? next,
      backfillEstimate: backfillDone,
      backfillEndedAt: now,
    };
  }

  private emitProgress(checkpoint: Checkpoint): void {
    if (!this.options.onProgress) return;
    const elapsedMs = this.now() - this.startedAt;
    const rate = rateOf(this.counters.read, elapsedMs);
    this.options.onProgress({
      sync: this.options.spec.name,
      runId: this.run.id,
      phase: checkpoint.phase,
      run: { ...this.counters },
      backfillDone: checkpoint.backfillDone,
      backfillEstimate: checkpoint.backfillEstimate,
      rate,
      etaMs:
        checkpoint.phase === 'backfill'
          ? etaOf(checkpoint.backfillDone, checkpoint.backfillEstimate, rate)
          : null,
      elapsedMs,
    });
  }
}

function sameCursor(a: Cursor | null, b: Cursor | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
