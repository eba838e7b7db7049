import { parseJson, stringifyJson } from '../../core/json.ts';
import type { SourceSchema } from '../../core/ports.ts';
import {
  decimalOf,
  familyOf,
  isJsonArray,
  isJsonNull,
  isSerializedBytes,
  jsonProblem,
  jsonTextOf,
  readJson,
  sameDecimal,
  type ValueFamily,
} from '../../core/values.ts';
import type { SqlValue } from './sql.ts';

/**
 * SQLite values in the value model (core/values.ts). SQLite has five storage classes and a column
 * type that is only a name, so what the model needs beyond them is kept in what SQLite stores and
 * recognised by the column's declared type:
 *
 * - NaN as the text `NaN` in a column of REAL affinity (SQLite stores a NaN REAL as NULL);
 * - booleans as 0/1, read back as booleans where the column is declared BOOLEAN;
 * - JSON documents as their text in a column declared with `JSON` (`JSON TEXT` where this target
 *   creates it: TEXT affinity, so `1.50` stays the text it is);
 * - arrays as JSON text in a column declared `X[]`, elements as the family X has them: floats'
 *   NaN and ±Infinity as their names, bytes as `\x…` hex text, JSON documents as their text.
 *
 * A value SQLite would store changed — NaN outside a REAL column, −0 where an affinity turns it
 * into 0, an integer beyond 64 bits, a number written as text that a numeric affinity would round
 * (`0.1000000000000000055`), UTF-16 that is not Unicode — is refused, the reason naming the field.
 */

/** SQLite's column affinity for a declared type (datatype3.html §3.1). */
export type Affinity = 'INTEGER' | 'TEXT' | 'BLOB' | 'REAL' | 'NUMERIC';

export function affinityOf(declared: string): Affinity {
  const t = declared.toUpperCase();
  if (t.includes('INT')) return 'INTEGER';
  if (t.includes('CHAR') || t.includes('CLOB') || t.includes('TEXT')) return 'TEXT';
  if (t.includes('BLOB') || t.trim() === '') return 'BLOB';
  if (t.includes('REAL') || t.includes('FLOA') || t.includes('DOUB')) return 'REAL';
  return 'NUMERIC';
}

/** Why a value was not stored: the caller names the field. */
export class Refusal {
  readonly reason: string;
  constructor(reason: string) {
    this.reason = reason;
  }
}

export type Encode = (value: unknown) => SqlValue | Refusal;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** How values are stored in a column declared `declared` (its name and its affinity). */
export function encoderOf(declared: string): Encode {
  const affinity = affinityOf(declared);
  const { family, array } = familyOf('sqlite', declared);
  const plain = plainEncoder(affinity);
  if (array) {
    return (value) => {
      if (!Array.isArray(value)) return plain(value);
      const items = encodeElements(value, family);
      return items instanceof Refusal ? items : stringifyJson(items);
    };
  }
  if (family === 'json') {
    return (value) => {
      if (value === null || value === undefined) return null;
      const problem = jsonProblem(value);
      return problem ? new Refusal(problem) : jsonTextOf(value);
    };
  }
  if (family === 'bytes')
    return (value) => (isSerializedBytes(value) ? Buffer.from(value.data) : plain(value));
  return plain;
}

function plainEncoder(affinity: Affinity): Encode {
  const numeric = affinity === 'INTEGER' || affinity === 'REAL' || affinity === 'NUMERIC';
  return (value) => {
    switch (typeof value) {
      case 'string':
        if (!value.isWellFormed()) return new Refusal('text that is not valid Unicode (a lone surrogate)');
        return numeric ? numericText(value, affinity) : value;
      case 'number':
        if (Number.isNaN(value))
          return affinity === 'REAL'
            ? 'NaN'
            : new Refusal(`SQLite stores NaN as NULL; only a column of REAL affinity keeps it (as 'NaN')`);
        if (Object.is(value, -0))
          return affinity === 'BLOB'
            ? value // a double, which an untyped column keeps as it is
            : new Refusal(`SQLite stores -0 as 0 in a column of ${affinity} affinity`);
        // node:sqlite binds a JS number as a double; an integer goes as one, as the source had it.
        return Number.isSafeInteger(value) ? BigInt(value) : value;
      case 'bigint':
        return value < INT64_MIN || value > INT64_MAX
          ? new Refusal(`${value} is beyond SQLite's 64-bit integers`)
          : value;
      case 'boolean':
        return value ? 1n : 0n;
      case 'undefined':
        return null;
      default:
        if (value === null) return null;
        if (value instanceof Uint8Array) return value;
        if (value instanceof Date) return value.toISOString();
        if (isJsonNull(value)) return 'null';
        {
          const problem = jsonProblem(value);
          return problem ? new Refusal(problem) : jsonTextOf(value);
        }
    }
  };
}

/**
 * Text bound into a column of numeric affinity, which SQLite converts to a number where it reads
 * as one: kept where the number holds the same value, refused where it would round.
 */
function numericText(text: string, affinity: Affinity): SqlValue | Refusal {
  const decimal = decimalOf(text);
  if (decimal === null) return text;
  if (affinity !== 'REAL' && /^\s*[+-]?\d+\s*$/.test(text)) {
    const n = BigInt(text.trim());
    if (n >= INT64_MIN && n <= INT64_MAX) return text;
  }
  const stored = Number(text);
  return sameDecimal(String(stored), text)
    ? text
    : new Refusal(
        `SQLite would store ${JSON.stringify(text)} as the number ${stored} in a column of ${affinity} affinity`,
      );
}

