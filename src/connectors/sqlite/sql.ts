/** The SQLite dialect: identifier quoting and the keyset predicate, each built here only. */

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export const columnList = (names: readonly string[]): string => names.map(quoteIdent).join(', ');

/**
 * `(a, b) > (?, ?)` for a full position; with `inclusivePrefix` a position shorter than the fields
 * means "at or after these leading values" (`a >= ?`), used where the key part was dropped.
 */
export function keysetAfter(fields: readonly string[], width: number): string {
  if (width < fields.length) {
    const head = fields.slice(0, width);
    return `(${columnList(head)}) >= (${head.map(() => '?').join(', ')})`;
  }
  return `(${columnList(fields)}) > (${fields.map(() => '?').join(', ')})`;
}

export function keysetAtMost(fields: readonly string[]): string {
  return `(${columnList(fields)}) <= (${fields.map(() => '?').join(', ')})`;
}

export type SqlValue = null | number | bigint | string | Uint8Array;

/**
 * Values SQLite can bind: objects and arrays are stored as JSON text, booleans as 0/1. node:sqlite
 * binds every JS number as a double, which an untyped column keeps as REAL; safe integers go as
 * bigints so they are stored as INTEGER, as the source had them.
 */
export function toSqlValue(value: unknown): SqlValue {
  if (value === undefined || value === null) return null;
  switch (typeof value) {
    case 'number':
      return Number.isSafeInteger(value) ? BigInt(value) : value;
    case 'bigint':
    case 'string':
      return value;
    case 'boolean':
      return value ? 1n : 0n;
    default:
      if (value instanceof Uint8Array) return value;
      if (value instanceof Date) return value.toISOString();
      return JSON.stringify(value);
  }
}

/** A page of a SQLite source in its own terms: the rows after `after` up to `upTo`, in `fields` order. */
export type SqliteRange = { fields: string[]; after: unknown[] | null; upTo: unknown[] | null };
