import { createHash } from 'node:crypto';
import { asSluiceError, SluiceError } from '../core/errors.ts';
import { stringifyJson } from '../core/json.ts';
import type { DeadLetter, RunRecord, Source, Store, Target } from '../core/ports.ts';
import { type Counters, type Json, type Row, zeroCounters } from '../core/types.ts';
import { type FingerprintScope, prepareBatch, settleBatch } from './batch.ts';
import { keyText } from './records.ts';
import type { RunSpec } from './run.ts';

export type RetryOutcome = {
  run: RunRecord;
  /** Open letters taken up. */
  retried: number;
  written: number;
  /** Letters whose record failed again: they stay open, their attempts counted. */
  rejectedAgain: number;
  /** Letters closed because their record is no longer in the source (deleted, or filtered out). */
  gone: number;
  /** Letters with no key (input the source could not read): nothing to send until the source is fixed. */
  unkeyed: number;
};

/**
 * Sends a sync's open dead letters to the target again, as a run of its own (so it never overlaps a
 * regular run). Each record goes as the source holds it now, re-read by key where the source can:
 * the copy kept in the letter may be older than what the source (and, since, the target) has. The
 * kept copy is sent only where the source cannot re-read, and then never over a newer write, since
 * a later run that writes the key closes its letter. A letter whose record is written is closed;
 * one that fails again stays open with one attempt more. The checkpoint is not moved; its totals
 * count what the retry wrote and what was refused again, as a run's do.
 */
export async function retryDeadLetters(options: {
  spec: RunSpec;
  source: Source;
  target: Target;
  store: Store;
  holder: string;
  lane?: string | null;
  limit?: number;
}): Promise<RetryOutcome> {
  const { spec, source, target, store, holder } = options;
  const checkpoint = await store.getCheckpoint(spec.name);
  if (!checkpoint)
    throw new SluiceError('NOTHING_TO_RETRY', `sync "${spec.name}" has not run yet; it has no dead letters`);
  const leaseMs = spec.maxRunDurationMs + 60_000;
  const run = await store.startRun({
    sync: spec.name,
    trigger: 'retry',
    phase: checkpoint.phase,
    holder,
    leaseMs,
    lane: options.lane ?? null,
  });
  const signal = AbortSignal.timeout(leaseMs);
  const ctx = {
    sync: spec.name,
    runId: run.id,
    phase: checkpoint.phase,
    data: store.data,
    payload: null,
    signal,
  };
  // Written records get fingerprints as in a run, so a later lookback sweep does not send them again.
  const scope: FingerprintScope = spec.lookbackMs > 0 && source.rewind ? { backfillFromMs: null } : null;
  const outcome = { retried: 0, written: 0, rejectedAgain: 0, gone: 0, unkeyed: 0 };
  try {
    const letters = await store.listDeadLetters({ sync: spec.name, limit: options.limit ?? 100_000 });
    const keyed = letters.filter((l) => l.key !== null);
    outcome.unkeyed = letters.length - keyed.length;
    for (let i = 0, batch = 1; i < keyed.length; i += spec.batchSize, batch++) {
      const chunk = keyed.slice(i, i + spec.batchSize);
      const { records, gone } = await currentRecords(chunk, source, spec, signal);
      const prepared = await prepareBatch({ records }, checkpoint.phase, ctx, {
        spec,
        store,
        scope,
        setAside: null,
      });
      const result = prepared.toWrite.length
        ? await target.write(prepared.toWrite, { signal, batch: batchId(chunk) })
        : { written: 0, rejected: [] };
      const settled = settleBatch(prepared, result, spec, true);
      const counters: Counters = {
        ...zeroCounters(),
        batches: 1,
        read: chunk.length,
        written: result.written,
        unchanged: prepared.unchangedKeys.length,
        rejected: settled.deadLetters.length,
      };
      await store.commitBatch({
        sync: spec.name,
        runId: run.id,
        holder,
        batch,
        cursorFrom: null,
        checkpoint: null,
        // The sync's totals count what happened, as a run's do: records written, refusals met again.
        totals: {
          ...zeroCounters(),
          written: result.written,
          unchanged: prepared.unchangedKeys.length,
          rejected: settled.deadLetters.length,
        },
        counters,
        deadLetters: settled.deadLetters,
        fingerprints: settled.fingerprints,
        resolved: [
          { keys: settled.resolvedKeys, resolution: `retried by run ${run.id}` },
          { ids: gone.map((l) => l.id), resolution: `gone from the source (run ${run.id}); not written` },
        ],
        leaseMs,
      });
      outcome.retried += chunk.length;
      outcome.written += result.written;
      outcome.rejectedAgain += settled.deadLetters.length;
      outcome.gone += gone.length;
    }
    const finished = await store.finishRun(run.id, { holder, status: 'succeeded', more: false });
    return { run: finished, ...outcome };
  } catch (err) {
    const error = asSluiceError(err);
    await store.finishRun(run.id, {
      holder,
      status: 'failed',
      more: true,
      errorCode: error.code,
      errorMessage: error.message,
    });
    throw error;
  }
}

/** The letters' records as the source holds them now, and the letters whose record is gone. */
async function currentRecords(
  letters: DeadLetter[],
  source: Source,
  spec: RunSpec,
  signal: AbortSignal,
): Promise<{ records: Row[]; gone: DeadLetter[] }> {
  if (!source.readByKeys) return { records: letters.map((l) => (l.record ?? {}) as Row), gone: [] };
  const keys = letters.map((l) => l.key as Json[]);
  const current = new Map((await source.readByKeys(keys, { signal })).map((r) => [keyText(r, spec.key), r]));
  const records: Row[] = [];
  const gone: DeadLetter[] = [];
  for (const letter of letters) {
    // A letter's key is the key values a record's `keyText` is the JSON text of.
    const record = current.get(stringifyJson(letter.key));
    if (record) records.push(record);
    else gone.push(letter);
  }
  return { records, gone };
}

/** The same letters retried again after a crash give the same batch id (an append target replaces it). */
function batchId(letters: DeadLetter[]): string {
  const ids = stringifyJson(letters.map((l) => l.id));
  return `retry#${createHash('sha1').update(ids).digest('hex')}`;
}
