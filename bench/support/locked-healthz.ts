/**
 * `/healthz` while a target is locked: `sluice serve` backfills into a SQLite file that this process
 * holds under `BEGIN EXCLUSIVE` (as test/server/locked-target.test.ts does), so its run waits on the
 * lock; meanwhile `/healthz` is asked again and again. A database wait that blocked the event loop
 * (node:sqlite's synchronous busy timeout) showed as seconds here; an awaited one shows as nothing.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { generateContacts } from './contacts.ts';
import { benchDir, queryStore, startSluice, stopSluice } from './processes.ts';

const SRC_INDEX = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
const GRACE_MS = 1_000;

export type Latency = {
  requests: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Requests that failed or answered other than 200 (a timeout counts). */
  errors: number;
};

export type LockedHealthz = {
  /** The server's first /healthz, under the lock, apart: a cold start (connection, first run of the code). */
  firstRequestMs: number;
  /** The requests after it, for the window. */
  locked: Latency;
  /** The run was still waiting at the end, nothing written: the lock held for the whole window. */
  runWaitedThroughout: boolean;
  /**
   * The same serve afterwards, the lock gone and the backfill done: the machine's own floor, to read
   * the locked figures against (null if the backfill did not finish in time).
   */
  idle: Latency | null;
};

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** One GET /healthz: how long it took, and whether it answered 200. */
async function timedGet(url: string): Promise<{ ms: number; ok: boolean }> {
  const started = performance.now();
  let ok = false;
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(10_000) });
    await res.text();
    ok = res.status === 200;
  } catch {
    // Refused or timed out: an error, whose wait still counts.
  }
  return { ms: performance.now() - started, ok };
}

/** GET /healthz one after another, `pauseMs` apart, for `seconds`. */
async function probe(url: string, seconds: number, pauseMs: number): Promise<Latency> {
  const waits: number[] = [];
  let errors = 0;
  for (const end = Date.now() + seconds * 1000; Date.now() < end; await sleep(pauseMs)) {
    const { ms, ok } = await timedGet(url);
    waits.push(ms);
    if (!ok) errors += 1;
  }
  waits.sort((a, b) => a - b);
  return {
    requests: waits.length,
    p50Ms: percentile(waits, 50),
    p99Ms: percentile(waits, 99),
    maxMs: waits.at(-1) ?? Number.NaN,
    errors,
  };
}

export async function measureLockedHealthz(seconds: number, pauseMs = 20): Promise<LockedHealthz> {
  const dir = benchDir(mkdtempSync(join(tmpdir(), 'bench-locked-')));
  generateContacts(join(dir, 'a.db'), 20_000);
  // The target exists with the source's columns and no rows, in WAL as Sluice's targets are, and is
  // locked before serve starts: the first write of the run meets the lock.
  generateContacts(join(dir, 'b.db'), 0);
  const locker = new DatabaseSync(join(dir, 'b.db'));
  locker.exec('PRAGMA journal_mode = WAL');
  locker.exec('BEGIN EXCLUSIVE; CREATE TABLE bench_lock (x)');
  writeFileSync(
    join(dir, 'sluice.config.ts'),
    `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};

export default defineConfig({
  runtime: { poll: '200ms', grace: '${GRACE_MS}ms' },
  connections: {
    a: { type: 'sqlite', path: 'a.db' },
    b: { type: 'sqlite', path: 'b.db' },
  },
  syncs: {
    contacts: {
      source: { connection: 'a', table: 'contacts' },
      target: { connection: 'b', table: 'contacts' },
      key: 'id',
      cursor: 'updated_at',
      batch: { size: 500 },
      maxRunDuration: '1m',
      map: (r) => r,
    },
  },
});
`,
  );
  const serve = await startSluice(dir, 'serve', join(dir, 'serve.log'));
  try {
    const running = () =>
      queryStore<{ n: number }>(dir, "SELECT count(*) AS n FROM runs WHERE status = 'running'")[0]!.n > 0;
    for (const deadline = Date.now() + 20_000; !running(); await sleep(20))
      if (Date.now() > deadline) throw new Error('the backfill run did not start within 20 s');
    // The server's first request (a new connection, code run for the first time) on its own: it
    // measures a cold start, not the lock. It is under the lock too.
    const first = await timedGet(serve.url!);
    const locked = await probe(serve.url!, seconds, pauseMs);
    const written = Number((locker.prepare('SELECT count(*) AS n FROM contacts').get() as { n: number }).n);
    const runWaitedThroughout = running() && written === 0;
    locker.exec('ROLLBACK');
    const caughtUp = () =>
      !running() &&
      queryStore<{ phase: string }>(dir, 'SELECT phase FROM checkpoints')[0]?.phase === 'incremental';
    let idle: Latency | null = null;
    for (const deadline = Date.now() + 30_000; Date.now() < deadline; await sleep(50)) {
      if (!caughtUp()) continue;
      idle = await probe(serve.url!, seconds, pauseMs);
      break;
    }
    return { firstRequestMs: first.ms, locked, runWaitedThroughout, idle };
  } finally {
    if (locker.isTransaction) locker.exec('ROLLBACK');
    locker.close();
    await stopSluice(serve, GRACE_MS);
  }
}
