import { asSluiceError, RunFencedError, SluiceError } from '../core/errors.ts';
import type { Checkpoint, RunContext, RunRecord, Source, Store, Target } from '../core/ports.ts';
import type { Json, Row, RunTrigger } from '../core/types.ts';
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
  setAside?: { reason: string };
  /** Called once the run is recorded, before its first batch: the caller learns its id. */
  onStart?: (run: RunRecord) => void;
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
  const { spec, store, holder } = options;
  const now = options.now ?? Date.now;
  const graceMs = options.graceMs ?? 60_000;
  const leaseMs = spec.maxRunDurationMs + graceMs;
  const run = await store.startRun({
    sync: spec.name,
    trigger: options.trigger,
    phase: (await store.getCheckpoint(spec.name))?.phase ?? 'backfill',
    holder,
    leaseMs,
    lane: options.lane ?? null,
  });
  options.onStart?.(run);
  // Read once the run is ours: a run that ended meanwhile may have moved the checkpoint.
  const existing = await store.getCheckpoint(spec.name);
  // The graceful `stop` only keeps new batches from starting; this deadline aborts the batch in hand.
  const deadline = AbortSignal.timeout(leaseMs);
  try {
    const loop = new RunLoop(options, run, deadline, now, leaseMs);
    const checkpoint = await loop.execute(existing);
    const finished = await store.finishRun(run.id, { holder, status: 'succeeded', more: loop.more });
    if (finished.status !== 'succeeded') throw new RunFencedError(spec.name, run.id, 'its end');
    return { run: finished, checkpoint, more: loop.more };
  } catch (err) {
    const timedOut = deadline.aborted;
    const error = timedOut
      ? new SluiceError(
          'RUN_TIMED_OUT',
          `run exceeded maxRunDuration plus ${graceMs} ms of grace and was aborted`,
          { cause: err, transient: true },
        )
      : asSluiceError(err);
    await store.finishRun(run.id, {
      holder,
      status: timedOut ? 'timed_out' : 'failed',
      more: true,
      errorCode: error.code,
      errorMessage: error.message,
    });
    throw error;
  }
}
