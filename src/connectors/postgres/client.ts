import pg from 'pg';
import { ConnectorError } from '../../core/errors.ts';
import { pgError } from './errors.ts';
import { qualified, selectColumns, selectDatabaseIdentity } from './sql.ts';

export type Column = {
  name: string;
  /** `typname`: int8, numeric, timestamptz, jsonb, _text… */
  type: string;
  /** `typcategory`: A array, N numeric, D date/time, U user (json, jsonb, uuid)… */
  category: string;
  /** Element type of an array column. */
  element: string | null;
};

const OID = {
  TIMESTAMPTZ: 1184,
  TIMESTAMPTZ_ARRAY: 1185,
  TIMESTAMP: 1114,
  TIMESTAMP_ARRAY: 1115,
  DATE: 1082,
  DATE_ARRAY: 1182,
  NUMERIC_ARRAY: 1231,
  INTERVAL: 1186,
  INTERVAL_ARRAY: 1187,
  TEXT_ARRAY: 1009,
  VARCHAR_ARRAY: 1015,
  JSON: 114,
  JSONB: 3802,
} as const;

/**
 * JSON as JS values, except numbers JS cannot hold exactly (beyond 2^53, or written with more
 * digits than a double keeps): those stay as raw JSON, which `JSON.stringify` writes back verbatim.
 */
export function parseJsonExact(text: string): unknown {
  // The reviver costs 5x a plain parse; most documents have only numbers a double writes back as is.
  if (numbersRoundTrip(text)) return JSON.parse(text);
  return JSON.parse(text, (_key, value, context?: { source?: string }) =>
    typeof value === 'number' && context?.source !== undefined && String(value) !== context.source
      ? (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON(context.source)
      : value,
  );
}

/**
 * True when every number in the JSON `text` is one that `String(JSON.parse(n))` writes back exactly:
 * an integer or decimal of at most 15 digits, no exponent, no leading zero, no trailing fraction
 * zero, not `-0`, not below 1e-6. Strings are skipped. False sends the text to the exact reviver.
 */
export function numbersRoundTrip(text: string): boolean {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      // A string: skip to its closing quote, stepping over escapes.
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
    } else if (c === 45 || (c >= 48 && c <= 57)) {
      const start = c === 45 ? i + 1 : i;
      let j = start;
      while (j < n && isDigit(text.charCodeAt(j))) j++;
      const intDigits = j - start;
      const zeroInt = text.charCodeAt(start) === 48;
      if (zeroInt && intDigits > 1) return false;
      let digits = intDigits;
      if (text.charCodeAt(j) === 46) {
        const fraction = ++j;
        while (j < n && isDigit(text.charCodeAt(j))) j++;
        digits += j - fraction;
        if (text.charCodeAt(j - 1) === 48) return false;
        if (zeroInt && text.startsWith('000000', fraction)) return false;
      } else if (zeroInt && c === 45) return false;
      const e = text.charCodeAt(j);
      if (e === 101 || e === 69 || digits > 15) return false;
      i = j - 1;
    }
  }
  return true;
}

const isDigit = (c: number): boolean => c >= 48 && c <= 57;

/**
 * `2024-05-01 10:00:00.123456+00` (the server's text in UTC) as ISO-8601 with every digit kept:
 * `2024-05-01T10:00:00.123456Z`. JS Dates would drop the microseconds, and a cursor that lost
 * them would re-read or skip rows at a batch boundary.
 */
export function isoTimestamptz(text: string): string {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)\+00$/.exec(text);
  return m ? `${m[1]}T${m[2]}Z` : text; // infinity, BC dates and the like stay as the server wrote them
}

/**
 * Values as exact as PostgreSQL holds them, through this connector's clients only (pg's global
 * parsers are left alone): timestamps, dates and intervals as text; bigint and numeric as strings,
 * in arrays too; json/jsonb parsed without rounding numbers; bytea as a Buffer.
 */
const parseArrayLiteral = pg.types.getTypeParser(
  OID.TEXT_ARRAY as unknown as Parameters<typeof pg.types.getTypeParser>[0],
) as (text: string) => unknown[];
/**
 * A one-dimensional array literal as strings. PostgreSQL quotes every element holding a comma,
 * space, brace, quote or backslash (and empty ones), so `{a,b,NULL}` with none of `"`, `\` or an
 * inner `{` splits on commas exactly; anything else goes to the full parser.
 */
export function parseTextArray(text: string): unknown[] {
  if (text.charCodeAt(0) !== 123 || text.includes('"') || text.includes('\\') || text.includes('{', 1))
    return parseArrayLiteral(text);
  if (text === '{}') return [];
  const parts: (string | null)[] = text.slice(1, -1).split(',');
  for (let i = 0; i < parts.length; i++) if (parts[i] === 'NULL') parts[i] = null;
  return parts;
}
const mapDeep = (value: unknown, fn: (s: string) => string): unknown =>
  Array.isArray(value) ? value.map((v) => mapDeep(v, fn)) : typeof value === 'string' ? fn(value) : value;
const exactTypes: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    switch (oid) {
      case OID.TIMESTAMPTZ:
        return isoTimestamptz;
      case OID.TIMESTAMPTZ_ARRAY:
        return (text: string) => mapDeep(parseTextArray(text), isoTimestamptz);
      case OID.JSON:
      case OID.JSONB:
        return parseJsonExact;
      case OID.TIMESTAMP:
      case OID.DATE:
      case OID.INTERVAL:
        return (text: string) => text;
      case OID.TEXT_ARRAY:
      case OID.VARCHAR_ARRAY:
      case OID.TIMESTAMP_ARRAY:
      case OID.DATE_ARRAY:
      case OID.NUMERIC_ARRAY:
      case OID.INTERVAL_ARRAY:
        return parseTextArray;
      default:
        return pg.types.getTypeParser(oid, format as 'text');
    }
  }) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * A small pool for one source or target. Sessions run in UTC with ISO dates, so timestamps read
 * and written as text mean one instant whatever the server's defaults.
 */
export function createPool(url: string, max: number): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    types: exactTypes,
    options: '-c TimeZone=UTC -c DateStyle=ISO,YMD',
    application_name: 'sluice',
  });
  // An idle connection the server drops (pg_terminate_backend, restart) must not crash the process;
  // the pool discards it and the next query opens a new one.
  pool.on('error', () => undefined);
  // A checked-out client whose socket closes also emits 'error'; the query in flight already
  // rejects with it, so the event itself needs no handling beyond not crashing the process.
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

export async function databaseIdentity(client: pg.ClientBase): Promise<string> {
  const { rows } = await client.query<{ id: string }>(selectDatabaseIdentity);
  return rows[0]!.id;
}

export async function describeTable(client: pg.ClientBase, schema: string, table: string): Promise<Column[]> {
  const name = qualified(schema, table);
  const exists = await client.query<{ oid: string | null }>('SELECT to_regclass($1) AS oid', [name]);
  if (!exists.rows[0]?.oid) {
    throw new ConnectorError('TABLE_MISSING', `table ${schema}.${table} does not exist`);
  }
  const { rows } = await client.query<Column>(selectColumns, [name]);
  return rows;
}

/** Runs `fn` on a pooled client; a client whose connection broke is discarded, not reused. */
export async function withClient<T>(
  pool: pg.Pool,
  doing: string,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw pgError(`${doing}: cannot connect`, err);
  }
  let broken: Error | undefined;
  try {
    return await fn(client);
  } catch (err) {
    if (!(err instanceof ConnectorError) || (err as { kind?: string }).kind === 'retryable')
      broken = err as Error;
    throw err;
  } finally {
    client.release(broken);
  }
}
