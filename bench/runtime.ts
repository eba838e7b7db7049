/**
 * Orchestration overhead: a bundle of 20 syncs whose source and target do nothing, so every run is
 * one batch and all the time is Sluice's: claiming from the durable queue, the run record and its
 * lease, the checkpoint, the rerun policy, the hand-over to the next sync in the lane.
 *
 * Beside it, in the same process and store: the same 20 syncs run round-robin by a bare loop of
 * `executeRun` (no queue, no lanes) — the engine's own floor.
 *
 * The same two sides again on a PostgreSQL store: the pg-boss runtime (jobs in that database, the
 * runtime every worker on every machine shares) beside the bare loop on that store (`--pg <url>`
 * names the server; a database is made for the bench and dropped after; `--pg ''` skips this).
 *
 * Then one sync alone, whose triggered backfill never ends: the idle gap between a run's end and the
 * start of the successor it enqueued (p50, p99, max). The runtime polls its queue every second, so a
 * gap near a second means a successor was found by polling rather than woken. The runtime conformance
 * test checks the waking itself; the figures live here, where a loaded machine cannot fail a build.
 *
 * Then, with real processes (issue 12: a runtime that outlives its processes):
 * - lane takeover: `sluice serve` and `sluice worker` on one store, the holder of the bundle's
 *   running run SIGKILLed (and, beside it, SIGSTOPped: a pid still alive, as a process on another
 *   host looks), `--takeovers` times each; the time from the strike to the survivor's next run of the
 *   lane (min, median, max), beside `runtime.lease` and `runtime.poll`. Bound: one poll after the
 *   lease ran out (at once for a dead pid on this host);
 * - `/healthz` latency (p50, p99, max) while `sluice serve`'s SQLite target is held under
 *   `BEGIN EXCLUSIVE` by this process for `--lock-seconds`. Goal: under 100 ms.
 * The whole bench stops by itself (about 80 s with the defaults) and removes its processes and files.
 *
 *   npx node bench/runtime.ts [--seconds 10] [--syncs 20] [--takeovers 5] [--lease 2s]
 *     [--lock-seconds 4] [--pg postgres://postgres@127.0.0.1:5432/postgres] [--json]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import pg from 'pg';
import { parseDuration } from '../src/core/duration.ts';
import type { RunRecord } from '../src/core/ports.ts';
import { executeRun } from '../src/engine/run.ts';
import { LocalRuntime } from '../src/runtime/local/runtime.ts';
import { PgBossRuntime } from '../src/runtime/pgboss/runtime.ts';
import type { Runtime } from '../src/runtime/port.ts';
import { Workspace } from '../src/runtime/workspace.ts';
import { commandLine, loadAverage, median } from './support/cli.ts';
import { type Latency, measureLockedHealthz } from './support/locked-healthz.ts';
import { noopConnector } from './support/noop-connector.ts';
import { cleanUp } from './support/processes.ts';
import { measureTakeover, type TakeoverSettings } from './support/takeover.ts';

const opts = new Command('bench-runtime')
  .option('--seconds <n>', 'how long each side runs', Number, 10)
  .option('--syncs <n>', 'syncs in the bundle', Number, 20)
  .option('--takeovers <n>', 'strikes of each kind (SIGKILL, SIGSTOP) in the takeover figure', Number, 5)
  .option('--lease <duration>', 'runtime.lease of the takeover processes', '2s')
  .option('--lock-seconds <n>', 'how long /healthz is asked while the target is locked', Number, 4)
  .option(
    '--pg <url>',
    'PostgreSQL server for the pg-boss side (empty: skip it)',
    'postgres://postgres@127.0.0.1:5432/postgres',
  )
  .option('--json', 'print JSON')
  .parse(process.argv)
  .opts<{
    seconds: number;
    syncs: number;
    takeovers: number;
    lease: string;
    lockSeconds: number;
    pg: string;
    json?: boolean;
  }>();

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const POLL_MS = 1000;

async function workspace(dir: string, count = opts.syncs, store?: string): Promise<Workspace> {
  const names = Array.from({ length: count }, (_, i) => `s${String(i + 1).padStart(2, '0')}`);
  const syncs = Object.fromEntries(
    names.map((n) => [
      n,
      {
        source: { connection: 'none' },
        target: { connection: 'none' },
        key: 'id',
        maxRunDuration: 0,
        batch: { size: 1 },
      },
    ]),
  );
  return Workspace.fromConfig(
    {
      connections: { none: { type: 'noop' } },
      syncs,
      bundles: count > 1 ? { all: { syncs: names } } : {},
      runtime: { concurrency: 4, poll: POLL_MS },
      ...(store ? { store } : {}),
    },
    dir,
    { connectors: [noopConnector] },
  );
}

/** Runs per second and the gaps between one run's end and the next one's start in the lane. */
function summarize(runs: RunRecord[], seconds: number) {
  // One lane: run ids are in start order (timestamps tie at millisecond resolution).
  const done = runs.filter((r) => r.endedAt).sort((a, b) => a.id - b.id);
  const gaps: number[] = [];
  for (let i = 1; i < done.length; i++)
    gaps.push(Date.parse(done[i]!.startedAt) - Date.parse(done[i - 1]!.endedAt!));
  gaps.sort((a, b) => a - b);
  const overlaps = gaps.filter((g) => g < 0).length;
  return {
    runs: done.length,
    runsPerSecond: Math.round(done.length / seconds),
    handoverP50Ms: percentile(gaps, 50),
    handoverP99Ms: percentile(gaps, 99),
    overlaps,
  };
}

