import type { ChildProcess } from 'node:child_process';
import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { digest, seedContacts } from '../support/contacts.ts';
import { freshDatabase } from '../support/pg.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';
import { ContactsWriter } from './contacts-writer.ts';
import {
  checkDesignTakeovers,
  checkEnds,
  checkTakeovers,
  describeTakeovers,
  type Kill,
  type Takeover,
} from './pgboss-check.ts';
import {
  type BundleSync,
  drawBundle,
  killNow,
  LANE,
  type PgRun,
  StoreReader,
  sourcePath,
  startWorker,
  targetPath,
  type WorkerProcess,
  type WorkerSettings,
  watchJobs,
  writeBundleConfig,
} from './pgboss-fleet.ts';
import { Random, seedsFromEnv } from './random.ts';
import { checkLanes } from './serve-check.ts';

/*
 * Issue 15's acceptance: the pg-boss runtime with real processes. Three `sluice worker` processes
 * share one PostgreSQL store (a fresh database), and so pg-boss's queue in it; one bundle of five
 * SQLite → SQLite syncs backfills in short runs (100–300 ms, small batches, triggered reruns), so the
 * bundle's one lane hands over between syncs and workers all the time, then follows its sources
 * incrementally while this process edits them. For a bounded while one worker is SIGKILLed every few
 * seconds, more often than not the one inside a run, and started again in its place: after a short
 * while, except for the first kill, whose place stays empty until its lane ran again, so that only
 * the live workers can take it over. Then the kills and edits stop, the workers stay up until every
 * sync caught up after the last edit, and they are stopped with SIGTERM. Afterwards, from the store's
 * run history, pg-boss's jobs and the files:
 *
 * - no two runs of the bundle overlapped (an abandoned run ends at its last heartbeat);
 * - every run succeeded, except those the kills cut short, which ended abandoned at their last
 *   heartbeat; no pg-boss job failed or was left active;
 * - the lane a killed worker held ran again within a bound (pg-boss notices a dead worker by its
 *   job's missing heartbeat, 10 s at the least), and the times are printed; and on its own, as the
 *   design promises, within one heartbeat, a supervision and a poll (it was not, before the fix below);
 * - every sync reached its incremental phase and caught up; each target equals its source by key and
 *   content;
 * - every worker exited 0 within `grace` (and pg-boss's own stop) of its SIGTERM.
 *
 * `chaos.log` in the test's folder tells it step by step, with every change of the runtime's open
 * jobs, beside each worker's JSON log.
 */

/** Seeds run in CI; a seed that finds a bug stays here, named after it. */
const SEEDS: { seed: number; name: string }[] = [
  // Found the 30 s takeover fixed below (as every seed did: the first kill is long, inside a backfill).
  { seed: 1, name: 'kills inside runs and between them, one long, sources edited meanwhile' },
];

/**
 * `PGBOSS_CHAOS_SEED=7 npx vitest run test/chaos/pgboss.test.ts` runs that seed instead (`5-9` or
 * `5,9` several, `fresh` a new one); `PGBOSS_CHAOS_MS=20000` changes how long the kills go on;
 * `PGBOSS_CHAOS_KEEP=1` keeps the test's folder even when it passes.
 */
const chosen = seedsFromEnv('PGBOSS_CHAOS_SEED') ?? SEEDS;
/** How long the kills and edits go on: with the start, catch-up and checks, under 2.5 minutes. */
const CHAOS_MS = Number(process.env.PGBOSS_CHAOS_MS ?? 55_000);
const WORKERS = 3;
/** Run slots per worker: the bundle runs one at a time anyway; two keep a tick beside it possible. */
const CONCURRENCY = 2;
/**
 * A 3 s lease: the runtime derives pg-boss's job heartbeat from it, raised to pg-boss's least,
 * 10 s, and looks for dead workers' jobs every 2 s (half the lease); idle workers poll every 500 ms.
 */
