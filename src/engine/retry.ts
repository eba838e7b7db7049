import { asSluiceError, SluiceError } from '../core/errors.ts';
import type { RunRecord, Store, Target } from '../core/ports.ts';
import type { Row } from '../core/types.ts';
import { deadLetter, mapRecords } from './records.ts';
import type { RunSpec } from './run.ts';

export type RetryOutcome = { run: RunRecord; retried: number; written: number; rejectedAgain: number };

/**
 * Sends a sync's dead letters through `map` and the target again, as a run of its own (so it never
 * overlaps a regular run). Each retried letter is marked retried; one that fails again becomes a
 * new dead letter with the new reason, so nothing is dropped.
 */
export async function retryDeadLetters(options: {
  spec: RunSpec;
  target: Target;
  store: Store;
  holder: string;
  limit?: number;
}): Promise<RetryOutcome> {
  const { spec, target, store } = options;
  const checkpoint = await store.getCheckpoint(spec.name);
  if (!checkpoint)
    throw new SluiceError('NOTHING_TO_RETRY', `sync "${spec.name}" has not run yet; it has no dead letters`);
  const leaseMs = spec.maxRunDurationMs + 60_000;
  const run = await store.startRun({
    sync: spec.name,
    trigger: 'retry',
    phase: checkpoint.phase,
    holder: options.holder,
    leaseMs,
  });
  const ctx = { sync: spec.name, runId: run.id, phase: checkpoint.phase, data: store.data, payload: null };
  const signal = AbortSignal.timeout(leaseMs);
  let retried = 0;
  let written = 0;
  let rejectedAgain = 0;
  try {
    const letters = await store.listDeadLetters({ sync: spec.name, limit: options.limit ?? 100_000 });
    for (let i = 0; i < letters.length; i += spec.batchSize) {
      const chunk = letters.slice(i, i + spec.batchSize);
      const records = chunk.map((l) => (l.record ?? {}) as Row);
      const { mapped, origin, deadLetters } = await mapRecords(records, spec, ctx);
      const result = mapped.length ? await target.write(mapped, { signal }) : { written: 0, rejected: [] };
      for (const r of result.rejected)
        deadLetters.push(deadLetter(origin.get(r.record) ?? r.record, spec.key, r.reason));
      const counters = {
        batches: 1,
        read: chunk.length,
        written: result.written,
        rejected: deadLetters.length,
      };
      await store.commitBatch({
        sync: spec.name,
        runId: run.id,
        batch: i / spec.batchSize + 1,
        cursorFrom: checkpoint.cursor,
        checkpoint: { ...checkpoint, updatedAt: new Date().toISOString() },
        counters,
        deadLetters,
        leaseMs,
        retried: chunk.map((l) => l.id),
      });
      retried += chunk.length;
      written += result.written;
      rejectedAgain += deadLetters.length;
    }
    const finished = await store.finishRun(run.id, { status: 'succeeded', more: false });
    return { run: finished, retried, written, rejectedAgain };
  } catch (err) {
    const error = asSluiceError(err);
    await store.finishRun(run.id, {
      status: 'failed',
      more: true,
      errorCode: error.code,
      errorMessage: error.message,
    });
    throw error;
  }
}