async function viaRuntime(store?: string): Promise<ReturnType<typeof summarize>> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-runtime-'));
  const ws = await workspace(dir, opts.syncs, store);
  const runtime: Runtime = store ? new PgBossRuntime(ws) : new LocalRuntime(ws);
  await runtime.start();
  await new Promise((r) => setTimeout(r, opts.seconds * 1000));
  await runtime.stop();
  const result = summarize(await ws.store.listRuns({ limit: 10_000_000 }), opts.seconds);
  await ws.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

/** One sync's triggered chain: the gaps between each run's end and its successor's start. */
async function chainGaps() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-chain-'));
  const ws = await workspace(dir, 1);
  const runtime = new LocalRuntime(ws);
  await runtime.start();
  await new Promise((r) => setTimeout(r, opts.seconds * 1000));
  await runtime.stop();
  const done = (await ws.store.listRuns({ limit: 10_000_000 })).filter((r) => r.endedAt);
  done.sort((a, b) => a.id - b.id);
  const gaps: number[] = [];
  for (let i = 1; i < done.length; i++)
    gaps.push(Date.parse(done[i]!.startedAt) - Date.parse(done[i - 1]!.endedAt!));
  gaps.sort((a, b) => a - b);
  await ws.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    runs: done.length,
    gapP50Ms: percentile(gaps, 50),
    gapP99Ms: percentile(gaps, 99),
    gapMaxMs: gaps.at(-1) ?? Number.NaN,
    // A successor that waited for the poll rather than being woken shows as a gap near the interval.
    gapsNearPollMs: gaps.filter((g) => g >= POLL_MS / 2).length,
  };
}

/** A database of its own on the `--pg` server for `fn`, dropped after. */
async function inDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `sluice_bench_runtime_${process.pid}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: opts.pg });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${name}`);
  try {
    const url = new URL(opts.pg);
    url.pathname = `/${name}`;
    return await fn(url.toString());
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

async function viaBareLoop(store?: string): Promise<ReturnType<typeof summarize>> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-loop-'));
  const ws = await workspace(dir, opts.syncs, store);
  const names = ws.syncNames();
  const until = Date.now() + opts.seconds * 1000;
  for (let i = 0; Date.now() < until; i++) {
    const name = names[i % names.length]!;
    const [source, target] = [await ws.openSource(name), await ws.openTarget(name)];
    await executeRun({
      spec: ws.sync(name),
      source,
      target,
      store: ws.store,
      trigger: 'rerun',
      holder: 'bench:1',
    });
  }
  const result = summarize(await ws.store.listRuns({ limit: 10_000_000 }), opts.seconds);
  await ws.close();
  rmSync(dir, { recursive: true, force: true });
  return result;
}

const leaseMs = parseDuration(opts.lease);
if (leaseMs === null || leaseMs <= 0)
  throw new Error(`--lease: expected a duration such as 2s, got "${opts.lease}"`);
const takeoverSettings: TakeoverSettings = {
  repetitions: opts.takeovers,
  leaseMs,
  pollMs: 200,
  graceMs: 1_000,
};

const runtime = await viaRuntime();
const loop = await viaBareLoop();
const onPg = opts.pg
  ? {
      runtime: await inDatabase((url) => viaRuntime(url)),
      loop: await inDatabase((url) => viaBareLoop(url)),
    }
  : null;
const chain = await chainGaps();
let takeover: Awaited<ReturnType<typeof measureTakeover>>;
let healthz: Awaited<ReturnType<typeof measureLockedHealthz>>;
try {
  takeover = await measureTakeover(takeoverSettings);
  healthz = await measureLockedHealthz(opts.lockSeconds);
} finally {
  cleanUp();
}
const spread = (ms: number[]) =>
  ms.length === 0
    ? { min: Number.NaN, median: Number.NaN, max: Number.NaN }
    : { min: Math.min(...ms), median: median(ms), max: Math.max(...ms) };
