import pg from 'pg';
import {
  decimalOf,
  decimalScale,
  fieldReason,
  isJsonArray,
  isJsonNull,
  isSerializedBytes,
  jsonProblem,
  readJson,
  sameDecimal,
  textProblem,
} from '../../core/values.ts';
import type { Column } from './client.ts';

/**
 * PostgreSQL values in the value model (core/values.ts), read from and checked against a table's
 * columns: rows are read as the server's text and decoded here, one decoder per column chosen once.
 */

/** The server's text of one non-null value, as the value model has it. */
export type Decode = (text: string) => unknown;

/** Decodes each field of `rows` that has a decoder, in place. */
export function decodeRows(rows: Record<string, unknown>[], decoders: readonly [string, Decode][]): void {
  if (decoders.length === 0) return;
  for (const row of rows) {
    for (const [name, decode] of decoders) {
      const text = row[name];
      if (typeof text === 'string') row[name] = decode(text);
    }
  }
}

/** pg's parsers switched off: every value comes back as the server's text (or null). */
export const asText: pg.CustomTypesConfig = {
  getTypeParser: (() => (text: string) => text) as unknown as pg.CustomTypesConfig['getTypeParser'],
};

/** The decoder for `column`, or null where the value model keeps the server's text as it is. */
export function decoderOf(column: Column): Decode | null {
  if (column.category !== 'A') return scalarDecoder(column.type);
  // Elements separated by another delimiter (box's `;`) keep the array's text, as arrays with
  // explicit bounds (`[0:1]={a,b}`) do: a JS array would lose what makes them what they are.
  if (column.delimiter !== ',') return null;
  const element = scalarDecoder(column.element ?? 'text');
  return (text) => {
    if (text.charCodeAt(0) !== 123) return text;
    const items = parseTextArray(text);
    return element ? mapElements(items, element) : items;
  };
}

function scalarDecoder(type: string): Decode | null {
  switch (type) {
    case 'bool':
      return (text) => text === 't';
    case 'int2':
    case 'int4':
    case 'oid':
      return Number;
    case 'int8':
      return BigInt;
    case 'float4':
    case 'float8':
      // `NaN`, `Infinity` and `-Infinity` read as the numbers they name; extra_float_digits gives every digit.
      return Number;
    case 'json':
      return (text) => readJson(text, 'text');
    case 'jsonb':
      return (text) => readJson(text, 'numbers');
    case 'bytea':
      return (text) => Buffer.from(text.slice(2), 'hex');
    case 'timestamptz':
      return isoTimestamptz;
    default:
      // numeric, text and the rest: the server's text is the value.
      return null;
  }
}

function mapElements(items: readonly unknown[], decode: Decode): unknown[] {
  return items.map((v) =>
    Array.isArray(v) ? mapElements(v, decode) : typeof v === 'string' ? decode(v) : v,
  );
}

/**
 * `2024-05-01 10:00:00.123456+00` (the server's text in UTC) as ISO-8601 with every digit kept:
 * `2024-05-01T10:00:00.123456Z`. JS Dates would drop the microseconds, and a cursor that lost
 * them would re-read or skip rows at a batch boundary.
 */
export function isoTimestamptz(text: string): string {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)\+00$/.exec(text);
  return m ? `${m[1]}T${m[2]}Z` : text; // infinity, BC dates and the like stay as the server wrote them
}

const parseArrayLiteral = pg.types.getTypeParser(
  1009 as unknown as Parameters<typeof pg.types.getTypeParser>[0],
) as (text: string) => unknown[];

/**
 * An array literal as nested arrays of strings and nulls. PostgreSQL quotes every element holding a
 * comma, space, brace, quote or backslash (and empty ones), so `{a,b,NULL}` with none of `"`, `\`
 * or an inner `{` splits on commas exactly; anything else goes to pg's full parser.
 */
export function parseTextArray(text: string): unknown[] {
  if (text.charCodeAt(0) !== 123 || text.includes('"') || text.includes('\\') || text.includes('{', 1))
    return parseArrayLiteral(text);
  if (text === '{}') return [];
  const parts: (string | null)[] = text.slice(1, -1).split(',');
  for (let i = 0; i < parts.length; i++) if (parts[i] === 'NULL') parts[i] = null;
  return parts;
}

/** Why a value cannot be stored in its column exactly (the reason names the field), or null. */
export type Check = (value: unknown) => string | null;

/**
 * The check for `column`: what PostgreSQL would refuse with a message that does not name the field
 * (a NUL character), and what it would store changed without a word — JSON null or bytes in a
 * column of another type, NaN in JSON, digits beyond a numeric's scale or a timestamp's precision,
 * trailing spaces cut to a varchar's length, a float4 that cannot hold the number. `textInput`:
 * strings are the column's input text (a CSV source), checked by the server itself.
 */
