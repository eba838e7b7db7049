import { createHash } from 'node:crypto';
import { asSluiceError } from '../core/errors.ts';
import { parseJson, stringifyJson } from '../core/json.ts';
import type { NewDeadLetter, RunContext } from '../core/ports.ts';
import type { Json, Row } from '../core/types.ts';
import { isJsonNull } from '../core/values.ts';
import type { RunSpec } from './run.ts';

/**
 * Maps a batch. A record whose `map` throws is dead-lettered with the error; one mapped to null is
 * skipped on purpose. `sources[i]` is the source record `mapped[i]` came from (the same array where
 * there is no map): an array, not a Map keyed by record, so a batch allocates no hash table.
 */
export async function mapRecords(
  records: Row[],
  { map, key }: Pick<RunSpec, 'map' | 'key'>,
  ctx: RunContext,
): Promise<{ mapped: Row[]; sources: Row[]; deadLetters: NewDeadLetter[] }> {
  const deadLetters: NewDeadLetter[] = [];
  if (!map) return { mapped: records, sources: records, deadLetters };
  const mapped: Row[] = [];
  const sources: Row[] = [];
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    try {
      // A synchronous map is not awaited: an await per record costs a promise and a turn of the queue.
      let out = map(record, ctx);
      if (isThenable(out)) out = await out;
      if (!out) continue;
      mapped.push(out);
      sources.push(record);
    } catch (err) {
      deadLetters.push(deadLetter(record, key, `map failed: ${asSluiceError(err).message}`));
    }
  }
  return { mapped, sources, deadLetters };
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * The first key field a record lacks: absent, null or empty text. Such a record cannot be written by
 * key (an empty key is a fragment, not a record), so it is set aside rather than written.
 */
export function missingKey(record: Row, key: readonly string[]): string | undefined {
  for (let i = 0; i < key.length; i++) {
    const k = key[i]!;
    const v = record[k];
    if (v === null || v === undefined || v === '') return k;
  }
  return undefined;
}

/** A record's key values as the JSON text dead letters and fingerprints name it by. */
export function keyText(record: Row, key: readonly string[]): string {
  return stringifyJson(key.map((k) => record[k] ?? null));
}

/** A hash of a record as written, to tell a re-read record that has not changed since. */
export function fingerprintOf(record: Row): string {
  return createHash('sha1')
    .update(stringifyJson(record, { replacer: distinctly }))
    .digest('base64');
}

/**
 * JSON writes NaN, ±Infinity, -0 and a JSON-null document as `null` or `0`: in a fingerprint each is
 * marked apart, so a value changing from NaN (or a JSON null) to SQL NULL is a change, not unchanged.
 */
function distinctly(key: string, value: unknown): unknown {
  if (typeof value === 'number' && (!Number.isFinite(value) || Object.is(value, -0)))
    return `\u0000number:${Object.is(value, -0) ? '-0' : String(value)}`;
  if (isJsonNull(value)) return '\u0000json:null';
  return bytesAsBuffer(key, value);
}

/** A dead letter for a source record, named by its key values. */
export function deadLetter(record: Row, key: readonly string[], reason: string): NewDeadLetter {
  const values = key.map((k) => record[k] ?? null);
  return {
    key: values.every((v) => v === null) ? null : (toJson(values) as Json),
    record: toJson(record),
    reason,
  };
}

/**
 * Records are kept in dead letters as JSON: integers beyond 2^53 stay exact, bytes are kept as
 * `{ type: 'Buffer', data }` (as a Buffer writes itself), and what JSON cannot hold at all is dropped.
 */
function toJson(value: unknown): Json {
  return parseJson(stringifyJson(value, { replacer: bytesAsBuffer })) as Json;
}

function bytesAsBuffer(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array && !Buffer.isBuffer(value)
    ? Buffer.from(value.buffer, value.byteOffset, value.byteLength).toJSON()
    : value;
}

/** The sync whose dead letters and fingerprints a run's records are: its own, or its partition's sync's. */
export function recordsOf(spec: Pick<RunSpec, 'name' | 'recordsOf'>): string {
  return spec.recordsOf ?? spec.name;
}
