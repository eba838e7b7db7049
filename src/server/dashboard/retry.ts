import { setTimeout as sleep } from 'node:timers/promises';
import { currentHolder } from '../../core/holder.ts';
import type { Store } from '../../core/ports.ts';
import { type RetryOutcome, retryDeadLetters } from '../../engine/retry.ts';
import { bundleIndex, laneOf } from '../../runtime/lanes.ts';
import type { Workspace } from '../../runtime/workspace.ts';

/** How long a retry from the page waits for its sync's lane, trying again while another run holds it. */
const LANE_WAIT_MS = 30_000;

/**
 * Retries a sync's open dead letters — all of them, or only the one with id `only` — as a run of its
 * own in the sync's lane. A lane busy with another run (the bundle's other syncs take their turns)
 * refuses the retry before it starts anything; it is tried again every quarter second for 30 s.
 */
export async function retryLetters(ws: Workspace, sync: string, only?: number): Promise<RetryOutcome> {
  const deadline = Date.now() + LANE_WAIT_MS;
  while (true) {
    try {
      return await retryOnce(ws, sync, only);
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if ((code !== 'LANE_BUSY' && code !== 'SYNC_BUSY') || Date.now() > deadline) throw err;
      await sleep(250);
    }
  }
}

/**
 * The workspace retries a whole sync; for one letter the same engine retry runs over a view of the
 * store whose open letters are that one alone (everything else is the store itself).
 */
async function retryOnce(ws: Workspace, sync: string, only: number | undefined): Promise<RetryOutcome> {
  if (only === undefined) return ws.retryDeadLetters(sync);
  const spec = ws.sync(sync);
  const store = oneLetterView(ws.store, only);
  const source = await ws.openSource(sync);
  try {
    const target = await ws.openTarget(sync, source);
    try {
      return await retryDeadLetters({
        spec,
        source,
        target,
        store,
        holder: currentHolder(),
        lane: laneOf(sync, bundleIndex(ws.config.config.bundles), 'retry'),
      });
    } finally {
      await target.close?.();
    }
  } finally {
    await source.close?.();
  }
}

function oneLetterView(store: Store, id: number): Store {
  return new Proxy(store, {
    get(target, property) {
      if (property === 'listDeadLetters')
        return async (query: Parameters<Store['listDeadLetters']>[0]) =>
          (await target.listDeadLetters(query)).filter((letter) => letter.id === id);
      const value = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
