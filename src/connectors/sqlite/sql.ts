import type { DatabaseSync } from 'node:sqlite';
import { jsonTextOf } from '../../core/values.ts';

/** The SQLite dialect: identifier quoting and the keyset predicate, each built here only. */

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export const columnList = (names: readonly string[]): string => names.map(quoteIdent).join(', ');

/** Whether `table` has a PRIMARY KEY or UNIQUE index on exactly the `key` columns (an upsert by key needs one). */
export function hasUniqueKey(db: DatabaseSync, table: string, key: readonly string[]): boolean {
  const wanted = [...key].sort().join('\u0000');
  const indexes = db.prepare('SELECT name, "unique" AS u FROM pragma_index_list(?)').all(table);
  for (const index of indexes) {
    if (!index.u) continue;
    const cols = db
      .prepare('SELECT name FROM pragma_index_info(?)')
      .all(String(index.name))
      .map((r) => String(r.name));
    if (cols.sort().join('\u0000') === wanted) return true;
  }
  const pk = db
    .prepare('SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk')
    .all(table)
    .map((r) => String(r.name));
  return pk.sort().join('\u0000') === wanted;
}

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
 * A key or cursor value read by a source, bound back as SQLite stored it: booleans as 0/1, NaN as
 * the text `NaN`, JSON documents and arrays as their JSON text (see `./values.ts`).
 */
export function bindable(value: unknown): SqlValue {
  switch (typeof value) {
    case 'boolean':
      return value ? 1n : 0n;
    case 'number':
      return Number.isNaN(value) ? 'NaN' : value;
    case 'bigint':
    case 'string':
      return value;
    default:
      if (value === null || value === undefined) return null;
      if (value instanceof Uint8Array) return value;
      return jsonTextOf(value);
  }
}

/** A page of a SQLite source in its own terms: the rows after `after` up to `upTo`, in `fields` order. */
export type SqliteRange = { fields: string[]; after: unknown[] | null; upTo: unknown[] | null };
