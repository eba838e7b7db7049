import type { Row } from './types.ts';

/**
 * Keyset positions. A position is the tuple of values a record sorts by: `[key...]` in backfill
 * (key order), `[cursorField, key...]` in incremental. Reading resumes strictly after the last
 * position of the previous batch, so records sharing one cursor value are neither skipped nor
 * repeated, however many there are.
 */
export type Position = readonly unknown[];

export function positionOf(record: Row, fields: readonly string[]): unknown[] {
  return fields.map((f) => record[f] ?? null);
}

/** The fields a phase sorts by: the key alone in backfill, cursor then key in incremental. */
export function orderFields(
  key: readonly string[],
  cursorField: string | null,
  incremental: boolean,
): string[] {
  return incremental && cursorField ? [cursorField, ...key] : [...key];
}

/**
 * Moves an incremental position back by `lookbackMs` so a run re-reads rows committed late with an
 * older cursor value. ISO-8601 strings and epoch numbers (seconds or milliseconds, kept in their
 * unit) are supported; the key part is dropped, so the re-read starts before every tie.
 */
export function rewindPosition(position: Position, lookbackMs: number): unknown[] | null {
  if (lookbackMs <= 0) return [...position];
  const value = position[0];
  if (typeof value === 'string') {
    const t = Date.parse(value);
    if (Number.isNaN(t)) return null;
    return [formatLike(value, t - lookbackMs)];
  }
  if (typeof value === 'number') {
    // Below 1e11 a number is epoch seconds (until the year 5138), above it epoch milliseconds.
    return [value < 1e11 ? value - lookbackMs / 1000 : value - lookbackMs];
  }
  return null;
}

/** Formats `ms` the way `example` is formatted, so the rewound value compares as text too. */
function formatLike(example: string, ms: number): string {
  const iso = new Date(ms).toISOString(); // 2024-05-01T10:00:00.000Z
  if (/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(example)) return iso.slice(0, 19).replace('T', ' ');
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(example)) return `${iso.slice(0, 19)}Z`;
  if (/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/.test(example)) return iso.slice(0, 19);
  return iso;
}

/** Orders two scalar values the way SQL does for one column: NULL first, numbers, then text. */
export function compareValues(a: unknown, b: unknown): number {
  if (a === b) return 0;
  if (a === null || a === undefined) return -1;
  if (b === null || b === undefined) return 1;
  if (typeof a === 'number' || typeof a === 'bigint') {
    if (typeof b === 'number' || typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
    return -1;
  }
  if (typeof b === 'number' || typeof b === 'bigint') return 1;
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** Orders positions; a shorter position is a prefix that sorts before every longer one it starts. */
export function comparePositions(a: Position, b: Position): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const c = compareValues(a[i], b[i]);
    if (c !== 0) return c;
  }
  return a.length - b.length;
}

/**
 * The cursor SQL sources keep: `{ key: [...] }` is a position in key order (backfill, and
 * incremental without a cursor field); `{ k: [cursor, ...key] }` a position in `(cursor, key)`
 * order, where `{ k: [cursor] }` alone means "at or after this cursor value". The high-water mark
 * holds both: `key` bounds the backfill, `k` is where incremental starts.
 */
export type KeysetCursor = { key?: unknown[] | null; k?: unknown[] };

/** The position a keyset cursor holds for `phase`: `k` in incremental with a cursor field, else `key`. */
export function positionIn(cursor: KeysetCursor | null, incremental: boolean): unknown[] | null {
  if (!cursor) return null;
  return incremental ? (cursor.k ?? null) : (cursor.key ?? null);
}

/**
 * Where a page of `count` rows ending at position `last` leaves a keyset read, and whether its
 * phase is done: a short page, or, in backfill, a page that reached the high-water mark's key (so no
 * empty read follows it). `compare` orders key positions as the source's system does.
 */
export function keysetPageEnd(
  req: { phase: 'backfill' | 'incremental'; cursor: unknown; highWaterMark: unknown; limit: number },
  count: number,
  last: unknown[] | null,
  incremental: boolean,
  compare: (a: Position, b: Position) => number = comparePositions,
): { next: KeysetCursor; done: boolean } {
  if (!last) return { next: (req.cursor ?? req.highWaterMark ?? {}) as KeysetCursor, done: true };
  const hwmKey = (req.highWaterMark as KeysetCursor | null)?.key;
  const atMark = req.phase === 'backfill' && hwmKey != null && compare(last, hwmKey) >= 0;
  return { next: incremental ? { k: last } : { key: last }, done: count < req.limit || atMark };
}
