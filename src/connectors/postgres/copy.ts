import type { Column } from './client.ts';

/**
 * Encodes records as COPY text format (one line per row, tab-separated, `\N` for NULL), each value
 * in the input syntax of its target column: JSON for json/jsonb, array literals for arrays,
 * `\x…` hex for bytea. The server parses every value with the column's own type, so a value it
 * cannot read fails the COPY with PostgreSQL's message, which the target turns into a reject.
 */
export function copyText(records: readonly Record<string, unknown>[], columns: readonly Column[]): string {
  const lines: string[] = new Array(records.length);
  for (let r = 0; r < records.length; r++) {
    const record = records[r]!;
    const cells: string[] = new Array(columns.length);
    for (let c = 0; c < columns.length; c++) {
      const column = columns[c]!;
      const value = record[column.name];
      cells[c] = value === null || value === undefined ? '\\N' : escapeCopy(literal(value, column));
    }
    lines[r] = cells.join('\t');
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

function literal(value: unknown, column: Column): string {
  if (column.type === 'json' || column.type === 'jsonb') return JSON.stringify(value);
  if (column.category === 'A' && Array.isArray(value)) return arrayLiteral(value, column.element ?? '');
  return scalar(value, column.type);
}

function scalar(value: unknown, type: string): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'bigint':
      return String(value);
    case 'boolean':
      return value ? 't' : 'f';
    default:
      if (value instanceof Date) return value.toISOString();
      if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString('hex')}`;
      if (type === 'bytea' && isSerializedBuffer(value))
        return `\\x${Buffer.from(value.data).toString('hex')}`;
      return JSON.stringify(value);
  }
}

/** A Buffer that went through JSON (a dead letter being retried): `{ type: 'Buffer', data: [...] }`. */
function isSerializedBuffer(value: unknown): value is { data: number[] } {
  const v = value as { type?: unknown; data?: unknown };
  return v !== null && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data);
}

/** `{1,NULL,"a \"b\""}`: every element quoted (so commas, braces and spaces are data), NULL bare. */
function arrayLiteral(values: readonly unknown[], element: string): string {
  const parts = values.map((v) => {
    if (v === null || v === undefined) return 'NULL';
    if (Array.isArray(v)) return arrayLiteral(v, element);
    const text = element === 'json' || element === 'jsonb' ? JSON.stringify(v) : scalar(v, element);
    return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  });
  return `{${parts.join(',')}}`;
}

/** COPY text escapes: backslash, and the characters that delimit fields and rows. */
function escapeCopy(text: string): string {
  if (!/[\\\t\n\r]/.test(text)) return text;
  return text
    .replaceAll('\\', '\\\\')
    .replaceAll('\t', '\\t')
    .replaceAll('\n', '\\n')
    .replaceAll('\r', '\\r');
}
