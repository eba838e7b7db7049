import type { RunTrigger } from '../core/types.ts';

/**
 * The lane a run waits in. A bundle is one lane, so its syncs run one at a time; a sync outside any
 * bundle is a lane of its own. A webhook run gets a lane of its own too, so it never waits behind a
 * bundle's backfill (the sync's own lease still keeps two runs of one sync apart).
 */
export function laneOf(sync: string, bundleOf: ReadonlyMap<string, string>, trigger: RunTrigger): string {
  if (trigger === 'webhook') return `webhook:${sync}`;
  const bundle = bundleOf.get(sync);
  return bundle ? `bundle:${bundle}` : `sync:${sync}`;
}

export function bundleIndex(bundles: Record<string, { syncs: string[] }>): Map<string, string> {
  const index = new Map<string, string>();
  for (const [bundle, { syncs }] of Object.entries(bundles))
    for (const sync of syncs) index.set(sync, bundle);
  return index;
}
