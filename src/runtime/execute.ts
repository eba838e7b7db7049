import { asSluiceError, isAtBatch, SluiceError } from '../core/errors.ts';
import { afterRun, type RunResult } from '../core/policy.ts';
import type { NewRunRequest, RunEnd, RunRecord, RunRequest } from '../core/ports.ts';
import type { Json } from '../core/types.ts';
import type { Progress } from '../engine/progress.ts';
import type { RunDone, RunOutcome } from '../engine/run.ts';
import { laneOf } from './lanes.ts';
import type { RunEnded } from './port.ts';
import type { Workspace } from './workspace.ts';

/**
 * What follows a run by its sync's policies: the request to queue with its end, or why its chain
 * broke; and, for a partitioned backfill, a request for each partition to move (queued where the
 * partition has none waiting or running).
 */
export type Successor = { next: NewRunRequest | null; broken: string | null; partitions?: NewRunRequest[] };

/**
 * How a requested run ended, for the runtime that holds its request to settle it:
 * - `succeeded` / `failed`: end the request, queuing `next` with it;
 * - `killed`: cut short by a shutdown past its grace, the request goes back to be resumed;
 * - `busy`: its sync or lane was running elsewhere (a CLI run), the request waits a moment.
 */
export type RequestEnd =
  | { kind: 'succeeded'; run: RunRecord; outcome: RunOutcome; successor: Successor }
  | { kind: 'failed'; run: RunRecord | null; error: SluiceError; attempt: number; successor: Successor }
  | { kind: 'killed'; run: RunRecord | null; error: SluiceError }
  | { kind: 'busy'; error: SluiceError };

export type ExecuteOptions = {
  /** The runtime is stopping: runs finish the batch in hand and checkpoint. */
  stop: AbortSignal;
  /** The stop's grace ran out: runs stop at once. */
  kill: AbortSignal;
  graceMs: number;
  /** The runtime's lane index (sync → bundle). */
  bundles: ReadonlyMap<string, string>;
  onStart?: (run: RunRecord) => void;
  onProgress?: (progress: Progress) => void;
  /** The run the request's claim recorded, where it did. */
  run?: RunRecord | null;
  /**
   * Records the end of a run that succeeded together with its request's (see the engine's
   * `RunOptions.finishRun`): the run as it stands after, and whether the request was settled there
   * (with `successor` queued); a request not settled there is settled from the `RequestEnd`.
   */
  settle?: (
    run: RunRecord,
    end: RunEnd,
    successor: Successor,
  ) => Promise<{ run: RunRecord; settled: boolean }>;
};

/**
 * Runs one requested run of a sync under its deadline and says how it ended and what follows it.
 * Shared by every runtime adapter: the queue each keeps differs, what a run's end means does not.
 */
