import { asSluiceError } from '../core/errors.ts';
import type { NewDeadLetter, RunContext } from '../core/ports.ts';
import type { Json, Row } from '../core/types.ts';
import type { RunSpec } from './run.ts';

/**
 * Maps a batch. A record whose `map` throws is dead-lettered with the error; one mapped to null is
 * skipped on purpose. `origin` leads from each mapped record back to its source record.
 */
export async function mapRecords(
  records: Row[],
  { map, key }: Pick<RunSpec, 'map' | 'key'>,
  ctx: RunContext,
): Promise<{ mapped: Row[]; origin: Map<Row, Row>; deadLetters: NewDeadLetter[] }> {
  const origin = new Map<Row, Row>();
  const deadLetters: NewDeadLetter[] = [];
  if (!map) return { mapped: records, origin, deadLetters };
  const mapped: Row[] = [];
  for (const record of records) {
    try {
      const out = await map(record, ctx);
      if (!out) continue;
      mapped.push(out);
      origin.set(out, record);
    } catch (err) {
      deadLetters.push(deadLetter(record, key, `map failed: ${asSluiceError(err).message}`));
    }
  }
  return { mapped, origin, deadLetters };
}

/** A dead letter for a source record, named by its key values. */
export function deadLetter(record: Row, key: readonly string[], reason: string): NewDeadLetter {
  const values = key.map((k) => record[k] ?? null);
  return { key: values.every((v) => v === null) ? null : toJson(values), record: toJson(record), reason };
}

/** Records are stored in dead letters as JSON; values JSON cannot hold become strings. */
function toJson(record: unknown): Json {
  return JSON.parse(JSON.stringify(record, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))) as Json;
}
