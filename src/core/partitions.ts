import type { Checkpoint } from './ports.ts';
import { addCounters, type Counters, type Cursor, zeroCounters } from './types.ts';

/**
 * A partitioned backfill (`backfill.partitions`): the key range up to the high-water mark, split into
 * ranges of about equal size, each moved by runs of its own with a checkpoint of its own. The sync's
 * own checkpoint stays in backfill (holding the high-water mark taken at the split) until every
 * partition is done; then it goes incremental from that mark, as an unpartitioned backfill does.
 */

/** The name partition `index` (from 1) of `sync`'s backfill goes by: its checkpoint and its runs. */
export function partitionName(sync: string, index: number): string {
  return `${sync}#${index}`;
}

/** `name` is a partition of `sync` (see `partitionName`). */
export function isPartitionOf(name: string, sync: string): boolean {
  return name.startsWith(`${sync}#`) && /^\d+$/.test(name.slice(sync.length + 1));
}

/** The partitions of `sync` among `checkpoints`, in order: the split that was made, whatever the config says now. */
export function partitionsAmong(sync: string, checkpoints: readonly Checkpoint[]): Checkpoint[] {
  const index = (cp: Checkpoint) => Number(cp.sync.slice(sync.length + 1));
  return checkpoints.filter((cp) => isPartitionOf(cp.sync, sync)).sort((a, b) => index(a) - index(b));
}

/** A partition's backfill is done (its checkpoint went past its range). */
export function partitionDone(cp: Checkpoint): boolean {
  return cp.phase === 'incremental';
}

/**
 * The checkpoints of a split: the sync's own (in backfill, estimate the whole) and one a partition,
 * partition i reading after `ends[i - 1]` up to `ends[i]` (the first from the start, the last up to
 * the high-water mark). Partitions beyond the ranges there are (a table smaller than the count) are
 * done at once.
 */
export function splitCheckpoints(
  sync: string,
  partitions: number,
  split: { highWaterMark: Cursor | null; ends: readonly Cursor[]; estimate: number | null; exact: boolean },
  at: string,
): { parent: Checkpoint; partitions: Checkpoint[] } {
  const base = {
    phase: 'backfill' as const,
    sweep: null,
    totals: zeroCounters(),
    backfillDone: 0,
    backfillStartedAt: at,
    backfillEndedAt: null,
    updatedAt: at,
    version: 1,
  };
  const ranges = split.ends.length + 1;
  const share = split.estimate === null ? null : Math.ceil(split.estimate / ranges);
  const parent: Checkpoint = {
    ...base,
    sync,
    cursor: null,
    highWaterMark: split.highWaterMark,
    backfillEstimate: split.estimate,
    backfillEstimateExact: split.exact,
  };
  const hwm = split.highWaterMark as { key?: unknown } | null;
  const parts = Array.from({ length: partitions }, (_, i): Checkpoint => {
    const name = partitionName(sync, i + 1);
    if (i >= ranges) {
      return {
        ...base,
        sync: name,
        phase: 'incremental',
        cursor: split.highWaterMark,
        highWaterMark: split.highWaterMark,
        backfillEstimate: 0,
        backfillEstimateExact: true,
        backfillEndedAt: at,
      };
    }
    const end = split.ends[i] as { key?: unknown } | undefined;
    return {
      ...base,
      sync: name,
      cursor: i === 0 ? null : (split.ends[i - 1] ?? null),
      // The backfill's bound is the high-water mark's key: a partition's is its range's last key.
      highWaterMark: end && hwm ? ({ ...hwm, key: end.key } as Cursor) : split.highWaterMark,
      backfillEstimate: share,
      backfillEstimateExact: split.exact && ranges === 1,
    };
  });
  return { parent, partitions: parts };
}

/** The sync's progress over its partitions: what is done, and of how much. */
export function partitionProgress(parts: readonly Checkpoint[]): {
  done: number;
  estimate: number | null;
  exact: boolean;
  totals: Counters;
} {
  let totals = zeroCounters();
  let done = 0;
  let estimate: number | null = 0;
  let exact = true;
  for (const cp of parts) {
    totals = addCounters(totals, cp.totals);
    done += cp.backfillDone;
    if (estimate !== null) estimate = cp.backfillEstimate === null ? null : estimate + cp.backfillEstimate;
    exact &&= partitionDone(cp) || cp.backfillEstimateExact;
  }
  return { done, estimate, exact, totals };
}

/** The sync's checkpoint once every partition is done: incremental from the split's high-water mark. */
export function afterPartitions(parent: Checkpoint, parts: readonly Checkpoint[], at: string): Checkpoint {
  const { done, totals } = partitionProgress(parts);
  return {
    ...parent,
    phase: 'incremental',
    cursor: parent.highWaterMark,
    sweep: null,
    totals: addCounters(parent.totals, totals),
    backfillDone: done,
    backfillEstimate: done,
    backfillEstimateExact: true,
    backfillEndedAt: at,
    updatedAt: at,
    version: parent.version + 1,
  };
}