export async function executeRequest(
  ws: Workspace,
  request: Pick<RunRequest, 'sync' | 'trigger' | 'payload' | 'attempt' | 'setAsideReason'>,
  options: ExecuteOptions,
): Promise<RequestEnd> {
  const sync = ws.sync(request.sync);
  let started: RunRecord | null = options.run ?? null;
  const abandon = new AbortController();
  // What the run did and the successor decided as its end was recorded, where the runtime settled
  // its request then.
  let settled: { outcome: RunOutcome; successor: Successor } | null = null;
  const settle = options.settle;
  try {
    const outcome = await withDeadline(
      ws,
      ws.run(request.sync, {
        trigger: request.trigger,
        // Each partition of a backfill is a request of its own, for any worker to take.
        fanOut: true,
        stop: options.stop,
        payload: request.payload,
        graceMs: options.graceMs,
        abandon: abandon.signal,
        kill: options.kill,
        onStart: (run) => {
          started = run;
          options.onStart?.(run);
        },
        ...(request.setAsideReason ? { setAside: { reason: request.setAsideReason } } : {}),
        ...(options.run ? { run: options.run } : {}),
        ...(settle
          ? {
              finishRun: async (end: RunEnd, done: RunDone) => {
                const successor = successorAfter(ws, options.bundles, request, done);
                const { run, settled: ok } = await settle(started!, end, successor);
                if (ok) settled = { outcome: { run, ...done }, successor };
                return run;
              },
            }
          : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      }),
      sync.maxRunDurationMs + options.graceMs + 5_000,
      () => started,
      abandon,
    );
    const atEnd = settled as { successor: Successor } | null;
    const successor =
      atEnd?.successor ??
      (outcome.partitions && outcome.partitions.length > 0
        ? {
            next: null,
            broken: null,
            partitions: outcome.partitions.map(
              (name): NewRunRequest => ({
                sync: name,
                lane: ws.laneOfRun(ws.sync(name), 'backfill'),
                trigger: 'backfill',
                coalesce: true,
              }),
            ),
          }
        : successorAfter(ws, options.bundles, request, outcome));
    return { kind: 'succeeded', run: outcome.run, outcome, successor };
  } catch (err) {
    const error = asSluiceError(err);
    const atEnd = settled as { outcome: RunOutcome; successor: Successor } | null;
    // The deadline fired while the run's end was being recorded, and the end won: the run and its
    // request ended succeeded (the deadline's own record of it was fenced off), and so it is told.
    if (atEnd && error.code === 'RUN_TIMED_OUT')
      return {
        kind: 'succeeded',
        run: atEnd.outcome.run,
        outcome: atEnd.outcome,
        successor: atEnd.successor,
      };
    const startedRun = started as RunRecord | null;
    if (error.code === 'RUN_KILLED') return { kind: 'killed', run: startedRun, error };
    if (error.code === 'SYNC_BUSY' || error.code === 'LANE_BUSY') return { kind: 'busy', error };
    const run = startedRun ? await ws.store.getRun(startedRun.id) : null;
    // A run that saved batches before failing failed at a new batch: its first attempt there.
    const attempt = run && run.counters.batches > 0 ? 1 : request.attempt;
    const result: RunResult = {
      ok: false,
      errorCode: error.code,
      errorMessage: error.message,
      atBatch: isAtBatch(err) || isAtBatch(error),
    };
    const successor = successorOf(ws, options.bundles, { ...request, attempt }, result, null);
    return { kind: 'failed', run, error, attempt, successor };
  }
}

/** What follows a run that succeeded (but for a partitioned backfill's fan-out), by what it did. */
function successorAfter(
  ws: Workspace,
  bundles: ReadonlyMap<string, string>,
  request: Pick<RunRequest, 'sync' | 'trigger' | 'attempt'>,
  done: RunDone,
): Successor {
  const sync = ws.sync(request.sync);
  if (sync.recordsOf !== sync.name && done.checkpoint.phase === 'incremental') {
    // A partition done: its sync's run looks whether they all are, and goes incremental if so.
    const next: NewRunRequest = {
      sync: sync.recordsOf,
      lane: laneOf(sync.recordsOf, bundles, 'rerun'),
      trigger: 'rerun',
      coalesce: true,
    };
    return { next, broken: null };
  }
  if (done.resumeAt !== undefined) {
    // A spent API budget: the successor waits for the reset, whatever the rerun mode.
    const next: NewRunRequest = {
      sync: request.sync,
      lane: laneOf(request.sync, bundles, 'rerun'),
      trigger: 'rerun',
      notBefore: done.resumeAt,
      coalesce: true,
    };
    return { next, broken: null };
  }
  if (!done.more && done.checkpoint.phase !== 'backfill') return { next: null, broken: null };
  const result: RunResult = { ok: true, more: done.more };
  return successorOf(ws, bundles, request, result, { cursor: done.checkpoint.cursor });
}

/** The `run:end` event's fields for a request's end. */
export function endedFields(end: RequestEnd): Omit<RunEnded, 'request' | 'durationMs'> {
  switch (end.kind) {
    case 'succeeded':
      return {
        runId: end.run.id,
        ok: true,
        status: 'succeeded',
        counters: end.run.counters,
        more: end.outcome.more,
        errorCode: null,
        errorMessage: null,
      };
    case 'failed':
      return {
        runId: end.run?.id ?? null,
        ok: false,
        status: end.error.code === 'RUN_TIMED_OUT' ? 'timed_out' : 'failed',
        counters: end.run?.counters ?? null,
        more: true,
        errorCode: end.error.code,
        errorMessage: end.error.message,
      };
    case 'killed':
      return {
        runId: end.run?.id ?? null,
        ok: false,
        status: 'abandoned',
        counters: null,
        more: true,
        errorCode: end.error.code,
        errorMessage: end.error.message,
      };
    case 'busy':
      return {
        runId: null,
        ok: false,
        status: 'requeued',
        counters: null,
        more: true,
        errorCode: end.error.code,
        errorMessage: end.error.message,
      };
  }
}

/** What follows a run by the sync's rerun and retry policies. */
export function successorOf(
  ws: Workspace,
  bundles: ReadonlyMap<string, string>,
  request: Pick<RunRequest, 'sync' | 'trigger' | 'attempt'>,
  result: RunResult,
  payload: Json | null,
): Successor {
  const sync = ws.sync(request.sync);
  const step = afterRun(sync.rerun, sync.retries, result, request.attempt);
  // The successor goes to the back of the sync's lane, so other syncs' due runs go first.
  const lane = laneOf(request.sync, bundles, request.trigger === 'webhook' ? 'rerun' : request.trigger);
  switch (step.kind) {
    case 'enqueue':
      return {
        next: {
          sync: request.sync,
          lane,
          trigger: step.trigger,
          attempt: step.attempt,
          notBefore: Date.now() + step.delayMs,
          payload,
        },
        broken: null,
      };
    case 'skip-batch':
      return {
        next: { sync: request.sync, lane, trigger: 'retry', setAsideReason: step.reason },
        broken: null,
      };
    case 'chain-broken':
      return { next: null, broken: step.reason };
    case 'wait':
      return { next: null, broken: null };
  }
}

/**
 * Backstop for a run that ignores its abort signal: past the deadline that very run is recorded
 * timed out (so every later write of it is refused), its connections are closed, and its lane is
 * released; whatever it does afterwards changes nothing.
 */
async function withDeadline<T>(
  ws: Workspace,
  work: Promise<T>,
  ms: number,
  runOf: () => RunRecord | null,
  abandon: AbortController,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(async () => {
      const run = runOf();
      try {
        if (run) {
          await ws.store.finishRun(run.id, {
            holder: run.holder,
            status: 'timed_out',
            more: true,
            errorCode: 'RUN_TIMED_OUT',
            errorMessage: `no answer ${ms} ms after the run started; lane released`,
          });
        }
      } finally {
        abandon.abort();
        reject(
          new SluiceError(
            'RUN_TIMED_OUT',
            `run ${run?.id ?? '(not started)'} overran maxRunDuration plus grace; lane released`,
            { transient: true },
          ),
        );
      }
    }, ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