const RUNTIME: WorkerSettings = { leaseMs: 3_000, pollMs: 500, graceMs: 2_000 };
/** Between a kill's restart being spawned and the next kill. */
const GAP_MS = [1_000, 3_500] as const;
/** How long a killed worker's place stays empty, unless the kill is long. */
const DOWN_MS = [200, 3_000] as const;
/** How long an aimed kill waits for a worker to be inside a run before it strikes anyway. */
const KILL_PATIENCE_MS = 2_000;
/** What a restart usually takes until its runtime started, on a busy machine; the last kill leaves room. */
const RESTART_MS = 5_000;
/**
 * What the design promises: a dead worker's lane is taken over by a live worker one heartbeat
 * (10 s, pg-boss's least) after the dead run's last beat, at the supervision after it (every 2 s),
 * within a poll (500 ms); the rest is slack for a busy 2-core machine.
 */
const DESIGN_TAKEOVER_MS = 20_000;
/**
 * Every kill's lane must run again within this, whoever takes it: generous (a restarted worker, a
 * loaded machine); the design's tighter bound is checked on its own below.
 */
const TAKEOVER_BOUND_MS = 50_000;
/**
 * The first kill is long: it leaves the victim's place empty until its lane ran again or this passed,
 * so only the live workers can take its lane over.
 */
const LONG_DOWN_MS = TAKEOVER_BOUND_MS;
/**
 * After the chaos, every sync must have caught up within this, or the test fails: the last kill's
 * lane may wait out a whole takeover first.
 */
const CATCH_UP_MS = 70_000;
/**
 * SIGTERM to exit: `grace` for the runs in hand, 2 s for pg-boss's own stop (runtime.stop), and slack
 * for a process exiting on a busy machine.
 */
const EXIT_BOUND_MS = RUNTIME.graceMs + 2_000 + 3_000;
/** How long a worker may take to start its runtime (three at once, on a busy machine). */
const START_TIMEOUT_MS = 45_000;
/** Clock granularity allowed between one run's end and the next run's start in the lane. */
const OVERLAP_TOLERANCE_MS = 2;

/** What each seed's chaos saw of its takeovers, for the design's bound checked on its own below. */
const takeoversOf = new Map<number, Takeover[]>();

describe('chaos: three sluice worker processes on a PostgreSQL store (pg-boss), one SIGKILLed and restarted at random', () => {
  for (const { seed, name } of chosen) {
    const timeout = START_TIMEOUT_MS + Math.max(CHAOS_MS, LONG_DOWN_MS + 15_000) + CATCH_UP_MS + 30_000;
    it(`seed ${seed}: ${name}`, { timeout }, async () => {
      takeoversOf.set(seed, await chaos(seed));
    });
    /*
     * Found by seed 1: a dead worker's lane was taken over ~30 s after the kill, not ~11 s (one
     * heartbeat and a supervision), and `runtime.poll` did not bound it: with NOTIFY on, pg-boss's
     * workers poll at `notifyPollingIntervalSeconds` (30 s by default), and a job put back for retry
     * (or coming due by `startAfter`) sends no NOTIFY. The runtime now passes `runtime.poll` as both
     * intervals; the long kills of seeds 1–3 took 29.6–30.3 s before, 10.3–11.5 s after.
     * If the chaos run above fails before measuring, this one fails too: read that one first.
     */
    it(`seed ${seed}: the live workers take a dead worker's lane over within ${DESIGN_TAKEOVER_MS} ms`, () => {
      const takeovers = takeoversOf.get(seed);
      expect(takeovers, 'the chaos run above failed before its takeovers were measured').toBeDefined();
      expect(checkDesignTakeovers(takeovers!, DESIGN_TAKEOVER_MS)).toEqual([]);
    });
  }
});

