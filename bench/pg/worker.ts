/**
 * Backfills one PostgreSQL table into another database through the engine, run after run as
 * `sluice backfill` does, alone in its process so its peak RSS is its own. Reads a JSON job from
 * argv[2], prints one JSON line of results on stdout.
 */
import { postgresConnector } from '../../src/connectors/postgres/index.ts';
import type { SyncShape } from '../../src/core/ports.ts';
import { executeRun } from '../../src/engine/run.ts';
import { PostgresStore } from '../../src/store/postgres/store.ts';

export type PgWorkerJob = {
  source: string;
  target: string;
  store: string;
  table: string;
  batchSize: number;
  maxRunDurationMs: number;
};

export type PgWorkerResult = {
  rows: number;
  ms: number;
  runs: number;
  batches: number;
  rejected: number;
  maxRssMB: number;
};

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? '') as PgWorkerJob;
  const connector = postgresConnector;
  const shape: SyncShape = { sync: 'contacts', key: ['id'], cursorField: 'updated_at', baseDir: '.' };
  const started = performance.now();
  const store = await PostgresStore.open(job.store);
  const spec = {
    name: 'contacts',
    key: shape.key,
    cursorField: shape.cursorField,
    batchSize: job.batchSize,
    maxRunDurationMs: job.maxRunDurationMs,
    lookbackMs: 0,
    map: null,
  };
  let runs = 0;
  let batches = 0;
  let rows = 0;
  let rejected = 0;
  // Source and target are opened per run, as each `sluice run` slice of a backfill does.
  while ((await store.getCheckpoint(spec.name))?.phase !== 'incremental') {
    const source = await connector.source!.open({ url: job.source }, { table: job.table }, shape);
    const target = await connector.target!.open(
      { url: job.target },
      { table: job.table, mode: 'upsert' },
      shape,
    );
    try {
      const outcome = await executeRun({
        spec,
        source,
        target,
        store,
        trigger: 'backfill',
        holder: `bench:${process.pid}`,
        stopAfterBackfill: true,
      });
      runs += 1;
      batches += outcome.run.counters.batches;
      rows += outcome.run.counters.written;
      rejected += outcome.run.counters.rejected;
    } finally {
      await source.close?.();
      await target.close?.();
    }
  }
  const ms = performance.now() - started;
  await store.close();
  // maxRSS is in kilobytes.
  const maxRssMB = Math.round(process.resourceUsage().maxRSS / 1024);
  process.stdout.write(
    `${JSON.stringify({ rows, ms, runs, batches, rejected, maxRssMB } satisfies PgWorkerResult)}\n`,
  );
}

await main();
