import type { Checkpoint } from './ports.ts';
import { addCounters, type Counters, type Cursor, type Phase } from './types.ts';

/**
 * How a checkpoint moves, as pure functions shared by every caller: where the next read starts and
 * what a confirmed page makes of the checkpoint.
 *
 * In backfill the sync reads in key order up to the high-water mark. In incremental, `cursor` is the
 * furthest position read; it only ever moves forward, because every read after it starts strictly
 * after it in the source's own order. A lookback sweep re-reads the window behind it: it starts at
 * `sweep` (a position `lookback` earlier), reads up to `cursor` (the read's `until`) across as many
 * runs as it takes, and only then does reading go on after `cursor`. A run is caught up only when a
 * read after `cursor` comes back done, so it never says so with part of the window unread.
 */

export type ReadPlan = {
  phase: Phase;
  /** Where the read starts (exclusive of the position a cursor holds). */
  cursor: Cursor | null;
  highWaterMark: Cursor | null;
  /** The last position the read may return (a sweep ends at the checkpoint's cursor); null: unbounded. */
  until: Cursor | null;
};

/** What the next read of a sync is, given its checkpoint. */
export function nextRead(cp: Checkpoint): ReadPlan {
  const base = { phase: cp.phase, highWaterMark: cp.highWaterMark };
  if (cp.phase === 'incremental' && cp.sweep !== null) return { ...base, cursor: cp.sweep, until: cp.cursor };
  return { ...base, cursor: cp.cursor, until: null };
}

/**
 * What a confirmed page did: moved within its phase, ended the backfill, ended a lookback sweep,
 * or caught up (an unbounded incremental read came back done).
 */
export type PageEvent = 'moved' | 'backfill-done' | 'sweep-done' | 'caught-up';

/** The checkpoint once a page read by `nextRead(cp)` is confirmed with `batch`'s counts, at time `at`. */
export function afterPage(
  cp: Checkpoint,
  page: { next: Cursor; done: boolean },
  batch: Counters,
  at: string,
): { checkpoint: Checkpoint; event: PageEvent } {
  const inBackfill = cp.phase === 'backfill';
  const backfillDone = inBackfill ? cp.backfillDone + batch.read : cp.backfillDone;
  const base: Checkpoint = {
    ...cp,
    totals: addCounters(cp.totals, batch),
    backfillDone,
    updatedAt: at,
    version: cp.version + 1,
  };
  if (inBackfill) {
    if (!page.done) {
      // Progress is a guess until the end; a guess overtaken by what is done says so.
      const estimate = cp.backfillEstimate;
      const overtaken = estimate !== null && backfillDone >= estimate;
      return {
        checkpoint: {
          ...base,
          cursor: page.next,
          ...(overtaken ? { backfillEstimate: backfillDone + 1, backfillEstimateExact: false } : {}),
        },
        event: 'moved',
      };
    }
    // The history is done: incremental starts at the high-water mark taken when the backfill began,
    // so everything changed since then is read.
    return {
      checkpoint: {
        ...base,
        phase: 'incremental',
        cursor: cp.highWaterMark ?? page.next,
        sweep: null,
        backfillEstimate: backfillDone,
        backfillEstimateExact: true,
        backfillEndedAt: at,
      },
      event: 'backfill-done',
    };
  }
  if (cp.sweep !== null) {
    return page.done
      ? { checkpoint: { ...base, sweep: null }, event: 'sweep-done' }
      : { checkpoint: { ...base, sweep: page.next }, event: 'moved' };
  }
  return { checkpoint: { ...base, cursor: page.next }, event: page.done ? 'caught-up' : 'moved' };
}

/** A checkpoint with a lookback sweep starting at `start`, unless one is under way or it would read nothing. */
export function beginSweep(cp: Checkpoint, start: Cursor | null): Checkpoint {
  if (cp.phase !== 'incremental' || cp.sweep !== null || start === null || cp.cursor === null) return cp;
  return { ...cp, sweep: start };
}
