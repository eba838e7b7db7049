import { asSluiceError, RunFencedError, SluiceError } from '../core/errors.ts';
import {
  afterPartitions,
  partitionDone,
  partitionName,
  partitionsAmong,
  splitCheckpoints,
} from '../core/partitions.ts';
import type { Checkpoint, RunRecord, Source, Target } from '../core/ports.ts';
import { addCounters, zeroCounters } from '../core/types.ts';
import { Heartbeat } from './heartbeat.ts';
import { etaOf, type Progress, rateOf } from './progress.ts';
import { executeRun, type RunOptions, type RunOutcome, startRunOf } from './run.ts';

const DEFAULT_LEASE_MS = 30_000;

export type PartitionedRunOptions = RunOptions & {
  /** How many ranges the backfill is split into. */
  partitions: number;
  /** Move the partitions at once rather than one after another. */
  parallel: boolean;
  /** Name the unfinished partitions in the outcome (for a runtime to queue) instead of moving them. */
  fanOut?: boolean;
  /** Opens a source and a target for `fn` and closes them after: each partition moves on its own. */
  endpoints: <T>(fn: (source: Source, target: Target) => Promise<T>) => Promise<T>;
};

/**
 * One run of a sync whose backfill is partitioned (see core/partitions). The run holds the sync and
 * its lane; the first splits the key range (its source's `splitKeys`), saving a checkpoint for each
 * partition and the sync's own last, so a split cut short is done again from scratch. Each run then
 * gives every unfinished partition a run of its own (its record, lease and budget; at once, or one
 * after another while the sync's budget lasts). Once every partition is done, the sync's checkpoint
 * goes incremental from the split's high-water mark, and the next run reads what changed since.
 */
export async function executePartitionedRun(options: PartitionedRunOptions): Promise<RunOutcome> {
  const { spec, store, holder } = options;
  const now = options.now ?? Date.now;
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const run = options.run ?? (await startRunOf(options));
  if (!options.run) options.onStart?.(run);
  const heartbeat = new Heartbeat(store, run, leaseMs);
  try {
    if (options.setAside) {
      // The batch that failed is one partition's; which one, the request does not say.
      throw new SluiceError(
        'SET_ASIDE_UNSUPPORTED',
        `sync "${spec.name}": a failing batch of a partitioned backfill cannot be set aside; ${options.setAside.reason}`,
      );
    }
    let parent = await store.getCheckpoint(spec.name);
    if (!parent) {
      const fresh = Array.from({ length: options.partitions }, (_, i) => partitionName(spec.name, i + 1));
      parent = await split(options, fresh, new Date(now()).toISOString());
    }
    // The partitions of the split that was made: `backfill.partitions` changed since does not move them.
    const before = partitionsAmong(spec.name, await store.listCheckpoints());
    const names = before.map((cp) => cp.sync);
    if (options.fanOut) return await fannedOut(options, run, parent, before, now);
    const startedAt = now();
    const left = before.filter((cp) => !partitionDone(cp));
    // Each partition's latest progress, from its checkpoint until its run says more.
    const progress = new Map(before.map((cp) => [cp.sync, progressOf(cp, run.id)]));
    // Moving at once, each partition has a source and a target of its own; one after another, they
    // take turns with the run's own (a target with one writer, a file, has no other).
    const endpoints: PartitionedRunOptions['endpoints'] = options.parallel
      ? options.endpoints
      : (fn) => fn(options.source, options.target);
    const moveOne = (cp: Checkpoint) =>
      endpoints((source, target) =>
        executeRun({
          ...options,
          spec: { ...spec, name: cp.sync, recordsOf: spec.recordsOf ?? spec.name },
          source,
          target,
          // The sync's run holds the lane; a partition's run holds its partition.
          lane: null,
          run: undefined,
          stopAfterBackfill: true,
          kill: AbortSignal.any([heartbeat.signal, ...(options.kill ? [options.kill] : [])]),
          onStart: undefined,
          onProgress: (p) => {
            progress.set(cp.sync, p);
            options.onProgress?.(summed(spec.name, run.id, [...progress.values()], now() - startedAt));
          },
        }),
      );
    const failures: unknown[] = [];
    const moved: RunOutcome[] = [];
    if (options.parallel) {
      const settled = await Promise.allSettled(left.map(moveOne));
      for (const s of settled) {
        if (s.status === 'rejected') failures.push(s.reason);
        else moved.push(s.value);
      }
    } else {
      // One after another while the sync's budget lasts; every run moves at least one partition.
      for (const [i, cp] of left.entries()) {
        if (i > 0 && (now() - startedAt >= spec.maxRunDurationMs || options.stop?.aborted)) break;
        try {
          moved.push(await moveOne(cp));
        } catch (err) {
          failures.push(err);
          break;
        }
      }
    }
    // The sync's run counts what its partitions' runs moved in it: its record, `sluice runs` and a
    // backfill's summary say what the run did (each partition's run keeps its own counts too).
    await store.commitBatch({
      sync: spec.recordsOf ?? spec.name,
      runId: run.id,
      holder,
      batch: 0,
      cursorFrom: null,
      checkpoint: null,
      counters: moved.reduce((sum, o) => addCounters(sum, o.run.counters), zeroCounters()),
      deadLetters: [],
      leaseMs,
    });
    if (failures.length > 0) throw failures[0];
    const parts = await checkpointsOf(options, names);
    if (parts.every(partitionDone)) {
      parent = afterPartitions(parent, parts, new Date(now()).toISOString());
      await store.saveCheckpoint(parent);
    }
    // More either way: the partitions' next runs, or the first incremental run after them.
    return { run: await succeeded(options, run, true), checkpoint: parent, more: true };
  } catch (err) {
    const error = asSluiceError(err);
    await store
      .finishRun(run.id, {
        holder,
        status: error.code === 'RUN_KILLED' ? 'abandoned' : 'failed',
        more: true,
        errorCode: error.code,
        errorMessage: error.message,
      })
      .catch(() => undefined);
    throw error;
  } finally {
    heartbeat.stop();
  }
}

