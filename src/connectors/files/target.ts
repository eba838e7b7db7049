import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConnectorError } from '../../core/errors.ts';
import { parseJson, stringifyJson } from '../../core/json.ts';
import type { Target, WriteRequest } from '../../core/ports.ts';
import type { Rejected, Row, WriteResult } from '../../core/types.ts';
import {
  fieldReason,
  isJsonArray,
  isJsonNull,
  keptJson,
  numbersKeepText,
  rawJsonText,
} from '../../core/values.ts';
import { WriterLock } from './lock.ts';
import { MALFORMED_FIELD } from './source.ts';

/**
 * Appends records to a JSON Lines file. Appending is not idempotent by key, so the file alone
 * cannot absorb a replayed batch; a sidecar `<path>.sluice` holds the file's length after the last
 * confirmed write, made durable before `write()` resolves:
 *
 * - Bytes past that length were never confirmed, so no checkpoint covers them (a checkpoint only
 *   follows a confirmed write): opening the target cuts them. A crash mid-batch leaves neither a
 *   torn line nor half a batch that the replay would write again; nor does a failed write.
 * - A crash after the confirmation but before the engine saved its checkpoint replays that one
 *   batch. The sidecar also names the last batch appended and where it started; the next run
 *   starts by rolling back a batch of its first batch's id (the engine gives a replay the id of
 *   the write it replays), and a write under that id replaces those lines, so the file holds the
 *   batch once, as it was read the last time.
 *
 * So: exactly once, whole lines only, as long as the engine's checkpoints and this file agree.
 * The file belongs to this target: a second target opening it meanwhile is refused (`WriterLock`),
 * and anything another program appends past the confirmed length is cut.
 * A file found shorter than the sidecar says (rotated, truncated by hand) is taken as it is.
 * A failed append whose bytes cannot be cut either leaves the target broken: it refuses every later
 * write rather than append after torn bytes, until it is opened again (which cuts them).
 *
 * Numbers are written as they were read: a bigint as its digits, a raw JSON number verbatim, −0
 * as `-0`. A record with a value the JSON Lines source would read back as another is rejected, the
 * reason naming the field: NaN and ±Infinity (JSON has no such numbers), a JSON `null` document
 * (`jsonNull`: it would read back as no value), a `json` value whose text is not how JSON writes its
 * value (whitespace, key order, duplicate keys, `1.50`: a reader gets the value, not the text).
 */
export class JsonlTarget implements Target {
  private readonly path: string;
  private readonly fh: FileHandle;
  private length: number;
  /** The last batch appended, and the length of the file before it. */
  private last: LastBatch | null;
  /** Why no more batches may be appended: set when a failed append's bytes could not be cut. */
  private broken: string | null = null;

  private readonly lock: WriterLock;

  private constructor(
    path: string,
    fh: FileHandle,
    length: number,
    last: LastBatch | null,
    lock: WriterLock,
  ) {
    this.path = path;
    this.fh = fh;
    this.length = length;
    this.last = last;
    this.lock = lock;
  }

  static async open(path: string): Promise<JsonlTarget> {
    await mkdir(dirname(path), { recursive: true });
    // Taken before the file is read: what this target confirms, no other writer may cut.
    const lock = await WriterLock.take(path);
    const fh = await open(path, 'a').catch(async (err: unknown) => {
      await lock.release();
      throw err;
    });
    try {
      const size = (await fh.stat()).size;
      const sidecar = await readSidecar(path);
      const confirmed = sidecar?.length ?? null;
      const length = confirmed === null ? size : Math.min(confirmed, size);
      if (size > length) {
        await fh.truncate(length);
        await fh.sync();
      }
      // A last batch the file no longer wholly holds (cut, rotated) cannot be replaced any more.
      const last = sidecar?.last && sidecar.last.start <= length ? sidecar.last : null;
      if (confirmed !== length) await writeSidecar(path, length, last);
      return new JsonlTarget(path, fh, length, last, lock);
    } catch (err) {
      await fh.close();
      await lock.release();
      throw err;
    }
  }

