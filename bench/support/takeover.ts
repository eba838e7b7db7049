/**
 * Lane takeover with real processes: `sluice serve` and `sluice worker` on one SQLite store, one
 * bundle whose backfill runs are long (so the lane is always held), and the holder of its running run
 * struck down. The figure is the time from the strike to the start of the lane's next run by the
 * survivor, as the store records it.
 *
 * - SIGKILL: the holder's pid is gone, which a process on the same host sees at once; the survivor
 *   takes the lane over at its next poll, whatever the lease.
 * - SIGSTOP (frozen, pid alive, as a process on another host or one stalled in a call looks): only
 *   the lease lets the lane go, so the bound is the lease plus a poll. The frozen process is resumed
 *   afterwards and must find its run taken over.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { generateContacts } from './contacts.ts';
import {
  anyWriteLocked,
  benchDir,
  queryStore,
  type SluiceProcess,
  startSluice,
  stopSluice,
} from './processes.ts';

const SRC_INDEX = fileURLToPath(new URL('../../src/index.ts', import.meta.url));
const LANE = 'bundle:crm';

export type TakeoverSettings = { repetitions: number; leaseMs: number; pollMs: number; graceMs: number };

export type TakeoverResult = {
  /** ms from each SIGKILL to the survivor's next run of the lane. */
  kill: number[];
  /** ms from each SIGSTOP to the survivor's next run of the lane. */
  freeze: number[];
  /** Strikes whose lane was not taken over within the wait (counted, not in the figures). */
  missed: number;
  /** Runs cut short by the strikes and closed `abandoned` (by the survivor or the store), of all struck. */
  abandoned: { closed: number; struck: number };
};

type Run = { id: number; holder: string; status: string; startedAt: string };

/** A backfill slow enough (a 20 ms wait per batch of 20) that a run holds the lane for its whole minute. */
function writeConfig(dir: string, s: TakeoverSettings): void {
  writeFileSync(
    join(dir, 'sluice.config.ts'),
    `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};

export default defineConfig({
  runtime: { lease: '${s.leaseMs}ms', poll: '${s.pollMs}ms', grace: '${s.graceMs}ms' },
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
      batch: { size: 20 },
      maxRunDuration: '1m',
      map: async (r) => {
        if (Number(r.id) % 20 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
        return r;
      },
    },
  },
  bundles: { crm: { syncs: ['contacts'] } },
});
`,
  );
}

const runningRun = (dir: string): Run | null =>
  queryStore<Run>(
    dir,
    "SELECT id, holder, status, started_at AS startedAt FROM runs WHERE lane = ? AND status = 'running' ORDER BY id DESC LIMIT 1",
    LANE,
  )[0] ?? null;

const runById = (dir: string, id: number): Run | null =>
  queryStore<Run>(dir, 'SELECT id, holder, status, started_at AS startedAt FROM runs WHERE id = ?', id)[0] ??
  null;

const nextRun = (dir: string, after: number): Run | null =>
  queryStore<Run>(
    dir,
    'SELECT id, holder, status, started_at AS startedAt FROM runs WHERE lane = ? AND id > ? ORDER BY id LIMIT 1',
    LANE,
    after,
  )[0] ?? null;

/** Waits for the lane's run after `after`; null if none came within `timeoutMs`. */
async function waitNextRun(dir: string, after: number, timeoutMs: number): Promise<Run | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const run = nextRun(dir, after);
    if (run) return run;
    await sleep(10);
  }
  return null;
}

/** The lane's running run and which of `procs` holds it, once there is one (within `timeoutMs`). */
async function holderOf(
  dir: string,
  procs: SluiceProcess[],
  timeoutMs: number,
): Promise<{ run: Run; proc: SluiceProcess }> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const run = runningRun(dir);
    const proc = run && procs.find((p) => p.holder === run.holder && p.alive());
    if (run && proc) return { run, proc };
    if (Date.now() > deadline) throw new Error(`no process of the bench held ${LANE} within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/**
 * SIGSTOPs `proc` outside any write transaction (or the survivor would wait for the lock, not the
 * lease): frozen holding a file's write lock, it is resumed and frozen again a moment later.
 */
async function freezeUnlocked(proc: SluiceProcess, dir: string): Promise<number> {
  for (let tries = 1; ; tries++) {
    proc.child.kill('SIGSTOP');
    const at = Date.now();
    if (!anyWriteLocked(dir)) return at;
    proc.child.kill('SIGCONT');
    if (tries >= 200) throw new Error(`pid ${proc.pid}: no moment without a write lock in 200 tries`);
    await sleep(20);
  }
}

export async function measureTakeover(s: TakeoverSettings): Promise<TakeoverResult> {
  const dir = benchDir(mkdtempSync(join(tmpdir(), 'bench-takeover-')));
  generateContacts(join(dir, 'a.db'), 200_000, { rowsPerSecond: 100 });
  writeConfig(dir, s);
  const log = (name: string) => join(dir, `${name}.log`);
  let generation = 0;
  const start = (command: 'serve' | 'worker') => startSluice(dir, command, log(`${command}-${generation++}`));
  // One first, so the store is created and migrated by one process, then the other.
  const procs: SluiceProcess[] = [await start('serve')];
  procs.push(await start('worker'));
  const result: TakeoverResult = { kill: [], freeze: [], missed: 0, abandoned: { closed: 0, struck: 0 } };
  const struck: number[] = [];
  // Generous: a takeover not seen by then is reported as missed, and the bench goes on.
  const waitMs = s.leaseMs + s.pollMs + 10_000;
  try {
    for (const kind of ['kill', 'freeze'] as const) {
      for (let done = 0, tries = 0; done < s.repetitions && tries < s.repetitions * 3; tries++) {
        const { run, proc } = await holderOf(dir, procs, waitMs);
        let at: number;
        if (kind === 'kill') {
          proc.child.kill('SIGKILL');
          at = Date.now();
        } else {
          at = await freezeUnlocked(proc, dir);
        }
        // Struck inside its run: the run had not ended by the strike (else the strike hit nothing).
        if (runById(dir, run.id)?.status !== 'running') {
          if (kind === 'freeze') proc.child.kill('SIGCONT');
          else await restart(proc);
          continue;
        }
        struck.push(run.id);
        const next = await waitNextRun(dir, run.id, waitMs);
        const survivor = procs.find((p) => p !== proc)!;
        if (next && next.holder === survivor.holder) result[kind].push(Date.parse(next.startedAt) - at);
        else result.missed += 1;
        done += 1;
        if (kind === 'freeze') {
          proc.child.kill('SIGCONT');
          // Back: it finds its run taken over and goes on as a live process; give it a poll to settle.
          await sleep(s.pollMs * 2);
        } else {
          await restart(proc);
        }
      }
    }
    result.abandoned = {
      struck: struck.length,
      closed: struck.filter((id) => runById(dir, id)?.status === 'abandoned').length,
    };
    return result;
  } finally {
    await Promise.all(procs.map((p) => stopSluice(p, s.graceMs)));
  }

  async function restart(proc: SluiceProcess): Promise<void> {
    await proc.exited;
    procs[procs.indexOf(proc)] = await start(proc.command);
  }
}