/**
 * The sync's run when a runtime moves the partitions: its checkpoint goes incremental if they are all
 * done, else the run names the unfinished ones for the runtime to queue and ends.
 */
async function fannedOut(
  options: PartitionedRunOptions,
  run: RunRecord,
  parent: Checkpoint,
  parts: readonly Checkpoint[],
  now: () => number,
): Promise<RunOutcome> {
  const left = parts.filter((cp) => !partitionDone(cp)).map((cp) => cp.sync);
  let checkpoint = parent;
  if (left.length === 0) {
    checkpoint = afterPartitions(parent, parts, new Date(now()).toISOString());
    await options.store.saveCheckpoint(checkpoint);
  }
  const more = left.length === 0;
  return { run: await succeeded(options, run, more), checkpoint, more, partitions: left };
}

/** Ends the sync's run succeeded; refused (`RUN_FENCED`) where it no longer holds the sync. */
async function succeeded(options: PartitionedRunOptions, run: RunRecord, more: boolean): Promise<RunRecord> {
  const finished = await options.store.finishRun(run.id, {
    holder: options.holder,
    status: 'succeeded',
    more,
  });
  if (finished.status !== 'succeeded') throw new RunFencedError(options.spec.name, run.id, 'its end');
  return finished;
}

/** The partitions' checkpoints, in order; one that is missing is a store changed under the sync. */
async function checkpointsOf(
  options: PartitionedRunOptions,
  names: readonly string[],
): Promise<Checkpoint[]> {
  const found = await Promise.all(names.map((name) => options.store.getCheckpoint(name)));
  return found.map((cp, i) => {
    if (cp) return cp;
    throw new SluiceError(
      'PARTITION_MISSING',
      `the checkpoint of ${names[i]} is missing while ${options.spec.name} is partitioned; run \`sluice reset ${options.spec.name}\` to start its backfill again`,
    );
  });
}

/** Splits the key range and saves a checkpoint for each partition, then the sync's own. */
async function split(
  options: PartitionedRunOptions,
  names: readonly string[],
  at: string,
): Promise<Checkpoint> {
  const { spec, store, source } = options;
  if (!source.splitKeys) {
    throw new SluiceError(
      'PARTITIONS_UNSUPPORTED',
      `sync "${spec.name}": its source cannot split its keys into ranges, so backfill.partitions must be 1`,
    );
  }
  // Leftovers of a split cut short before the sync's own checkpoint was saved: never run, redone.
  for (const name of names) if (await store.getCheckpoint(name)) await store.resetSync(name);
  const highWaterMark = source.highWaterMark ? await source.highWaterMark() : null;
  const ends = await source.splitKeys(options.partitions, highWaterMark);
  const estimate = source.estimate
    ? await source.estimate({ phase: 'backfill', cursor: null, highWaterMark })
    : null;
  const { parent, partitions } = splitCheckpoints(
    spec.name,
    options.partitions,
    { highWaterMark, ends, estimate: estimate?.records ?? null, exact: estimate?.exact ?? false },
    at,
  );
  for (const cp of partitions) await store.saveCheckpoint(cp);
  await store.saveCheckpoint(parent);
  return parent;
}

/** One progress event for the sync from its partitions' latest ones. */
function summed(sync: string, runId: number, parts: readonly Progress[], elapsedMs: number): Progress {
  const sum = (f: (p: Progress) => number) => parts.reduce((n, p) => n + f(p), 0);
  const read = sum((p) => p.run.read);
  const done = sum((p) => p.backfillDone);
  const estimates = parts.map((p) => p.backfillEstimate);
  const estimate = estimates.includes(null) ? null : sum((p) => p.backfillEstimate ?? 0);
  const rate = rateOf(read, elapsedMs);
  return {
    sync,
    runId,
    phase: 'backfill',
    run: {
      batches: sum((p) => p.run.batches),
      read,
      written: sum((p) => p.run.written),
      unchanged: sum((p) => p.run.unchanged),
      rejected: sum((p) => p.run.rejected),
    },
    backfillDone: done,
    backfillEstimate: estimate,
    estimateExact: parts.every((p) => p.estimateExact),
    rate,
    etaMs: etaOf(done, estimate, rate),
    elapsedMs,
  };
}

/** A partition's progress as its checkpoint has it, before its run reports. */
function progressOf(cp: Checkpoint, runId: number): Progress {
  return {
    sync: cp.sync,
    runId,
    phase: 'backfill',
    run: zeroCounters(),
    backfillDone: cp.backfillDone,
    backfillEstimate: cp.backfillEstimate,
    estimateExact: cp.backfillEstimateExact,
    rate: 0,
    etaMs: null,
    elapsedMs: 0,
  };
}
