/**
 * Backfills one SQLite table into another through the engine, alone in its process so its peak RSS
 * is its own. Reads a JSON job from argv[2], prints one JSON line of results on stdout.
 */
import { join } from 'node:path';
import { sqliteConnector } from '../../src/connectors/sqlite/index.ts';
import type { SyncShape } from '../../src/core/ports.ts';
import { executeRun } from '../../src/engine/run.ts';
import { SqliteStore } from '../../src/store/sqlite/store.ts';

export type WorkerJob = {
  dir: string;
  source: string;
  target: string;
  store: string;
  table: string;
  batchSize: number;
  maxRunDurationMs: number;
  /** Print memory figures to stderr every this many batches (0: never). */
  traceMemoryEvery?: number;
};

export type WorkerResult = {
  rows: number;
  ms: number;
  /** CPU time of the worker (user + system) over the same span, steadier than wall time on a busy machine. */
  cpuMs: number;
  runs: number;
  batches: number;
  rejected: number;
  maxRssMB: number;
};

function traceMemory(done: number, batches: number, every: number): void {
  if (batches % every !== 0) return;
  const m = process.memoryUsage();
  const mb = (n: number) => (n / 1_048_576).toFixed(1);
  process.stderr.write(
    `${done} rows: rss ${mb(m.rss)} heapTotal ${mb(m.heapTotal)} heapUsed ${mb(m.heapUsed)} external ${mb(m.external)} MB\n`,
  );
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as WorkerJob;
  const connector = sqliteConnector;
  if (!connector.source || !connector.target)
    throw new Error('the sqlite connector lacks a source or a target');
  const shape: SyncShape = { sync: 'contacts', key: ['id'], cursorField: 'updated_at', baseDir: job.dir };
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  const store = SqliteStore.open(join(job.dir, job.store));
  const source = await connector.source.open(
    connector.connection.parse({ path: job.source }),
    connector.source.options.parse({ table: job.table }),
    shape,
  );
  const target = await connector.target.open(
    connector.connection.parse({ path: job.target }),
    connector.target.options.parse({ table: job.table }),
    shape,
  );
  const spec = {
    name: 'contacts',
    key: shape.key,
    batchSize: job.batchSize,
    maxRunDurationMs: job.maxRunDurationMs,
    lookbackMs: 0,
    map: null,
  };
  let runs = 0;
  let checkpoint = await store.getCheckpoint(spec.name);
  while (checkpoint?.phase !== 'incremental') {
    const outcome = await executeRun({
      spec,
      source,
      target,
      store,
      trigger: 'backfill',
      holder: `bench:${process.pid}`,
      stopAfterBackfill: true,
      onProgress: job.traceMemoryEvery
        ? (p) => traceMemory(p.backfillDone, p.run.batches, job.traceMemoryEvery ?? 0)
        : undefined,
    });
    runs += 1;
    checkpoint = outcome.checkpoint;
  }
  await source.close?.();
  await target.close?.();
  await store.close();
  const ms = performance.now() - started;
  const cpu = process.cpuUsage(cpuStart);
  const result: WorkerResult = {
    rows: checkpoint.backfillDone,
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    runs,
    batches: checkpoint.totals.batches,
    rejected: checkpoint.totals.rejected,
    maxRssMB: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

await main();