/** An array's elements as the JSON its column keeps (see the module's comment), or why one cannot be. */
function encodeElements(items: readonly unknown[], family: ValueFamily): unknown[] | Refusal {
  const out: unknown[] = new Array(items.length);
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    let encoded: unknown;
    if (item === null || item === undefined) encoded = null;
    else if (Array.isArray(item) && !(family === 'json' && isJsonArray(item)))
      encoded = encodeElements(item, family);
    else if (family === 'json') {
      const problem = jsonProblem(item);
      encoded = problem ? new Refusal(problem) : jsonTextOf(item);
    } else if (isJsonNull(item)) encoded = new Refusal('JSON null in an array of another type');
    else if (typeof item === 'number' && !Number.isFinite(item))
      encoded =
        family === 'real'
          ? String(item)
          : new Refusal(`${item} in an array whose column is not declared REAL[]`);
    else if (Object.is(item, -0)) encoded = NEGATIVE_ZERO;
    else if (item instanceof Uint8Array)
      encoded =
        family === 'bytes'
          ? `\\x${Buffer.from(item).toString('hex')}`
          : new Refusal('bytes in an array whose column is not declared BLOB[]');
    else if (typeof item === 'string' && !item.isWellFormed())
      encoded = new Refusal('text that is not valid Unicode (a lone surrogate)');
    else encoded = item;
    if (encoded instanceof Refusal) return encoded;
    out[i] = encoded;
  }
  return out;
}

const NEGATIVE_ZERO = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON('-0');

/** How a stored value reads back into the value model for a column declared `declared`; null: as stored. */
export function decoderOf(declared: string): ((value: unknown) => unknown) | null {
  const { family, array } = familyOf('sqlite', declared);
  if (array) {
    return (value) => {
      if (typeof value !== 'string' || value.charCodeAt(0) !== 91) return value;
      let items: unknown;
      try {
        items = parseJson(value);
      } catch {
        return value; // not an array this target wrote: the text it is
      }
      return Array.isArray(items) ? decodeElements(items, family) : value;
    };
  }
  switch (family) {
    case 'json':
      return (value) => {
        if (typeof value !== 'string') return value;
        try {
          return readJson(value, 'text');
        } catch {
          return value; // text that is not JSON, in a column declared JSON: the text it is
        }
      };
    case 'boolean':
      return (value) => (value === 0 || value === 0n ? false : value === 1 || value === 1n ? true : value);
    default:
      return affinityOf(declared) === 'REAL' ? (value) => floatName(value) ?? value : null;
  }
}

/** `NaN`, `Infinity`, `-Infinity` (and SQLite's `Inf`) as the numbers they name; undefined for anything else. */
function floatName(value: unknown): number | undefined {
  switch (value) {
    case 'NaN':
      return Number.NaN;
    case 'Infinity':
    case 'Inf':
      return Number.POSITIVE_INFINITY;
    case '-Infinity':
    case '-Inf':
      return Number.NEGATIVE_INFINITY;
    default:
      return undefined;
  }
}

function decodeElements(items: readonly unknown[], family: ValueFamily): unknown[] {
  return items.map((item) => {
    if (Array.isArray(item)) return decodeElements(item, family);
    if (typeof item !== 'string') return item;
    if (family === 'real') return floatName(item) ?? item;
    if (family === 'bytes' && /^\\x([0-9a-f]{2})*$/i.test(item)) return Buffer.from(item.slice(2), 'hex');
    if (family === 'json') {
      try {
        return readJson(item, 'text');
      } catch {
        return item;
      }
    }
    return item;
  });
}

/** The type a created column declares for a family, so its values are kept and read back as they were. */
const DECLARED: Record<ValueFamily, string> = {
  integer: 'INTEGER',
  real: 'REAL',
  numeric: 'NUMERIC TEXT', // TEXT affinity: `1.50` and 30 digits stay the text they are
  boolean: 'BOOLEAN',
  text: 'TEXT',
  bytes: 'BLOB',
  json: 'JSON TEXT',
  any: '',
};
const DECLARED_ELEMENT: Record<ValueFamily, string> = { ...DECLARED, numeric: 'NUMERIC', json: 'JSON' };

/**
 * Types to declare for a source's columns: a SQLite source's own (where they read as a type name,
 * since they are written into DDL); another system's by family (`numeric(38,10)` is `NUMERIC TEXT`,
 * `jsonb` is `JSON TEXT`, `integer[]` is `INTEGER[]`); none for a source that declares none.
 */
export function declaredTypes(schema: SourceSchema | undefined): Map<string, string> {
  const types = new Map<string, string>();
  if (!schema) return types;
  for (const { name, type } of schema.columns) {
    if (schema.dialect === 'sqlite') {
      if (/^[A-Za-z][A-Za-z0-9_ ]*(\(\s*\d+\s*(,\s*\d+\s*)?\))?(\[\])?$/.test(type)) types.set(name, type);
      continue;
    }
    const { family, array } = familyOf(schema.dialect, type);
    const declared = array ? `${DECLARED_ELEMENT[family]}[]` : DECLARED[family];
    if (declared !== '' && declared !== '[]') types.set(name, declared);
  }
  return types;
}
