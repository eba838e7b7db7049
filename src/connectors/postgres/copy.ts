import { isJsonArray, isSerializedBytes, jsonTextOf } from '../../core/values.ts';
import type { Column } from './client.ts';

/** One non-null value in its column's COPY text syntax, escaped. */
type Encode = (value: unknown) => string;

/**
 * Encodes records as COPY text format (one line per row, tab-separated, `\N` for NULL), each value
 * in the input syntax of its target column: JSON for json/jsonb (a `json` value read unchanged
 * keeps its text, `jsonNull` is `null`, a string is a JSON string), array literals for arrays,
 * `\x…` hex for bytea, a float's text with its sign (`-0`), `NaN` and `Infinity`. The server parses
 * every value with the column's own type, so a value it cannot read fails the COPY with
 * PostgreSQL's message, which the target turns into a reject.
 *
 * This runs for every value of every batch, so it allocates little: one encoder per column chosen
 * up front, escaping only the values that need it, and the bytes written into one scratch buffer
 * reused from batch to batch (no string per row or per batch for the garbage collector to promote).
 * The data goes out in pieces of about 64 KiB, so the server parses one while the next is encoded.
 */
export class CopyEncoder {
  private buffer = Buffer.allocUnsafe(1 << 17);

  /** The COPY data of `records`, piece by piece; each piece is a copy the caller may keep. */
  *chunks(
    records: readonly Record<string, unknown>[],
    columns: readonly Column[],
    options: { textInput?: boolean; chunkBytes?: number } = {},
  ): Generator<Buffer> {
    const chunkBytes = options.chunkBytes ?? 1 << 16;
    const names = columns.map((c) => c.name);
    const encoders = columns.map((c) => encoderOf(c, options.textInput ?? false));
    const last = names.length - 1;
    let at = 0;
    for (let r = 0; r < records.length; r++) {
      const record = records[r]!;
      for (let c = 0; c <= last; c++) {
        const value = record[names[c]!];
        const cell = value === null || value === undefined ? '\\N' : encoders[c]!(value);
        // A UTF-16 unit is at most 3 UTF-8 bytes; one more for the delimiter.
        if (at + cell.length * 3 + 1 > this.buffer.length) this.grow(at + cell.length * 3 + 1);
        at += this.buffer.write(cell, at, 'utf8');
        this.buffer[at++] = c === last ? 0x0a : 0x09;
      }
      if (at >= chunkBytes) {
        yield Buffer.from(this.buffer.subarray(0, at));
        at = 0;
      }
    }
    if (at > 0) yield Buffer.from(this.buffer.subarray(0, at));
  }

  private grow(needed: number): void {
    const next = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2));
    this.buffer.copy(next);
    this.buffer = next;
  }
}

/** The COPY text of `records` as one string (tests, and callers that want text). */
export function copyText(
  records: readonly Record<string, unknown>[],
  columns: readonly Column[],
  options: { textInput?: boolean } = {},
): string {
  return Buffer.concat([...new CopyEncoder().chunks(records, columns, options)]).toString('utf8');
}

/**
 * `textInput`: strings are the column's input text (a CSV source, as COPY … CSV reads them), not
 * values: into a json column such a string is the document's text, not a JSON string.
 */
function encoderOf(column: Column, textInput: boolean): Encode {
  const json = column.type === 'json' || column.type === 'jsonb';
  if (json) return (value) => escapeCopy(typeof value === 'string' && textInput ? value : jsonTextOf(value));
  if (column.category === 'A') {
    const element = column.element ?? '';
    return (value) =>
      escapeCopy(Array.isArray(value) ? arrayLiteral(value, element) : scalar(value, column.type));
  }
  const type = column.type;
  return (value) => (typeof value === 'string' ? escapeCopy(value) : escapeCopy(scalar(value, type)));
}

/** A value in its column's input syntax; values the column cannot hold were refused before (`./values.ts`). */
function scalar(value: unknown, type: string): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    default:
      if (value instanceof Date) return value.toISOString();
      if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
      if (type === 'bytea' && isSerializedBytes(value))
        return `\\x${Buffer.from(value.data).toString('hex')}`;
      return jsonTextOf(value);
  }
}

/**
 * `{1,NULL,"a \"b\""}`: every element quoted (so commas, braces and spaces are data), NULL bare. A
 * nested array is a dimension, except an array that is a JSON document in a json array (`isJsonArray`).
 */
function arrayLiteral(values: readonly unknown[], element: string): string {
  const json = element === 'json' || element === 'jsonb';
  let out = '{';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (i > 0) out += ',';
    if (v === null || v === undefined) out += 'NULL';
    else if (Array.isArray(v) && !(json && isJsonArray(v))) out += arrayLiteral(v, element);
    else {
      const text = json ? jsonTextOf(v) : scalar(v, element);
      out +=
        text.includes('\\') || text.includes('"')
          ? `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
          : `"${text}"`;
    }
  }
  return `${out}}`;
}

const NEEDS_ESCAPE = /[\\\t\n\r]/;

/** COPY text escapes: backslash, and the characters that delimit fields and rows. */
function escapeCopy(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text
    .replaceAll('\\', '\\\\')
    .replaceAll('\t', '\\t')
    .replaceAll('\n', '\\n')
    .replaceAll('\r', '\\r');
}
