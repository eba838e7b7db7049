import { setImmediate } from 'node:timers/promises';
import { afterPage, beginSweep, nextRead, type PageEvent, type ReadPlan } from '../core/checkpoint.ts';
import { markAtBatch, SluiceError } from '../core/errors.ts';
import { stringifyJson } from '../core/json.ts';
import type {
  BatchCommit,
  Checkpoint,
  DataStore,
  NativeLocation,
  RunContext,
  RunRecord,
} from '../core/ports.ts';
import {
  addCounters,
  type Counters,
  type Page,
  type Row,
  type WriteResult,
  zeroCounters,
} from '../core/types.ts';
import { type FingerprintScope, type PreparedBatch, prepareBatch, settleBatch } from './batch.ts';
import { etaOf, rateOf } from './progress.ts';
import { recordsOf } from './records.ts';
import type { RunOptions } from './run.ts';

// A fingerprint is kept this long behind the window's start: cursor times are parsed to the millisecond.
const PRUNE_MARGIN_MS = 1000;

/** The data store as a run's `map` sees it: reads always, writes only while the run may still write. */
function guardedData(data: DataStore, signal: AbortSignal): DataStore {
  return {
    get: (key) => data.get(key),
    list: (prefix) => data.list(prefix),
    set: async (key, value) => {
      signal.throwIfAborted();
      await data.set(key, value);
    },
    del: async (key) => {
      signal.throwIfAborted();
      return data.del(key);
    },
  };
}

/**
 * The id of the batch that follows `checkpoint`: the same for a batch read again after a crash left
 * its checkpoint unsaved, another for every batch after a saved one (or after a reset).
 */
function batchId(checkpoint: Checkpoint): string {
  return `${checkpoint.backfillStartedAt ?? ''}#${checkpoint.version}`;
}