const load = loadAverage();
if (opts.json) {
  console.log(
    JSON.stringify(
      {
        syncs: opts.syncs,
        seconds: opts.seconds,
        runtime,
        loop,
        onPg,
        chain,
        takeover: {
          ...takeover,
          leaseMs: takeoverSettings.leaseMs,
          pollMs: takeoverSettings.pollMs,
          killMs: spread(takeover.kill),
          freezeMs: spread(takeover.freeze),
        },
        healthz,
        load,
        command: commandLine(),
      },
      null,
      2,
    ),
  );
} else {
  const row = (name: string, r: ReturnType<typeof summarize>) =>
    `${name.padEnd(34)} ${String(r.runsPerSecond).padStart(9)} ${r.handoverP50Ms.toFixed(1).padStart(12)} ${r.handoverP99Ms.toFixed(1).padStart(12)} ${String(r.overlaps).padStart(9)}`;
  console.log(`bundle of ${opts.syncs} no-op syncs, ${opts.seconds} s each side, one batch per run`);
  console.log(
    `${''.padEnd(34)} ${'runs/s'.padStart(9)} ${'handover p50'.padStart(12)} ${'handover p99'.padStart(12)} ${'overlaps'.padStart(9)}`,
  );
  console.log(row('Sluice local runtime (queue, lanes)', runtime));
  console.log(row('bare executeRun loop (no runtime)', loop));
  console.log(
    `runtime throughput: ${((runtime.runsPerSecond / loop.runsPerSecond) * 100).toFixed(0)}% of the bare loop`,
  );
  if (onPg) {
    console.log(row('pg-boss runtime (PostgreSQL store)', onPg.runtime));
    console.log(row('bare loop (PostgreSQL store)', onPg.loop));
    console.log(
      `pg-boss runtime throughput: ${((onPg.runtime.runsPerSecond / onPg.loop.runsPerSecond) * 100).toFixed(0)}% of the bare loop on the same store`,
    );
  }
  console.log(
    `triggered chain of one sync, ${opts.seconds} s, queue polled every ${POLL_MS} ms: ${chain.runs} runs, ` +
      `idle gap p50 ${chain.gapP50Ms} ms, p99 ${chain.gapP99Ms} ms, max ${chain.gapMaxMs} ms ` +
      `(${chain.gapsNearPollMs} gaps of half the poll interval or more)`,
  );
  const { leaseMs: lease, pollMs: poll } = takeoverSettings;
  const line = (ms: number[]) => {
    const s = spread(ms);
    return `${ms.length} strikes, min ${s.min} ms, median ${s.median} ms, max ${s.max} ms`;
  };
  console.log(
    `lane takeover, sluice serve + sluice worker on one store, runtime.lease ${lease} ms, poll ${poll} ms, ` +
      "from the strike to the survivor's next run of the lane:",
  );
  console.log(
    `  holder SIGKILLed (its pid gone, seen at once on this host; bound one poll, ${poll} ms): ${line(takeover.kill)}`,
  );
  console.log(
    `  holder SIGSTOPped (pid alive: only the lease frees the lane; bound lease + poll, ${lease + poll} ms): ${line(takeover.freeze)}`,
  );
  console.log(
    `  struck runs closed abandoned: ${takeover.abandoned.closed} of ${takeover.abandoned.struck}; ` +
      `strikes not taken over within lease + poll + 10 s: ${takeover.missed}`,
  );
  const latency = (l: Latency) =>
    `${l.requests} requests, p50 ${l.p50Ms.toFixed(1)} ms, p99 ${l.p99Ms.toFixed(1)} ms, max ${l.maxMs.toFixed(1)} ms, ${l.errors} errors`;
  console.log(
    `/healthz while sluice serve's SQLite target is under BEGIN EXCLUSIVE in another process, ${opts.lockSeconds} s: ` +
      `${latency(healthz.locked)} (goal: under 100 ms), after a first (cold) request of ${healthz.firstRequestMs.toFixed(1)} ms; the run ` +
      (healthz.runWaitedThroughout
        ? 'waited on the lock throughout'
        : 'did NOT wait on the lock throughout: the figure may not be under lock'),
  );
  console.log(
    `  the same serve afterwards, unlocked and caught up (this machine's floor), ${opts.lockSeconds} s: ` +
      (healthz.idle ? latency(healthz.idle) : 'not measured: the backfill did not finish within 30 s'),
  );
  console.log(`load average (1 min) at the end: ${load}; ${commandLine()}`);
}
