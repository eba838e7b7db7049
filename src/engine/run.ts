import {
  asSluiceError,
  isAtBatch,
  markAtBatch,
  QuotaExhaustedError,
  RunFencedError,
  SluiceError,
} from '../core/errors.ts';
import type { Checkpoint, RunContext, RunEnd, RunRecord, Source, Store, Target } from '../core/ports.ts';
import type { Json, Row, RunTrigger } from '../core/types.ts';
import { Heartbeat } from './heartbeat.ts';
import { RunLoop } from './loop.ts';
import type { Progress } from './progress.ts';

/** What the engine needs to know of a sync; the config layer resolves it. */
export type RunSpec = {
  name: string;
  /** The key fields, to name dead-lettered records. */
  key: readonly string[];
  /** The field that grows when a record changes; null for append-only sources. */
  cursorField: string | null;
  batchSize: number;
  maxRunDurationMs: number;
  /**
   * The sync the records belong to (their dead letters, their fingerprints) where the run is one
   * partition of its backfill (`name` is then the partition's). @defaultValue `name`
   */
  recordsOf?: string;
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
  /**
   * How long the run's hold on its sync and lane lasts without a heartbeat; renewed every third of
   * it while the run runs. A process that dies loses its runs this long after. @defaultValue 30000
   */
  leaseMs?: number;
  /**
   * Stops the run at once, the batch in hand unsaved: the run is recorded `abandoned` with the
   * signal's reason (a shutdown whose grace ran out) and resumes from its checkpoint next time.
   */
  kill?: AbortSignal;
  /** The run, where the caller started it already (see `startRunOf`). */
  run?: RunRecord;
  /** End the run when the backfill completes rather than going on into incremental. */
  stopAfterBackfill?: boolean;
  /** What the run was triggered with (a webhook's body, say); `map` sees it as `ctx.payload`. */
  payload?: Json | null;
  /**
   * The batch at the checkpoint failed too often: read it, dead-letter every record in it with this
   * reason instead of writing it, and go on from there.
   */
  setAside?: { reason: string };
  /** Called once the run is recorded, before its first batch: the caller learns its id. */
  onStart?: (run: RunRecord) => void;
  /**
   * Records the end of a run that succeeded, in place of `store.finishRun` and with its contract
   * (the run as it stands after; fenced the same way), told what the run did: a runtime ends the
   * run's request and queues what follows it in the same write.
   */
  finishRun?: (end: RunEnd, done: RunDone) => Promise<RunRecord>;
  now?: () => number;
  onProgress?: (progress: Progress) => void;
};

/** What a run that succeeded did, as its end is recorded. */
export type RunDone = Pick<RunOutcome, 'checkpoint' | 'more' | 'resumeAt'>;

export type RunOutcome = {
  run: RunRecord;
  checkpoint: Checkpoint;
  /** The run stopped with work left: its budget was spent, or it was stopped. */
  more: boolean;
  /**
   * A connection's API budget (a daily quota) ran out: the run kept what it confirmed and stopped;
   * the sync goes on at this time (epoch ms), not before.
   */
  resumeAt?: number;
  /** A partitioned backfill's unfinished partitions, for a runtime to queue (see `fanOut`). */
  partitions?: string[];
};

const DEFAULT_LEASE_MS = 30_000;

/**
 * Records a run of the sync and takes its hold (the sync, and the lane of its bundle), refusing with
 * SYNC_BUSY or LANE_BUSY while another live run holds either. Taken before the source and target
 * are opened, so a run that cannot start opens nothing, and one whose connectors fail is recorded.
 */
export async function startRunOf(
  options: Pick<RunOptions, 'spec' | 'store' | 'trigger' | 'holder' | 'lane' | 'leaseMs'>,
): Promise<RunRecord> {
  const { spec, store } = options;
  return store.startRun({
    sync: spec.name,
    trigger: options.trigger,
    phase: (await store.getCheckpoint(spec.name))?.phase ?? 'backfill',
    holder: options.holder,
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,
    lane: options.lane ?? null,
  });
}

/**
 * One run: read a batch → map → write → checkpoint, until the budget is spent or the phase has no
 * more to give. A checkpoint is saved only after the target confirmed the batch, so a crash at any
 * instant replays at most the batch in hand, which the idempotent target absorbs.
 */
export async function executeRun(options: RunOptions): Promise<RunOutcome> {
  const { spec, store, holder } = options;
  const now = options.now ?? Date.now;
  const graceMs = options.graceMs ?? 60_000;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const run = options.run ?? (await startRunOf(options));
  if (!options.run) options.onStart?.(run);
  // Read once the run is ours: a run that ended meanwhile may have moved the checkpoint.
  const existing = await store.getCheckpoint(spec.name);
  const heartbeat = new Heartbeat(store, run, leaseMs);
  // The graceful `stop` only keeps new batches from starting; these abort the batch in hand: the
  // deadline (budget plus grace), a lost hold, a kill.
  const deadline = AbortSignal.timeout(spec.maxRunDurationMs + graceMs);
  const signal = AbortSignal.any([deadline, heartbeat.signal, ...(options.kill ? [options.kill] : [])]);
  // A spent API budget is not a failure: what was confirmed stands, and the sync waits for the reset.
  let quota = null as QuotaExhaustedError | null;
  try {
    const loop = new RunLoop(options, run, signal, now, leaseMs);
    const checkpoint = await loop.execute(existing).catch((err: unknown) => {
      if (!(err instanceof QuotaExhaustedError) || !loop.checkpoint) throw err;
      quota = err;
      return loop.checkpoint;
    });
    const more = loop.more || quota !== null;
    const end: RunEnd = {
      holder,
      status: 'succeeded',
      more,
      ...(quota ? { errorCode: quota.code, errorMessage: quota.message } : {}),
    };
    const done: RunDone = { checkpoint, more, ...(quota ? { resumeAt: quota.resetsAt } : {}) };
    const finished = options.finishRun
      ? await options.finishRun(end, done)
      : await store.finishRun(run.id, end);
    if (finished.status !== 'succeeded') throw new RunFencedError(spec.name, run.id, 'its end');
    return { run: finished, ...done };
  } catch (err) {
    const error = endOf(err, { deadline, heartbeat: heartbeat.signal, kill: options.kill, graceMs });
    if (isAtBatch(err)) markAtBatch(error.error);
    await store.finishRun(run.id, {
      holder,
      status: error.status,
      more: true,
      errorCode: error.error.code,
      errorMessage: error.error.message,
    });
    throw error.error;
  } finally {
    heartbeat.stop();
  }
}

/** How a run that threw ends: timed out, lost, killed, or failed, with the error to report. */
function endOf(
  err: unknown,
  why: { deadline: AbortSignal; heartbeat: AbortSignal; kill: AbortSignal | undefined; graceMs: number },
): { status: 'timed_out' | 'abandoned' | 'failed'; error: SluiceError } {
  if (why.heartbeat.aborted) return { status: 'failed', error: asSluiceError(why.heartbeat.reason) };
  if (why.kill?.aborted) {
    const reason = why.kill.reason instanceof Error ? why.kill.reason.message : String(why.kill.reason);
    return { status: 'abandoned', error: new SluiceError('RUN_KILLED', reason, { cause: err }) };
  }
  if (why.deadline.aborted) {
    const error = new SluiceError(
      'RUN_TIMED_OUT',
      `run exceeded maxRunDuration plus ${why.graceMs} ms of grace and was aborted`,
      { cause: err, transient: true },
    );
    return { status: 'timed_out', error };
  }
  return { status: 'failed', error: asSluiceError(err) };
}