/** One run's batches, in order: read (one page ahead), prepare, write, commit. */
export class RunLoop {
  more = false;
  /** The last checkpoint saved (or read at the start): where the sync stands if the run stops now. */
  checkpoint: Checkpoint | null = null;
  private readonly counters: Counters = zeroCounters();
  private readonly startedAt: number;
  private batch = 0;
  private readonly ctx: RunContext;
  private setAside: { reason: string } | null;
  /** Set where the target can copy batches straight from the source's own system. */
  private readonly native: NativeLocation | null;
  /** Which records carry fingerprints (null: none, there is no lookback window to re-read them). */
  private scope: FingerprintScope = null;
  /** Whether the sync may have open dead letters that a written record resolves. */
  private lettersOpen = false;
  /** The next page, read while the current batch is written; checkpoints still follow writes in order. */
  private readAhead: { plan: ReadPlan; page: Promise<Page<Row>>; cancel: AbortController } | null = null;
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
      // `map` sees the sync's name, a partition's run too.
      sync: recordsOf(options.spec),
      runId: run.id,
      phase: run.phase,
      data: guardedData(options.store.data, signal),
      payload: options.payload ?? null,
      signal,
    };
    this.setAside = options.setAside ?? null;
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
    const { store, spec } = this.options;
    let checkpoint = existing ?? (await this.startBackfill());
    this.checkpoint = checkpoint;
    if (checkpoint.phase === 'backfill') checkpoint = await this.refreshEstimate(checkpoint);
    checkpoint = this.withSweep(checkpoint);
    this.scope = this.fingerprintScope(checkpoint);
    this.lettersOpen = (await store.countOpenDeadLetters(recordsOf(spec))) > 0;
    await this.options.target.rollback?.(batchId(checkpoint));
    try {
      checkpoint = await this.loop(checkpoint);
    } finally {
      // A read-ahead no batch will use (the run ended on its budget, or a write failed) is cancelled,
      // so an API source leaves no request in flight after its run.
      this.readAhead?.cancel.abort();
    }
    await this.pruneFingerprints(checkpoint);
    return checkpoint;
  }

  private async loop(start: Checkpoint): Promise<Checkpoint> {
    let checkpoint = start;
    while (true) {
      // Synchronous connectors (node:sqlite) resolve every await at once; without this yield a
      // backfill would keep timers, webhooks and other lanes from running until it ended.
      await setImmediate();
      if (this.options.stop?.aborted || this.budgetSpent()) {
        this.more = true;
        return checkpoint;
      }
      const plan = nextRead(checkpoint);
      this.ctx.phase = plan.phase;
      if (this.copiesNatively(plan)) {
        const copied = await this.copyNatively(checkpoint, plan).catch(failAtBatch);
        if (copied) {
          checkpoint = copied.checkpoint;
          if (copied.last) return checkpoint;
          continue;
        }
      }
      const page = await this.take(plan);
      this.assertMoved(page, plan);
      // Where reading goes after this page, known before the write, so the next page is read meanwhile.
      const ahead = this.advance(checkpoint, page, zeroCounters());
      const last = this.isLast(ahead.event);
      const following = nextRead(ahead.checkpoint);
      // A batch that may be copied natively is not read ahead: one refused row sends its own batch
      // the ordinary way, not the rest of the run. Nor is a source whose reads run on this thread:
      // its read would overlap nothing and keep a second page alive through this batch's write.
      if (
        !last &&
        !this.options.source.readsSynchronously &&
        !this.copiesNatively(following) &&
        !this.options.stop?.aborted &&
        !this.budgetSpent()
      ) {
        this.readAheadOf(following);
      }
      const prepared = await prepareBatch(page, plan.phase, this.ctx, {
        spec: this.options.spec,
        store: this.options.store,
        scope: this.scope,
        setAside: this.setAside,
      }).catch(failAtBatch);
      this.setAside = null;
      checkpoint = await this.writeAndCommit(checkpoint, page, plan, prepared).catch(failAtBatch);
      if (last) return checkpoint;
    }
  }

  /** The page `plan` reads: the one read ahead if it is that read, else a fresh read. */
  private async take(plan: ReadPlan): Promise<Page<Row>> {
    const ahead = this.readAhead;
    this.readAhead = null;
    if (ahead && stringifyJson(ahead.plan) === stringifyJson(plan)) return ahead.page;
    ahead?.cancel.abort();
    return this.read(plan, this.signal);
  }

  private readAheadOf(plan: ReadPlan): void {
    const cancel = new AbortController();
    const page = this.read(plan, AbortSignal.any([this.signal, cancel.signal]));
    // A failed read-ahead surfaces when it is awaited; until then it must not count as unhandled.
    page.catch(() => {});
    this.readAhead = { plan, page, cancel };
  }

  private assertMoved(page: Page<Row>, plan: ReadPlan): void {
    const empty = page.records.length === 0 && (page.rejected ?? []).length === 0;
    if (empty && !page.done && stringifyJson(page.next) === stringifyJson(plan.cursor)) {
      throw new SluiceError(
        'SOURCE_STALLED',
        `the source returned an empty page at ${stringifyJson(plan.cursor)} without moving on`,
      );
    }
  }

  /** The checkpoint after a page, a new sweep begun where the backfill just ended. */
  private advance(checkpoint: Checkpoint, page: { next: Page<Row>['next']; done: boolean }, batch: Counters) {
    const at = new Date(this.now()).toISOString();
    const next = afterPage(checkpoint, page, batch, at);
    return next.event === 'backfill-done' ? { ...next, checkpoint: this.withSweep(next.checkpoint) } : next;
  }

  private isLast(event: PageEvent): boolean {
    return event === 'caught-up' || (event === 'backfill-done' && this.options.stopAfterBackfill === true);
  }

  /**
   * Writes the batch, then saves its checkpoint. Where the target lives in the store's database the
   * two commit in one transaction; elsewhere the checkpoint follows the confirmed write, and a crash
   * between them replays the batch into the idempotent target.
   */
  private async writeAndCommit(
    checkpoint: Checkpoint,
    page: Page<Row>,
    plan: ReadPlan,
    prepared: PreparedBatch,
  ): Promise<Checkpoint> {
    const { store, target } = this.options;
    const req = { signal: this.signal, batch: batchId(checkpoint) };
    const records = prepared.toWrite;
    const none: WriteResult<Row> = { written: 0, rejected: [] };
    this.batch += 1;
    const commitFor = (result: WriteResult<Row>): BatchCommit =>
      this.commitOf(checkpoint, page, plan, prepared, result);
    let commit: BatchCommit;
    if (
      store.transaction &&
      target.writeIn &&
      store.database !== undefined &&
      target.database === store.database
    ) {
      const writeIn = target.writeIn.bind(target);
      commit = await store.transaction(async (tx) => {
        const built = commitFor(records.length ? await writeIn(tx, records, req) : none);
        await store.commitBatch(built, tx);
        return built;
      });
    } else {
      commit = commitFor(records.length ? await target.write(records, req) : none);
      await store.commitBatch(commit);
    }
    this.lettersOpen ||= commit.deadLetters.length > 0;
    this.checkpoint = commit.checkpoint;
    this.tally(commit.counters, commit.checkpoint!);
    return commit.checkpoint!;
  }

  /** Built once the target has answered: the checkpoint must only ever follow a confirmed write. */
  private commitOf(
    checkpoint: Checkpoint,
    page: Page<Row>,
    plan: ReadPlan,
    prepared: PreparedBatch,
    result: WriteResult<Row>,
  ): BatchCommit {
    const { spec } = this.options;
    const settled = settleBatch(prepared, result, spec, this.lettersOpen);
    const counters: Counters = {
      batches: 1,
      read: page.records.length + (page.rejected ?? []).length,
      written: result.written,
      unchanged: prepared.unchangedKeys.length,
      rejected: settled.deadLetters.length,
    };
    return {
      sync: recordsOf(spec),
      runId: this.run.id,
      holder: this.options.holder,
      batch: this.batch,
      cursorFrom: plan.cursor,
      checkpoint: this.advance(checkpoint, page, counters).checkpoint,
      counters,
      deadLetters: settled.deadLetters,
      fingerprints: settled.fingerprints,
      resolved: settled.resolvedKeys.length
        ? [{ keys: settled.resolvedKeys, resolution: `written by run ${this.run.id}` }]
        : [],
      leaseMs: this.leaseMs,
    };
  }

  private copiesNatively(plan: ReadPlan): boolean {
    // Natively copied rows pass no key through Sluice: no fingerprint for a sweep to compare, no key
    // to close an open dead letter by. Incremental batches, small, go the ordinary way for those.
    const ordinary = plan.phase === 'incremental' && (this.scope !== null || this.lettersOpen);
    return this.native !== null && !this.setAside && !ordinary;
  }

  /**
   * One batch copied by the target straight from a source in its own system (no map configured):
   * the source gives the page's bounds from its keys alone, the target copies the rows itself, and
   * the checkpoint follows the confirmed copy as it follows a write. Null when the target declines.
   */
  private async copyNatively(checkpoint: Checkpoint, plan: ReadPlan) {
    const { source, target, spec, store } = this.options;
    const req = { ...plan, limit: spec.batchSize, signal: this.signal };
    const bounds = await source.bounds!(req);
    const result = await target.copyFrom!(this.native!, bounds.range, { signal: this.signal });
    if (!result) return null;
    const counters: Counters = { ...zeroCounters(), batches: 1, read: bounds.count, written: result.written };
    const { checkpoint: advanced, event } = this.advance(checkpoint, bounds, counters);
    this.batch += 1;
    await store.commitBatch({
      sync: recordsOf(spec),
      runId: this.run.id,
      holder: this.options.holder,
      batch: this.batch,
      cursorFrom: plan.cursor,
      checkpoint: advanced,
      counters,
      deadLetters: [],
      leaseMs: this.leaseMs,
    });
    this.checkpoint = advanced;
    this.tally(counters, advanced);
    return { checkpoint: advanced, last: this.isLast(event) };
  }

  /** Starts a lookback sweep where the sync is incremental, has a window, and none is under way. */
  private withSweep(checkpoint: Checkpoint): Checkpoint {
    const { source, spec } = this.options;
    if (checkpoint.phase !== 'incremental' || spec.lookbackMs <= 0 || !source.rewind) return checkpoint;
    if (checkpoint.sweep !== null || checkpoint.cursor === null) return checkpoint;
    const start = source.rewind(checkpoint.cursor, spec.lookbackMs);
    return stringifyJson(start) === stringifyJson(checkpoint.cursor)
      ? checkpoint
      : beginSweep(checkpoint, start);
  }

  private fingerprintScope(checkpoint: Checkpoint): FingerprintScope {
    const { source, spec } = this.options;
    if (spec.lookbackMs <= 0 || !source.rewind || !spec.cursorField) return null;
    const hwm = checkpoint.highWaterMark;
    const hwmMs = hwm !== null && source.timeOf ? source.timeOf(hwm) : null;
    return { backfillFromMs: hwmMs === null ? null : hwmMs - spec.lookbackMs - PRUNE_MARGIN_MS };
  }

  /** Fingerprints behind the window's start are never compared again: the next sweep starts after them. */
  private async pruneFingerprints(checkpoint: Checkpoint): Promise<void> {
    const { source, spec, store } = this.options;
    if (!this.scope || checkpoint.phase !== 'incremental' || !source.timeOf || checkpoint.cursor === null)
      return;
    const frontierMs = source.timeOf(checkpoint.cursor);
    if (frontierMs !== null)
      await store.pruneFingerprints(recordsOf(spec), frontierMs - spec.lookbackMs - PRUNE_MARGIN_MS);
  }

  private tally(counters: Counters, checkpoint: Checkpoint): void {
    Object.assign(this.counters, addCounters(this.counters, counters));
    this.emitProgress(checkpoint);
  }

  /** The first batch always starts, so every run moves the sync forward, however small its budget. */
  private budgetSpent(): boolean {
    return this.batch > 0 && this.now() - this.startedAt >= this.options.spec.maxRunDurationMs;
  }

  private read(plan: ReadPlan, signal: AbortSignal): Promise<Page<Row>> {
    const { source, spec } = this.options;
    return source.read({ ...plan, limit: spec.batchSize, signal });
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
      sweep: null,
      highWaterMark,
      totals: zeroCounters(),
      backfillDone: 0,
      backfillEstimate: estimate?.records ?? null,
      backfillEstimateExact: estimate?.exact ?? false,
      backfillStartedAt: now,
      backfillEndedAt: null,
      updatedAt: now,
      version: 1,
    };
    await store.saveCheckpoint(checkpoint);
    return checkpoint;
  }

  /**
   * Estimates what is left again where the estimate is a guess, missing or overtaken; an exact count
   * stands (a count at every run start costs a scan of what is left). Never below what is done.
   */
  private async refreshEstimate(checkpoint: Checkpoint): Promise<Checkpoint> {
    const { source } = this.options;
    if (!source.estimate || checkpoint.cursor === null) return checkpoint;
    const estimate = checkpoint.backfillEstimate;
    if (checkpoint.backfillEstimateExact && estimate !== null && checkpoint.backfillDone < estimate) {
      return checkpoint;
    }
    const left = await source.estimate({
      phase: 'backfill',
      cursor: checkpoint.cursor,
      highWaterMark: checkpoint.highWaterMark,
    });
    if (left === null) return checkpoint;
    // Not saved on its own: it rides with this run's first batch (a version is a batch's to take).
    return {
      ...checkpoint,
      backfillEstimate: checkpoint.backfillDone + Math.max(left.records, 1),
      backfillEstimateExact: left.exact,
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
      estimateExact: checkpoint.backfillEstimateExact,
      rate,
      etaMs:
        checkpoint.phase === 'backfill'
          ? etaOf(checkpoint.backfillDone, checkpoint.backfillEstimate, rate)
          : null,
      elapsedMs,
    });
  }
}

/** Rethrows a failure met on a batch's records, marked so (a set-aside run can move past it). */
function failAtBatch(err: unknown): never {
  throw markAtBatch(err);
}
