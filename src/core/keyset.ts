import { stringifyJson } from './json.ts';
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

/**
 * Orders two scalar values roughly as SQL does for one column: NULL first, numbers, then text by
 * code unit. Only for values an API hands over (the newest timestamp in a page, say): never for a
 * database's own order, which follows its collation and types (see `keysetPageEnd`).
 */
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

/**
 * Whether two positions hold the same values. Equality, unlike order, needs no collation: a
 * position read back from the same row is the same text, number or bytes.
 */
export function samePosition(a: Position, b: Position): boolean {
  return a.length === b.length && stringifyJson(a) === stringifyJson(b);
}

/**
 * A cursor value as epoch milliseconds where it is a time: ISO-8601 text, a Date, or an epoch number
 * (seconds below 1e11, milliseconds above, as `rewindPosition` reads them); null otherwise.
 */
export function timeOfValue(value: unknown): number | null {
  if (typeof value === 'string') {
    // An epoch in text (a bigint column read as a string) is a number, not a date for Date.parse.
    if (/^-?\d+$/.test(value)) return timeOfValue(Number(value));
    const t = Date.parse(value);
    return Number.isNaN(t) ? null : t;
  }
  if (typeof value === 'bigint') return timeOfValue(Number(value));
  if (typeof value === 'number') return Number.isFinite(value) ? (value < 1e11 ? value * 1000 : value) : null;
  if (value instanceof Date) return value.getTime();
  return null;
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
 * phase is done: a short page, or a page whose last row is the read's bound — the high-water mark's
 * key in backfill, `until` in a lookback sweep — so no empty read follows it. The bound is matched
 * by equality, never by a JavaScript comparison: the database alone decides order (its collation,
 * its numeric types), and a page that stops short of the bound only costs one more, empty, read.
 */
export function keysetPageEnd(
  req: {
    phase: 'backfill' | 'incremental';
    cursor: unknown;
    highWaterMark: unknown;
    until?: unknown;
    limit: number;
  },
  count: number,
  last: unknown[] | null,
  incremental: boolean,
): { next: KeysetCursor; done: boolean } {
  if (!last) return { next: (req.cursor ?? req.highWaterMark ?? {}) as KeysetCursor, done: true };
  const bound = boundOf(req, incremental);
  const atBound = bound !== null && samePosition(last, bound);
  return { next: incremental ? { k: last } : { key: last }, done: count < req.limit || atBound };
}

/** The last position a keyset read may return: the high-water key in backfill, `until` in a sweep. */
export function boundOf(
  req: { phase: 'backfill' | 'incremental'; highWaterMark: unknown; until?: unknown },
  incremental: boolean,
): unknown[] | null {
  if (req.phase === 'backfill') return (req.highWaterMark as KeysetCursor | null)?.key ?? null;
  return positionIn((req.until ?? null) as KeysetCursor | null, incremental);
}
