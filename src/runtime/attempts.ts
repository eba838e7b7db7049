import { setTimeout as sleep } from 'node:timers/promises';
import { asSluiceError, type SluiceError } from '../core/errors.ts';
import { retryDelay } from '../core/policy.ts';
import type { RunRequest } from '../core/ports.ts';
import type { RunOutcome } from '../engine/run.ts';
import { inTurn } from './turn.ts';
import type { RunParams, Workspace } from './workspace.ts';

export type RetryNotice = { attempt: number; of: number; delayMs: number; error: SluiceError };

/**
 * One run of a sync that outlives a momentary failure: a dropped connection, a busy database, a 5xx.
 * The run is started again from the checkpoint after the sync's `retries.backoff`, up to
 * `retries.attempts` attempts at the same batch (a run that saved a batch before failing starts the
 * count over: every batch gets the same attempts). A failure a retry cannot fix (bad credentials, a
 * missing table) is thrown at once, as is the last one.
 */
export async function runWithRetries(
  ws: Workspace,
  sync: string,
  params: RunParams,
  onRetry?: (notice: RetryNotice) => void,
  onWait?: (waiting: RunRequest) => void,
): Promise<RunOutcome> {
  const { retries } = ws.sync(sync);
  for (let attempt = 1; ; attempt++) {
    let runId: number | null = null;
    try {
      const run = () =>
        ws.run(sync, {
          ...params,
          onStart: (started) => {
            runId = started.id;
            params.onStart?.(started);
          },
        });
      // Each attempt takes its turn in the sync's lane, behind what the lane has queued already.
      return await inTurn(ws, sync, params.trigger, run, {
        ...(params.stop ? { signal: params.stop } : {}),
        ...(onWait ? { onWait } : {}),
      });
    } catch (err) {
      const error = asSluiceError(err);
      if (!error.transient || params.stop?.aborted) throw error;
      const run = runId === null ? null : await ws.store.getRun(runId);
      if (run && run.counters.batches > 0) attempt = 1;
      if (attempt >= retries.attempts) throw error;
      const delayMs = retryDelay(retries, attempt);
      onRetry?.({ attempt, of: retries.attempts, delayMs, error });
      const waited = await sleep(delayMs, true, params.stop ? { signal: params.stop } : {}).catch(
        () => false,
      );
      if (!waited) throw error;
    }
  }
}
