import { setTimeout as sleep } from 'node:timers/promises';
import { asSluiceError } from '../core/errors.ts';
import { currentHolder } from '../core/holder.ts';
import { claimOf, type RunQueue, type RunRequest } from '../core/ports.ts';
import type { RunTrigger } from '../core/types.ts';
import { bundleIndex, laneOf } from './lanes.ts';
import type { Workspace } from './workspace.ts';

// How often a waiting CLI run looks whether its turn has come: a lane hands over in milliseconds.
const TURN_POLL_MS = 25;

/**
 * Runs `fn` when it is this process's turn in the sync's lane. The run waits in the store's durable
 * queue like any requested run (owned by this process, so no other runs it), behind the lane's
 * earlier requests, and holds the lane's queue slot while it runs: a `sluice run` or `sluice
 * backfill` takes turns with `sluice serve` instead of polling for a gap. A store without a queue
 * (PostgreSQL, for now) runs `fn` at once; the lane's run lease still keeps runs apart.
 */
export async function inTurn<T>(
  ws: Workspace,
  sync: string,
  trigger: RunTrigger,
  fn: () => Promise<T>,
  options: { signal?: AbortSignal; onWait?: (waiting: RunRequest) => void } = {},
): Promise<T> {
  const queue = ws.store.queue;
  if (!queue) return fn();
  const holder = currentHolder();
  const leaseMs = ws.config.config.runtime.lease;
  const lane = laneOf(sync, bundleIndex(ws.config.config.bundles), trigger);
  const request = await queue.enqueue({ sync, lane, trigger, owner: holder, leaseMs });
  const claimed = await waitTurn(queue, request, holder, leaseMs, options);
  const renewals = setInterval(
    () => {
      // A failed renewal only shortens the slot's lease; the run's own lease keeps the lane held.
      queue.renew(claimOf(claimed), leaseMs).catch(() => undefined);
    },
    Math.max(10, Math.floor(leaseMs / 3)),
  );
  renewals.unref();
  try {
    const result = await fn();
    await queue.finish(claimOf(claimed), { status: 'done' });
    return result;
  } catch (err) {
    const error = asSluiceError(err);
    await queue.finish(claimOf(claimed), {
      status: 'failed',
      errorCode: error.code,
      errorMessage: error.message,
    });
    throw err;
  } finally {
    clearInterval(renewals);
  }
}

async function waitTurn(
  queue: RunQueue,
  request: RunRequest,
  holder: string,
  leaseMs: number,
  options: { signal?: AbortSignal; onWait?: (waiting: RunRequest) => void },
): Promise<RunRequest> {
  let told = false;
  try {
    while (true) {
      // Nothing else may clear the lane of a process that died in it (no `serve` may be running).
      await queue.recover();
      const claimed = await queue.claimOwn(request.id, holder, leaseMs);
      if (claimed) return claimed;
      if (!told) options.onWait?.(request);
      told = true;
      await sleep(TURN_POLL_MS, undefined, options.signal ? { signal: options.signal } : {});
    }
  } catch (err) {
    await queue.cancel(request.id, {
      code: 'CANCELLED',
      message: 'the command stopped waiting for its turn',
    });
    throw err;
  }
}