  async write(records: Row[], req: WriteRequest): Promise<WriteResult<Row>> {
    req.signal.throwIfAborted();
    if (this.broken !== null) throw this.brokenError();
    const rejected: Rejected<Row>[] = [];
    const lines: string[] = [];
    for (const record of records) {
      const malformed = record[MALFORMED_FIELD] as { reason?: unknown } | undefined;
      if (malformed !== undefined) {
        rejected.push({ record, reason: `malformed source record: ${String(malformed.reason)}` });
        continue;
      }
      const { reason, negativeZero } = lineProblem(record);
      if (reason !== null) {
        rejected.push({ record, reason });
        continue;
      }
      try {
        lines.push(
          negativeZero ? stringifyJson(record, { replacer: keepNegativeZero }) : stringifyJson(record),
        );
      } catch (err) {
        rejected.push({ record, reason: `cannot be written as JSON: ${(err as Error).message}` });
      }
    }
    if (lines.length === 0) return { written: 0, rejected };
    const bytes = Buffer.from(`${lines.join('\n')}\n`);
    // A replay of the last batch appended (its checkpoint was never saved): its lines go first.
    const start = this.last?.id === req.batch ? this.last.start : this.length;
    try {
      if (start < this.length) await this.cutTo(start);
      await this.fh.write(bytes);
      await this.fh.sync();
      await writeSidecar(this.path, start + bytes.length, { id: req.batch, start });
    } catch (err) {
      await this.cutBack(err);
      throw new ConnectorError(
        'TARGET_WRITE_FAILED',
        `cannot append to ${this.path}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    this.length = start + bytes.length;
    this.last = { id: req.batch, start };
    return { written: lines.length, rejected };
  }

  /** Drops the last batch appended if it is `batch`: it was confirmed, but its checkpoint never saved. */
  async rollback(batch: string): Promise<void> {
    if (this.last?.id !== batch || this.broken !== null) return;
    await this.cutTo(this.last.start);
  }

  /** Confirmed shorter first: a crash while the file is cut or appended then leaves nothing torn kept. */
  private async cutTo(start: number): Promise<void> {
    await writeSidecar(this.path, start, null);
    this.last = null;
    await this.fh.truncate(start);
    await this.fh.sync();
    this.length = start;
  }

  /** Cuts what a failed batch left, so the next batch (a retry, say) follows whole lines only. */
  private async cutBack(failure: unknown): Promise<void> {
    try {
      await this.fh.truncate(this.length);
    } catch (err) {
      this.broken = `appending failed (${(failure as Error).message}) and cutting the partial bytes failed too (${(err as Error).message})`;
    }
  }

  private brokenError(): ConnectorError {
    return new ConnectorError(
      'TARGET_BROKEN',
      `${this.path} may end in a torn batch: ${this.broken}. Nothing more is appended to it by this target; ` +
        `open it again (restart the run or \`sluice serve\`): opening cuts the file back to the ${this.length} bytes confirmed in ${sidecarOf(this.path)}.`,
    );
  }

  async close(): Promise<void> {
    try {
      await this.fh.close();
    } finally {
      await this.lock.release();
    }
  }
}

/**
 * Why `record`, written as a JSON line, would not read back (`parseJson`) as it is, naming the
 * field; and whether it holds a −0, which `JSON.stringify` writes as `0`.
 */
function lineProblem(record: Row): { reason: string | null; negativeZero: boolean } {
  const state = { negativeZero: false };
  for (const field of Object.keys(record)) {
    if (field === MALFORMED_FIELD) continue;
    const problem = valueProblem(record[field], true, state, 0);
    if (problem !== null) return { reason: fieldReason(field, problem), negativeZero: false };
  }
  return { reason: null, negativeZero: state.negativeZero };
}

/**
 * `standalone`: the value is a field's or an array element's, where `null` means no value. Past
 * `MAX_DEPTH` the walk stops: a cycle is left for `JSON.stringify` to refuse.
 */
function valueProblem(
  value: unknown,
  standalone: boolean,
  state: { negativeZero: boolean },
  depth: number,
): string | null {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return `${value} cannot be written in JSON (it would read back as null)`;
    if (Object.is(value, -0)) state.negativeZero = true;
    return null;
  }
  if (typeof value !== 'object' || value === null || value instanceof Date || value instanceof Uint8Array)
    return null;
  if (depth > MAX_DEPTH) return null;
  if (isJsonNull(value))
    return standalone ? 'a JSON null document would read back as no value (null) from JSON Lines' : null;
  const raw = rawJsonText(value);
  if (raw !== undefined) {
    const back = stringifyJson(parseJson(raw));
    return back === raw ? null : `JSON ${raw} would read back from JSON Lines as ${back}`;
  }
  const kept = keptJson(value);
  if (kept && (kept.keep === 'text' ? kept.text !== stringifyJson(value) : !numbersKeepText(kept.text)))
    return 'JSON Lines keeps a JSON value, not its text as written (whitespace, key order, duplicate keys, 1.50)';
  // An array that is not a JSON document is a column's array: its elements stand alone, and one
  // that is an array document could not be told from a dimension once read back.
  const elements = Array.isArray(value) && standalone && !isJsonArray(value);
  for (const item of Array.isArray(value) ? value : Object.values(value)) {
    if (elements && isJsonArray(item))
      return 'JSON Lines cannot tell an array document in an array of documents from a nested array';
    const problem = valueProblem(item, elements, state, depth + 1);
    if (problem !== null) return problem;
  }
  return null;
}

const MAX_DEPTH = 1000;

function keepNegativeZero(_key: string, value: unknown): unknown {
  return Object.is(value, -0) ? NEGATIVE_ZERO : value;
}
const NEGATIVE_ZERO = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON('-0');

export const sidecarOf = (path: string): string => `${path}.sluice`;

type LastBatch = { id: string; start: number };

export async function readSidecar(path: string): Promise<{ length: number; last: LastBatch | null } | null> {
  let text: string;
  try {
    text = await readFile(sidecarOf(path), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const { length, last } = JSON.parse(text) as { length?: unknown; last?: Partial<LastBatch> | null };
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    throw new ConnectorError(
      'TARGET_SIDECAR_INVALID',
      `${sidecarOf(path)} does not hold a file length; remove it to start over`,
    );
  }
  const valid = last && typeof last.id === 'string' && Number.isSafeInteger(last.start);
  return { length, last: valid ? { id: last.id!, start: last.start! } : null };
}

/** Written aside, flushed and renamed over, so a crash leaves the old length or the new, never a torn one. */
async function writeSidecar(path: string, length: number, last: LastBatch | null): Promise<void> {
  const sidecar = sidecarOf(path);
  const temp = `${sidecar}.tmp`;
  await writeFile(temp, JSON.stringify({ length, last }), { flush: true });
  await rename(temp, sidecar);
  await syncDir(dirname(path));
}

/** Makes a rename durable; some platforms (Windows) cannot open a folder, where renames are durable already. */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await fh.sync();
  } catch {
    // EISDIR/EPERM where a folder cannot be fsynced; nothing more to do there.
  } finally {
    await fh.close();
  }
}