async function chaos(seed: number): Promise<Takeover[]> {
  const dir = process.env.PGBOSS_CHAOS_KEEP
    ? mkdtempSync(join(tmpdir(), `sluice-pgboss-chaos-${seed}-`))
    : tempDir(`sluice-pgboss-chaos-${seed}`);
  const logPath = join(dir, 'chaos.log');
  const started = Date.now();
  const log = (line: string) =>
    appendFileSync(logPath, `${((Date.now() - started) / 1000).toFixed(3).padStart(8)} ${line}\n`);
  // One generator per concern, so the kills' draws do not depend on how the editing interleaves.
  const random = new Random(seed);
  const killRandom = new Random(seed ^ 0x5eed_0001);
  const editRandom = new Random(seed ^ 0x5eed_0002);
  const writer = new ContactsWriter(new Random(seed ^ 0x5eed_0003));
  const editing = new AbortController();
  let edits: Promise<number> | null = null;
  // Every child spawned, ready or not: whatever happens, none outlives the test.
  const children: ChildProcess[] = [];
  const db = await freshDatabase('pgboss_chaos', { store: true });
  const reader = new StoreReader(db.url);
  const watching = new AbortController();
  let watch: Promise<void> | null = null;
  const start = async (slot: number, generation: number) => {
    const proc = await startWorker(dir, slot, generation, join(dir, `worker-${slot}.${generation}.log`), {
      concurrency: CONCURRENCY,
      timeoutMs: START_TIMEOUT_MS,
      spawned: (child) => children.push(child),
    });
    log(
      `slot ${slot}.${generation}: pid ${proc.pid} started its runtime after ${proc.readyAt - proc.spawnedAt} ms`,
    );
    return proc;
  };
  const findings: string[] = [];
  let summary = '';
  let measured: Takeover[] = [];
  try {
    const bundle = drawBundle(random, 5, { min: 40, max: 80 });
    for (const sync of bundle) seedContacts(sourcePath(dir, sync.name), sync.rows, { perSecond: 50 });
    writeBundleConfig(dir, db.url, bundle, RUNTIME);
    log(`seed ${seed} in ${dir}, store ${db.name}: ${JSON.stringify(bundle)}`);
    watch = watchJobs(reader, log, watching.signal);
    // All three at once: pg-boss's schema and queue are created by whichever gets there first.
    const first: WorkerProcess[] = await Promise.all(
      Array.from({ length: WORKERS }, (_, slot) => start(slot, 0)),
    );
    // Each place's worker once its runtime started; null while it is down or starting again.
    const live: (WorkerProcess | null)[] = [...first];
    const restarts: Promise<void>[] = [];

    // Chaos: the writer edits a random source every few hundred ms; meanwhile, every few seconds,
    // one worker is killed (mostly the one inside a run) and started again in its place. The next
    // kill does not wait for that restart, only for two workers up, so one is always live.
    const chaosStart = Date.now();
    const chaosEnd = chaosStart + CHAOS_MS;
    edits = edit(writer, editRandom, bundle, dir, chaosEnd, editing.signal, log);
    // Awaited after the kills; until then this only keeps a failed edit from counting as unhandled.
    edits.catch(() => 0);
    const kills: Kill[] = [];
    const generations = Array.from({ length: WORKERS }, () => 1);
    while (true) {
      const gap = killRandom.int(GAP_MS[0], GAP_MS[1]);
      // The first kill is aimed and long, so that every seed makes the live workers take a lane over.
      const long = kills.length === 0;
      const aimed = long || killRandom.chance(0.6);
      const pick = killRandom.int(0, WORKERS - 1);
      const downMs = killRandom.int(DOWN_MS[0], DOWN_MS[1]);
      if (Date.now() + gap + KILL_PATIENCE_MS + downMs + RESTART_MS > chaosEnd) break;
      await sleep(gap);
      const upNow = () => live.filter((p): p is WorkerProcess => p !== null);
      await until('two workers up', () => upNow().length >= 2, START_TIMEOUT_MS);
      const ready = upNow();
      // The first waits longer for a run to strike inside: a long kill holding none tests nothing.
      const strike = await strikeOne(
        ready,
        aimed ? null : pick % ready.length,
        reader,
        long ? 10_000 : KILL_PATIENCE_MS,
      );
      const victimSlot = strike.victim.slot;
      live[victimSlot] = null;
      const kill: Kill = {
        n: kills.length + 1,
        victim: strike.victim,
        at: strike.at,
        held: strike.held,
        lastRunId: strike.lastRunId,
        downMs,
        aimed,
        long: long && strike.held.length > 0,
        restart: null,
      };
      kills.push(kill);
      log(
        `kill ${kill.n}${aimed ? ' (aimed)' : ''}: slot ${victimSlot}.${kill.victim.generation} pid ${
          kill.victim.pid
        } after ${strike.looks} looks, holding ${
          kill.held.map((r) => `run ${r.id} ${r.sync}`).join(', ') || 'no run'
        }; ${kill.long ? `down until its lane runs again (${LONG_DOWN_MS} ms at most)` : `down for ${downMs} ms`}`,
      );
      if (kill.long) {
        const ranAgain = await laneRanAgain(reader, kill, LONG_DOWN_MS);
        kill.downMs = Date.now() - kill.at;
        log(
          `kill ${kill.n}: ${
            ranAgain ? `lane ran again (run ${ranAgain.id} by ${ranAgain.holder})` : 'lane did not run again'
          } ${kill.downMs} ms after the kill`,
        );
      } else await sleep(downMs);
      const restart = start(victimSlot, generations[victimSlot]!++).then((proc) => {
        kill.restart = proc;
        live[victimSlot] = proc;
      });
      // Awaited once the kills are over; a failed start fails the test there.
      restart.catch(() => undefined);
      restarts.push(restart);
    }
    await Promise.all(restarts);
    const writerStoppedAt = await edits;
    log(
      `chaos over: ${kills.length} kills; the writer inserted ${writer.inserted} and updated ${writer.updated} rows`,
    );

    // Catch-up: every worker up, no kills, no edits, until every sync caught up twice after the
    // last edit (so a whole lookback sweep started after it).
    const catchUpStart = Date.now();
    const caughtUp = await catchUp(reader, bundle, writerStoppedAt, log);
    const behind = bundle.filter((s) => !caughtUp.has(s.name));
    if (behind.length)
      findings.push(
        `catch-up: ${behind.map((s) => s.name).join(', ')} not caught up ${CATCH_UP_MS} ms after the chaos (checkpoints: ${JSON.stringify(
          await reader.checkpoints(),
        )})`,
      );

    // SIGTERM to every worker at once: each must exit 0 within grace.
    const sent = Date.now();
    const exits: string[] = [];
    const up = live.filter((p): p is WorkerProcess => p !== null);
    for (const proc of up) proc.child.kill('SIGTERM');
    for (const proc of up) {
      const exit = await Promise.race([
        proc.exited,
        sleep(Math.max(0, sent + EXIT_BOUND_MS + 10_000 - Date.now()), null),
      ]);
      const took = exit ? exit.at - sent : null;
      const what = exit ? `exited ${exit.signal ?? exit.code} ${took} ms after SIGTERM` : 'still running';
      log(`slot ${proc.slot}.${proc.generation}: ${what}`);
      exits.push(exit ? `${exit.signal ?? exit.code} in ${took} ms` : 'none');
      if (exit?.code !== 0 || took === null || took > EXIT_BOUND_MS)
        findings.push(`shutdown: pid ${proc.pid} ${what} (bound: exit 0 within ${EXIT_BOUND_MS} ms)`);
    }

    const runs = await reader.runs();
    const laneOfSync = new Map(bundle.map((s) => [s.name, LANE]));
    const lanes = checkLanes(runs, laneOfSync, OVERLAP_TOLERANCE_MS);
    findings.push(...lanes.findings);
    findings.push(...checkEnds(runs, kills));
    const takeovers = checkTakeovers(kills, runs, TAKEOVER_BOUND_MS);
    findings.push(...takeovers.findings);
    measured = takeovers.takeovers;
    const phases = await reader.checkpoints();
    for (const sync of bundle) {
      const phase = phases.find((c) => c.sync === sync.name)?.phase ?? 'none';
      if (phase !== 'incremental')
        findings.push(`phase: ${sync.name} ended in phase ${phase}, not incremental`);
    }
    const jobs = await reader.jobs();
    if (jobs.states.failed || jobs.states.active)
      findings.push(
        `jobs: with every worker stopped, pg-boss has jobs failed or still active: ${JSON.stringify(jobs.states)}`,
      );
    for (const sync of bundle) findings.push(...compareTables(dir, sync));

    summary =
      `pg-boss chaos seed ${seed}: ${kills.length} kills (${kills.filter((k) => k.aimed).length} aimed, ${
        kills.filter((k) => k.held.length > 0).length
      } inside a run), ${runs.length} runs (${countBy(runs)}) by ${new Set(runs.map((r) => r.holder)).size} workers, ` +
      `${handovers(runs)} handovers between workers, largest overlap ${lanes.maxOverlapMs} ms; jobs ${JSON.stringify(
        jobs.states,
      )}, ${jobs.retried} retried; exits after SIGTERM: ${exits.join(', ')}; ${describeTakeovers(
        takeovers.takeovers,
      )}; took ${Date.now() - started} ms ` +
      `(start ${chaosStart - started}, chaos ${catchUpStart - chaosStart}, catch-up ${sent - catchUpStart}, stop and check ${Date.now() - sent})`;
    log(summary);
    for (const finding of findings) log(`FINDING ${finding}`);
    console.log(summary);
  } catch (err) {
    if (err instanceof Error)
      err.message = `pg-boss chaos seed ${seed} (${replay(seed)}; step by step: ${logPath}): ${err.message}`;
    throw err;
  } finally {
    editing.abort();
    // Only a failure already thrown above can leave the editor going; its own error would add nothing.
    await edits?.catch(() => 0);
    writer.close();
    await Promise.all(
      children.map((child) =>
        child.exitCode !== null || child.signalCode !== null
          ? undefined
          : new Promise((resolve) => {
              child.once('exit', resolve);
              child.kill('SIGKILL');
            }),
      ),
    );
    watching.abort();
    await watch;
    await reader.close();
  }
  expect(findings, `pg-boss chaos seed ${seed} (${replay(seed)}). Step by step: ${logPath}`).toEqual([]);
  return measured;
}

