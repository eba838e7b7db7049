import { setTimeout as sleep } from 'node:timers/promises';
import type { Checkpoint, RunRequest } from '../core/ports.ts';
import type { Progress } from '../engine/progress.ts';
import { type RetryNotice, runWithRetries } from '../runtime/attempts.ts';
import type { Workspace } from '../runtime/workspace.ts';

export type BackfillOptions = {
  /** Aborting stops the backfill after the batch in hand, checkpointed; the next backfill resumes there. */
  signal?: AbortSignal;
  /** Called as batches are written, with the backfill's progress across all its runs, and which run this is (from 1). */
  onProgress?: (progress: Progress, backfill: { run: number }) => void;
  /** A momentary failure (a dropped connection, a 5xx) is being retried from the checkpoint. */
  onRetry?: (notice: RetryNotice) => void;
  /** A run waits for its turn in its lane's queue (another sync of its bundle is running). */
  onWait?: (waiting: RunRequest) => void;
  /**
   * Another process's run holds the lane (a store without a queue, or a run not taken from it): the
   * backfill tries again every 100 ms. Called once when it starts waiting, with the reason.
   */
  onLaneBusy?: (reason: string) => void;
  /** A connection's API budget ran out: the backfill waits until `resumeAt` (epoch ms), or until aborted. */
  onPause?: (pause: { resumeAt: number; reason: string }) => void;
};

export type BackfillResult = {
  sync: string;
  /** True once the history is done and the sync has moved to its incremental phase. */
  done: boolean;
  /** The backfill was done before this call: nothing ran. */
  alreadyDone: boolean;
  runs: number;
  batches: number;
  /** Records read by this call's runs. */
  records: number;
  elapsedMs: number;
  checkpoint: Checkpoint | null;
};

// A run that found its lane busy (another sync of its bundle) tries again after this long.
const LANE_BUSY_RETRY_MS = 100;

/**
 * Runs a sync again and again until its backfill is done (or `signal` aborts): each run a slice that
 * gives the lane back, momentary failures retried from the checkpoint, a spent API budget waited out.
 */
export async function backfill(
  ws: Workspace,
  sync: string,
  options: BackfillOptions = {},
): Promise<BackfillResult> {
  ws.sync(sync);
  const startedAt = Date.now();
  let runs = 0;
  let batches = 0;
  let records = 0;
  const result = (checkpoint: Checkpoint | null, alreadyDone = false): BackfillResult => ({
    sync,
    done: checkpoint?.phase === 'incremental',
    alreadyDone,
    runs,
    batches,
    records,
    elapsedMs: Date.now() - startedAt,
    checkpoint,
  });
  const before = await ws.store.getCheckpoint(sync);
  if (before?.phase === 'incremental') return result(before, true);
  const { signal, onProgress } = options;
  let waiting = false;
  while (!signal?.aborted) {
    const outcome = await runWithRetries(
      ws,
      sync,
      {
        trigger: 'backfill',
        stopAfterBackfill: true,
        ...(signal ? { stop: signal } : {}),
        ...(onProgress ? { onProgress: (p: Progress) => onProgress(p, { run: runs + 1 }) } : {}),
      },
      options.onRetry,
      options.onWait,
    ).catch((err: unknown) => {
      // Another sync of the bundle holds the lane (a `sluice serve` elsewhere, say): take turns with it.
      if ((err as { code?: string }).code !== 'LANE_BUSY') throw err;
      if (!waiting) options.onLaneBusy?.((err as Error).message);
      waiting = true;
      return null;
    });
    if (!outcome) {
      await pause(LANE_BUSY_RETRY_MS, signal);
      continue;
    }
    waiting = false;
    runs += 1;
    batches += outcome.run.counters.batches;
    records += outcome.run.counters.read;
    if (outcome.checkpoint.phase === 'incremental') return result(outcome.checkpoint);
    if (outcome.resumeAt !== undefined) {
      options.onPause?.({
        resumeAt: outcome.resumeAt,
        reason: outcome.run.errorMessage ?? 'API budget spent',
      });
      await pause(outcome.resumeAt - Date.now(), signal);
    }
  }
  // Stopped: done only if the backfill finished meanwhile (another process's run, say).
  return result(await ws.store.getCheckpoint(sync));
}

/** Waits `ms`, or less if `signal` aborts (the loop's condition then ends the backfill). */
async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  await sleep(Math.max(0, ms), undefined, signal ? { signal } : {}).catch(() => undefined);
}
