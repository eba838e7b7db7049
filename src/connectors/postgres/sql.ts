/**
 * The PostgreSQL dialect: identifier quoting and the keyset predicate, each built here only.
 * Values are always parameters; their types come from the columns they are compared with, so a
 * `timestamptz` cursor given as text compares as a timestamp, at full microsecond precision.
 */

export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export const qualified = (schema: string, table: string): string =>
  `${quoteIdent(schema)}.${quoteIdent(table)}`;

export const columnList = (names: readonly string[]): string => names.map(quoteIdent).join(', ');

const params = (count: number, first: number): string =>
  Array.from({ length: count }, (_, i) => `$${first + i}`).join(', ');

/**
 * `(a, b) > ($1, $2)` for a full position; a position shorter than the fields means "at or after
 * these leading values" (`(a) >= ($1)`), used where the key part was dropped (a lookback).
 * `first` is the number of the first parameter, or the values themselves as SQL literals.
 */
export function keysetAfter(
  fields: readonly string[],
  width: number,
  first: number | readonly string[],
): string {
  const op = width < fields.length ? '>=' : '>';
  const head = fields.slice(0, Math.min(width, fields.length));
  return `(${columnList(head)}) ${op} (${rhs(head.length, first)})`;
}

export function keysetAtMost(fields: readonly string[], first: number | readonly string[]): string {
  return `(${columnList(fields)}) <= (${rhs(fields.length, first)})`;
}

const rhs = (count: number, first: number | readonly string[]): string =>
  typeof first === 'number' ? params(count, first) : first.slice(0, count).join(', ');

/**
 * A cursor value as an SQL literal, for statements that take no parameters (`COPY (SELECT …)`).
 * Untyped, like a parameter: it takes the type of the column it is compared with.
 */
export function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  const text =
    typeof value === 'string'
      ? value
      : typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean'
        ? String(value)
        : value instanceof Date
          ? value.toISOString()
          : JSON.stringify(value);
  return escapeLiteral(text);
}

/** `'…'` with quotes doubled; `E'…'` with backslashes doubled too where there are any (as pg's escapeLiteral). */
function escapeLiteral(text: string): string {
  const quoted = text.replaceAll("'", "''");
  return text.includes('\\') ? ` E'${quoted.replaceAll('\\', '\\\\')}'` : `'${quoted}'`;
}

/**
 * One page of a keyset read, as a source's `bounds` gives it to a target that copies it: rows after
 * `after` (null: from the start) up to and including `upTo` (null: an empty page), in `fields` order.
 */
export type PostgresRange = {
  phase: 'backfill' | 'incremental';
  fields: string[];
  after: unknown[] | null;
  upTo: unknown[] | null;
};

/** The database's identity, the same for every URL that reaches it, and the same as the PostgreSQL store's. */
export const selectDatabaseIdentity =
  "SELECT 'postgres:' || (SELECT system_identifier FROM pg_control_system()) || '/' || current_database() AS id";

/** A table's columns: name, full type (modifiers included) and type; `$1` is the `regclass` text. */
export const selectColumns = `
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS "fullType", a.atttypid::int AS oid,
  a.atttypmod AS typmod
FROM pg_attribute a
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`;

/** The catalog rows of types `$1` (oids), to follow domains to their base and arrays to their element. */
export const selectTypes = `
SELECT oid::int AS oid, typname AS name, typtype AS kind, typcategory AS category,
  typbasetype::int AS base, typtypmod AS typmod, typelem::int AS element, typdelim AS delimiter
FROM pg_type WHERE oid = ANY($1::oid[])`;

/** Column sets of the table's primary key and unique indexes (non-partial, no expressions). */
export const selectUniqueKeys = `
SELECT array_agg(a.attname::text ORDER BY a.attname) AS cols
FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
GROUP BY i.indexrelid`;

/** Schemas holding a Sluice store (its checkpoints, runs, dead letters and migrations tables). */
export const selectStoreSchemas = `
SELECT n.nspname AS schema FROM pg_namespace n
WHERE (SELECT count(*) FROM pg_class c WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
       AND c.relname IN ('checkpoints', 'runs', 'dead_letters', 'migrations')) = 4`;