const replay = (seed: number): string =>
  `PGBOSS_CHAOS_SEED=${seed} npx vitest run test/chaos/pgboss.test.ts replays its bundle, edits and kill ` +
  'schedule; what the workers do meanwhile depends on timing';

/** Waits until the lane of a run `kill` cut short runs again, for `timeoutMs` at most. */
async function laneRanAgain(reader: StoreReader, kill: Kill, timeoutMs: number): Promise<PgRun | null> {
  const deadline = kill.at + timeoutMs;
  while (Date.now() < deadline) {
    const next = (await reader.runs()).find((r) => r.id > kill.lastRunId && r.lane === LANE);
    if (next) return next;
    await sleep(250);
  }
  return null;
}

/**
 * Kills one of the workers up: `live[index]`, or (`index` null) whichever holds a run, looked for
 * until `patienceMs` runs out and then any. The worker is frozen (SIGSTOP) while the store is read, so
 * what it held is what it holds when the SIGKILL lands; after it is gone the store is read again, for
 * a run whose start was on the wire.
 */
async function strikeOne(
  live: WorkerProcess[],
  index: number | null,
  reader: StoreReader,
  patienceMs: number,
): Promise<{ victim: WorkerProcess; at: number; held: Kill['held']; lastRunId: number; looks: number }> {
  const deadline = Date.now() + patienceMs;
  for (let looks = 1; ; looks++) {
    const running = (await reader.runs()).filter((r) => r.status === 'running');
    const holding = live.find((p) => running.some((r) => r.holder === p.holder));
    const victim = index !== null ? live[index]! : (holding ?? live[looks % live.length]!);
    victim.child.kill('SIGSTOP');
    const held = await reader.held(victim.holder);
    if (index !== null || held.length > 0 || Date.now() >= deadline) {
      const lastRunId = Math.max(await reader.maxRunId(), ...held.map((r) => r.id));
      const at = await killNow(victim);
      // A commit the worker sent before it stopped lands or is rolled back by now.
      await sleep(300);
      const after = await reader.held(victim.holder);
      const all = [...held, ...after.filter((r) => !held.some((h) => h.id === r.id))];
      return { victim, at, held: all, lastRunId: Math.max(lastRunId, ...all.map((r) => r.id)), looks };
    }
    victim.child.kill('SIGCONT');
    await sleep(20);
  }
}