export function checkOf(column: Column, textInput: boolean): Check {
  const type = column.category === 'A' ? (column.element ?? 'text') : column.type;
  const scalar = scalarCheck(type, column);
  const check = column.category === 'A' ? elementsCheck(scalar, type === 'json' || type === 'jsonb') : scalar;
  return (value) => {
    if (value === null || value === undefined) return null;
    if (typeof value === 'string' && textInput) return textProblem(value);
    const problem = check(value);
    return problem === null ? null : fieldReason(column.name, problem);
  };
}

/** `json`: elements are JSON documents, an array among them one document (`isJsonArray`), not a dimension. */
function elementsCheck(element: Check, json: boolean): Check {
  const check: Check = (value) => {
    if (!Array.isArray(value)) return typeof value === 'string' ? textProblem(value) : null;
    for (const item of value) {
      if (item === null || item === undefined) continue;
      const problem = Array.isArray(item) && !(json && isJsonArray(item)) ? check(item) : element(item);
      if (problem) return problem;
    }
    return null;
  };
  return check;
}

function scalarCheck(type: string, column: Column): Check {
  const where = `a ${column.fullType} column`;
  const json = type === 'json' || type === 'jsonb';
  const typed = typmodCheck(type, column.typmod);
  return (value) => {
    // A string is a JSON string value in a json column: the server says what it cannot hold, by column.
    if (typeof value === 'string') return json ? null : (textProblem(value) ?? typed(value));
    if (isJsonNull(value))
      return json ? null : `JSON null cannot be stored in ${where} (only json and jsonb hold it)`;
    if (json) return jsonProblem(value);
    if (value instanceof Uint8Array || isSerializedBytes(value))
      return type === 'bytea' ? null : `bytes cannot be stored in ${where}`;
    if (typeof value === 'number' || typeof value === 'bigint') return typed(String(value), value);
    return null;
  };
}

/**
 * Checks that a value's text fits a column's modifier (or float4) without rounding; `number` is the
 * value itself where it is a JS number. PostgreSQL refuses what overflows; these it would round.
 */
function typmodCheck(type: string, typmod: number): (text: string, number?: unknown) => string | null {
  const none = () => null;
  switch (type) {
    case 'numeric': {
      if (typmod < 4) return none;
      // Scale is the low 11 bits of (typmod - 4), sign-extended (PostgreSQL 15 allows negative scales).
      const scale = (((typmod - 4) & 0x7ff) ^ 0x400) - 0x400;
      const precision = ((typmod - 4) >> 16) & 0xffff;
      return (text) => {
        const needs = decimalScale(text);
        return needs !== null && needs > scale
          ? `${text} has more decimal places than numeric(${precision},${scale}) keeps`
          : null;
      };
    }
    case 'timestamp':
    case 'timestamptz':
    case 'time':
    case 'timetz':
    case 'interval': {
      const precision = type === 'interval' ? (typmod === -1 ? 0xffff : typmod & 0xffff) : typmod;
      if (precision < 0 || precision >= 6) return none;
      return (text) => {
        const fraction = /\d:\d\d\.(\d+)/.exec(text)?.[1]?.replace(/0+$/, '') ?? '';
        return fraction.length > precision
          ? `${text} has more fractional digits of a second than ${type}(${precision}) keeps`
          : null;
      };
    }
    case 'varchar':
      if (typmod < 4) return none;
      return (text) =>
        codePoints(text) > typmod - 4
          ? `text longer than varchar(${typmod - 4}) (its trailing spaces would be cut)`
          : null;
    case 'float4':
      return (text, number) => {
        const x = typeof number === 'number' ? number : decimalOf(text) ? Number(text) : null;
        if (x === null || !Number.isFinite(x)) return null;
        if (typeof number !== 'number' && !sameDecimal(String(x), text))
          return `${text} has more digits than a float8 keeps`;
        return float4Keeps(x) ? null : `${text} has more digits than a float4 (real) keeps`;
      };
    case 'float8':
      return (text, number) =>
        typeof number !== 'number' && decimalOf(text) && !sameDecimal(String(Number(text)), text)
          ? `${text} has more digits than a float8 (double precision) keeps`
          : null;
    default:
      return none;
  }
}

function codePoints(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * Whether the float4 nearest `x`, written as PostgreSQL writes a float4 (the fewest digits that
 * read back as it), reads back as `x`: true for a value read from a float4 column (0.1), false
 * for a double with more digits than a float4 has (0.123456789).
 */
function float4Keeps(x: number): boolean {
  const f = Math.fround(x);
  if (!Number.isFinite(f)) return false;
  for (let digits = 1; digits <= 9; digits++) {
    const shortest = Number(f.toPrecision(digits));
    if (Math.fround(shortest) === f) return shortest === x;
  }
  return f === x;
}
