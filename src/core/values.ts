import { decimalOf, numbersRoundTrip, parseJson, sameDecimal, stringifyJson } from './json.ts';

export { type Decimal, decimalOf, sameDecimal } from './json.ts';

/**
 * The value model every connector reads into and writes from (the README's "Values" table):
 *
 * - SQL NULL and an absent field are `null`; a JSON document that is JSON `null` is `jsonNull`.
 * - Integers are numbers within ±(2^53 − 1); beyond, and always for PostgreSQL `bigint`, `bigint`.
 * - Exact decimals (PostgreSQL `numeric`) are strings; floats are numbers, NaN and ±Infinity kept.
 * - Bytes are `Uint8Array`s (Buffers); JSON documents are their parsed values, the text of a
 *   `json` value remembered (see `readJson`) so it can be written back as it was.
 * - Everything a system keeps as text of its own (dates, intervals, geometry, addresses) is that text.
 *
 * A target that cannot hold a value exactly rejects its record with a reason naming the field
 * (`fieldReason`), never changes it.
 */

type RawJson = { readonly rawJSON: string };
const { rawJSON, isRawJSON } = JSON as unknown as {
  rawJSON(text: string): RawJson;
  isRawJSON(value: unknown): value is RawJson;
};

/** A JSON document that is JSON `null`, as a json or jsonb column holds it: not SQL NULL (`null`). */
export type JsonNull = { readonly rawJSON: 'null' };

/**
 * The one value for a JSON `null` document. `JSON.stringify` writes it as `null`, so inside a
 * document it is plain JSON null; as a field's value it says "the JSON document null", not "no value".
 */
export const jsonNull: JsonNull = rawJSON('null') as JsonNull;

export function isJsonNull(value: unknown): value is JsonNull {
  return value === jsonNull || (isRawJSON(value) && value.rawJSON === 'null');
}

/** The text of a `JSON.rawJSON` value (an exact number, a json scalar kept as written); undefined for others. */
export function rawJsonText(value: unknown): string | undefined {
  return isRawJSON(value) ? value.rawJSON : undefined;
}

/**
 * Arrays that are one JSON document each. In a json[] column a JS array is either a dimension of
 * the column's array or a document that is an array (`'[1, 2]'::jsonb`); these are the latter.
 */
const arrayDocuments = new WeakSet<object>();

/** Marks `items` as one JSON document (an element of a json or jsonb array column), not a dimension. */
export function jsonArray<T extends unknown[]>(items: T): T {
  arrayDocuments.add(items);
  return items;
}

/** Whether `value` is an array that is one JSON document (read from JSON text, or marked by `jsonArray`). */
export function isJsonArray(value: unknown): value is unknown[] {
  return Array.isArray(value) && arrayDocuments.has(value);
}

/** The text a JSON document was read from, by the object it was parsed into, and what of it counts. */
type Kept = { text: string; keep: 'text' | 'numbers'; canonical: string | undefined };
const texts = new WeakMap<object, Kept>();

/**
 * A JSON document read from a column, as the value model has it: `null` text is `jsonNull`; a
 * top-level string or number whose text is not how `stringifyJson` writes it (`1.50`, `"caf\u00e9"`)
 * keeps its text as a `JSON.rawJSON` value; an array is marked a document (`isJsonArray`); an
 * object or array remembers its text where `keep`
 * asks (`text`: always, as `json` keeps whitespace, key order and duplicate keys; `numbers`: only
 * where some number is written otherwise than its value would be, as `jsonb` keeps `1.50`), for
 * `jsonTextOf` to write back while the value is unchanged. Throws on text that is not JSON.
 */
export function readJson(text: string, keep: 'text' | 'numbers'): unknown {
  // Most documents hold only numbers a plain parse reads exactly (parseJson asks the same first).
  const plain = numbersRoundTrip(text);
  const value = plain ? JSON.parse(text) : parseJson(text);
  if (value === null) return jsonNull;
  if (typeof value !== 'object' || isRawJSON(value)) {
    const trimmed = text.trim();
    return stringifyJson(value) === trimmed ? value : rawJSON(trimmed);
  }
  if (Array.isArray(value)) arrayDocuments.add(value);
  if (keep === 'text' || !plain) texts.set(value, { text, keep, canonical: undefined });
  return value;
}

/**
 * The text a JSON value was read from (`readJson`) and what of it counts, where it still holds what
 * was read: its canonical JSON is the text's. Undefined for a value changed since, or never read.
 */
export function keptJson(value: unknown): { text: string; keep: 'text' | 'numbers' } | undefined {
  const known = keptOrCanonical(value);
  if (known?.kept === undefined) return undefined;
  return { text: known.kept, keep: texts.get(value as object)!.keep };
}

/**
 * Whether every number in the JSON `text` reads back (`parseJson`) as a value `stringifyJson`
 * writes as it is written there: false for `1.50` or `1e2` (the number 1.5, 100), true for
 * `12345678901234567890` (a bigint) and `0.1000000000000000000001` (kept as raw JSON).
 */
