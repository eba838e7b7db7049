/** A record as it travels between connectors: a flat or nested JSON-like object. */
export type Row = Record<string, unknown>;

/**
 * A JSON value as Sluice keeps it: `bigint` stands for an integer beyond ±(2^53 − 1), written as a
 * JSON number by `stringifyJson` (core/json.ts) and read back exactly by `parseJson`.
 */
export type Json = null | boolean | number | bigint | string | Json[] | { [key: string]: Json };

/** Opaque to everyone but the source that made it; persisted in checkpoints as JSON. */
export type Cursor = Json;

export type Phase = 'backfill' | 'incremental';

export type Page<R> = {
  records: R[];
  /** Where the next read starts. Saved in the checkpoint once this page's batch is confirmed. */
  next: Cursor;
  /**
   * True when the source has nothing after `next` right now: in backfill, the history up to the
   * high-water mark is done; in incremental, the sync is caught up.
   */
  done: boolean;
  /**
   * Read but not turned into records (a malformed line, say): dead-lettered with the batch and
   * counted as read and rejected, so nothing the source held goes silently nowhere.
   */
  rejected?: Rejected<Json>[];
};

export type Rejected<R> = { record: R; reason: string };

export type WriteResult<R> = {
  written: number;
  /** Records the target refused, with its reason; they go to the dead letters, the batch goes on. */
  rejected: Rejected<R>[];
};

export type RunTrigger =
  | 'run'
  | 'backfill'
  | 'schedule'
  | 'webhook'
  | 'api'
  | 'retry'
  | 'rerun'
  | 'watchdog'
  | 'recovery';

export type RunStatus = 'running' | 'succeeded' | 'failed' | 'timed_out' | 'abandoned';

export type Counters = {
  batches: number;
  read: number;
  written: number;
  /**
   * Read again (by a lookback sweep, say) and found equal to the version Sluice last wrote, so not
   * written again.
   */
  unchanged: number;
  rejected: number;
};

export const zeroCounters = (): Counters => ({ batches: 0, read: 0, written: 0, unchanged: 0, rejected: 0 });

export function addCounters(a: Counters, b: Counters): Counters {
  return {
    batches: a.batches + b.batches,
    read: a.read + b.read,
    written: a.written + b.written,
    unchanged: a.unchanged + b.unchanged,
    rejected: a.rejected + b.rejected,
  };
}