/** Edits a random source every 100–600 ms until `end`; resolves with when the last edit committed. */
async function edit(
  writer: ContactsWriter,
  random: Random,
  bundle: BundleSync[],
  dir: string,
  end: number,
  signal: AbortSignal,
  log: (line: string) => void,
): Promise<number> {
  let count = 0;
  while (!signal.aborted) {
    const wait = random.int(100, 600);
    if (Date.now() + wait >= end) break;
    await sleep(wait);
    writer.edit(sourcePath(dir, random.pick(bundle).name));
    count += 1;
  }
  log(`writer: ${count} edits`);
  return writer.lastCommitAt;
}

/**
 * Polls the store until each sync is in its incremental phase with two runs that succeeded with
 * nothing left, started after the last edit.
 */
async function catchUp(
  reader: StoreReader,
  bundle: BundleSync[],
  lastEditAt: number,
  log: (line: string) => void,
): Promise<Set<string>> {
  const done = new Set<string>();
  const deadline = Date.now() + CATCH_UP_MS;
  const from = Date.now();
  while (done.size < bundle.length && Date.now() < deadline) {
    const [runs, checkpoints] = await Promise.all([reader.runs(), reader.checkpoints()]);
    for (const sync of bundle) {
      if (done.has(sync.name)) continue;
      if (checkpoints.find((c) => c.sync === sync.name)?.phase !== 'incremental') continue;
      const after = runs.filter(
        (r: PgRun) =>
          r.sync === sync.name &&
          r.status === 'succeeded' &&
          r.more === 0 &&
          Date.parse(r.startedAt) > lastEditAt,
      );
      if (after.length < 2) continue;
      done.add(sync.name);
      log(`catch-up: ${sync.name} caught up ${Date.now() - from} ms after the chaos (run ${after[1]!.id})`);
    }
    if (done.size < bundle.length) await sleep(500);
  }
  return done;
}

function compareTables(dir: string, sync: BundleSync): string[] {
  try {
    const want = digest(sourcePath(dir, sync.name));
    const got = digest(targetPath(dir, sync.name));
    if (want.hash === got.hash && want.count === got.count && got.keys === got.count) return [];
    return [
      `target: ${sync.name} differs from its source: source ${JSON.stringify(want)}, target ${JSON.stringify(got)}`,
    ];
  } catch (err) {
    return [`target: ${sync.name} cannot be compared: ${(err as Error).message}`];
  }
}

const countBy = (runs: PgRun[]): string =>
  Object.entries(Object.groupBy(runs, (r) => r.status))
    .map(([status, rs]) => `${rs!.length} ${status}`)
    .join(', ');

/** How often the lane's next run was in another worker than the run before it. */
function handovers(runs: PgRun[]): number {
  let count = 0;
  for (let i = 1; i < runs.length; i++) if (runs[i]!.holder !== runs[i - 1]!.holder) count += 1;
  return count;
}