export function numbersKeepText(text: string): boolean {
  if (numbersRoundTrip(text)) return true;
  let keeps = true;
  JSON.parse(text, (_key, value: unknown, context?: { source?: string }) => {
    const source = context?.source;
    if (typeof value === 'number' && source !== undefined && /[.eE]/.test(source)) {
      const written = String(value);
      if (written !== source && sameDecimal(written, source)) keeps = false;
    }
    return value;
  });
  return keeps;
}

/** The JSON text to write for `value`: the text it was read from while unchanged, else `stringifyJson`'s. */
export function jsonTextOf(value: unknown): string {
  if (isJsonNull(value)) return 'null';
  const known = keptOrCanonical(value);
  return known ? (known.kept ?? known.canonical) : stringifyJson(value);
}

function keptOrCanonical(value: unknown): { kept: string | undefined; canonical: string } | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const kept = texts.get(value);
  if (!kept) return undefined;
  kept.canonical ??= stringifyJson(parseJson(kept.text));
  const canonical = stringifyJson(value);
  return { kept: canonical === kept.canonical ? kept.text : undefined, canonical };
}

/**
 * Why `value` cannot be written as JSON exactly — a NaN or infinite number (JSON writes `null`),
 * bytes (JSON has none) — or null when it can. Past 1,000 levels the walk stops: a cycle is left
 * for `JSON.stringify` to refuse.
 */
export function jsonProblem(value: unknown, depth = 0): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : `${value} is not a JSON number`;
  if (typeof value !== 'object' || value === null || isRawJSON(value) || value instanceof Date) return null;
  if (value instanceof Uint8Array) return 'bytes are not JSON';
  if (depth > 1000) return null;
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    const problem = jsonProblem(item, depth + 1);
    if (problem) return problem;
  }
  return null;
}

/**
 * Bytes that went through JSON (a JSON Lines file, a dead letter), as a Buffer writes itself:
 * `{ type: 'Buffer', data: [...] }`. A bytes column takes them back as the bytes they were.
 */
export function isSerializedBytes(value: unknown): value is { type: 'Buffer'; data: number[] } {
  const v = value as { type?: unknown; data?: unknown } | null;
  return v !== null && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data);
}

/** A record's rejection reason that names the field at fault. */
export const fieldReason = (field: string, why: string): string => `field "${field}": ${why}`;

/** Why a string cannot be stored as text, or null: a NUL character, or UTF-16 that is not Unicode. */
export function textProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'text holding a NUL character';
  return text.isWellFormed() ? null : 'text that is not valid Unicode (a lone surrogate)';
}

/** Digits after the decimal point a literal's value needs (`1.50` → 1, `100` → 0); null for none. */
export function decimalScale(literal: string): number | null {
  const d = decimalOf(literal);
  return d === null ? null : Math.max(0, -d.exponent);
}

/**
 * The kinds of value a column declares, across dialects, for a target that creates its table from
 * another system's declarations. `any` is a column that declares nothing (SQLite), or a type no
 * other family fits; `text` holds every value as its text.
 */
export type ValueFamily = 'integer' | 'real' | 'numeric' | 'boolean' | 'text' | 'bytes' | 'json' | 'any';
export type DeclaredType = { family: ValueFamily; array: boolean };

/** The family a column's declared type belongs to, in its dialect (`postgres`, `sqlite`, `csv`). */
export function familyOf(dialect: string, type: string): DeclaredType {
  const t = type.trim();
  if (t.endsWith('[]')) return { family: familyOf(dialect, t.slice(0, -2)).family, array: true };
  const family =
    dialect === 'postgres' ? postgresFamily(t) : dialect === 'sqlite' ? sqliteFamily(t) : ('text' as const);
  return { family, array: false };
}

function postgresFamily(type: string): ValueFamily {
  if (/^(smallint|integer|bigint)$/.test(type)) return 'integer';
  if (/^(real|double precision)$/.test(type)) return 'real';
  if (/^numeric\b/.test(type)) return 'numeric';
  if (type === 'boolean') return 'boolean';
  if (type === 'bytea') return 'bytes';
  if (type === 'json' || type === 'jsonb') return 'json';
  return 'text';
}

/**
 * SQLite's own affinity rules (datatype3.html §3.1), in its order, with three names it has no
 * affinity for recognised first: JSON, BOOL, and NUMERIC or DECIMAL (a numeric affinity, or text
 * affinity where `TEXT` is added to keep the digits as written).
 */
function sqliteFamily(type: string): ValueFamily {
  const t = type.toUpperCase();
  if (t.includes('JSON')) return 'json';
  if (t.includes('BOOL')) return 'boolean';
  if (t.includes('INT')) return 'integer';
  if (t.includes('NUMERIC') || t.includes('DECIMAL')) return 'numeric';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'text';
  if (t.includes('BLOB')) return 'bytes';
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'real';
  return 'any';
}
