import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { SRC_INDEX, sluiceChild } from '../support/cli.ts';
import { digest, seedContacts } from '../support/contacts.ts';
import { seeded, seeds } from '../support/seed.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';

function writeConfig(dir: string): void {
  writeFileSync(
    join(dir, 'sluice.config.ts'),
    `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};

const sync = (name: string, rerun: object) => ({
  source: { connection: name + 'A', table: 'contacts' },
  target: { connection: name + 'B', table: 'contacts' },
  key: 'id',
  cursor: 'updated_at',
  batch: { size: 500 },
  maxRunDuration: '40ms',
  rerun,
});

export default defineConfig({
  connections: {
    chainA: { type: 'sqlite', path: 'chain-a.db' },
    chainB: { type: 'sqlite', path: 'chain-b.db' },
    tickA: { type: 'sqlite', path: 'tick-a.db' },
    tickB: { type: 'sqlite', path: 'tick-b.db' },
  },
  syncs: {
    chain: sync('chain', { mode: 'triggered' }),
    tick: sync('tick', { mode: 'scheduled', every: '50ms' }),
  },
  bundles: { crm: { syncs: ['chain', 'tick'] } },
  server: { apiTokens: ['t'] },
  runtime: { poll: '50ms' },
});
`,
  );
}

/** Starts `sluice serve` on a free port and returns the child and its base URL from the log. */
async function startServe(
  dir: string,
): Promise<{ child: ChildProcess; url: string; exited: Promise<number | NodeJS.Signals | null> }> {
  const child = sluiceChild(dir, 'serve', '--port', '0');
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      const match = log.match(/"url":"(http:[^"]+)"/);
      if (match) resolve(match[1]!);
    });
    child.on('exit', () => reject(new Error(`serve exited before listening: ${log}`)));
  });
  return { child, url, exited };
}

/** Reads the store file as it stands; the serve process may be running, stopped or dead. */
function query<T>(dir: string, sql: string, ...params: (string | number)[]): T[] {
  const db = new DatabaseSync(join(dir, '.sluice', 'state.db'), { readOnly: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

const runningRuns = (dir: string): number[] =>
  query<{ id: number }>(dir, "SELECT id FROM runs WHERE status = 'running' ORDER BY id").map((r) =>
    Number(r.id),
  );
const runningRequests = (dir: string): number[] =>
  query<{ id: number }>(dir, "SELECT id FROM run_requests WHERE status = 'running' ORDER BY id").map((r) =>
    Number(r.id),
  );

type Backfill = { sync: string; backfill_done: number; backfill_started_at: string };
const backfills = (dir: string): Backfill[] =>
  query<Backfill>(dir, 'SELECT sync, backfill_done, backfill_started_at FROM checkpoints ORDER BY sync');

/**
 * SIGKILLs `child` while it is inside a run. The process is frozen (SIGSTOP) while the store is
 * read, so a run the store shows `running` is still mid-way when the SIGKILL lands; if none is, the
 * process goes on (SIGCONT) and is looked at again shortly. Fails if no run is ever seen running.
 */
async function killInsideRun(child: ChildProcess, dir: string, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (let looks = 1; ; looks++) {
    child.kill('SIGSTOP');
    if (runningRuns(dir).length > 0) {
      child.kill('SIGKILL');
      return looks;
    }
    child.kill('SIGCONT');
    if (Date.now() > deadline)
      throw new Error(`no run of sluice serve was running in ${looks} looks over ${timeoutMs} ms`);
    await sleep(5);
  }
}

const phases = async (url: string): Promise<Record<string, string>> => {
  const syncs = (await (
    await fetch(`${url}/api/syncs`, { headers: { authorization: 'Bearer t' } })
  ).json()) as { sync: string; phase: string }[];
  return Object.fromEntries(syncs.map((s) => [s.sync, s.phase]));
};

describe('sluice serve', () => {
  it.each(seeds(20261202))(
    'resumes every sync from its checkpoint after a SIGKILL mid-run, and exits cleanly on SIGTERM ($label)',
    async ({ seed }) => {
      const random = seeded(seed);
      const dir = tempDir('serve');
      seedContacts(join(dir, 'chain-a.db'), 80_000, { perSecond: 200 });
      seedContacts(join(dir, 'tick-a.db'), 80_000, { perSecond: 200 });
      writeConfig(dir);

      const first = await startServe(dir);
      await until(
        'both syncs under way',
        () => backfills(dir).filter((b) => b.backfill_done > 0).length === 2,
      );
      await sleep(Math.floor(random() * 200));
      const looks = await killInsideRun(first.child, dir, 20_000);
      expect(await first.exited).toBe('SIGKILL');
      // What the kill left behind: the run it interrupted, the queue request it held, the checkpoints.
      const leftRunning = runningRuns(dir);
      const leftRequests = runningRequests(dir);
      const atKill = backfills(dir);
      const why = `killed after ${looks} look(s); left running: runs ${leftRunning}, requests ${leftRequests}`;
      expect(leftRunning.length, why).toBe(1);
      expect(leftRequests.length, why).toBe(1);
      // Killed mid-way: neither backfill was done.
      expect(atKill.map((b) => b.backfill_done < 80_000)).toEqual([true, true]);

      const second = await startServe(dir);
      await until(
        'both backfills done after the restart',
        async () => {
          const p = await phases(second.url);
          return p.chain === 'incremental' && p.tick === 'incremental';
        },
        90_000,
      );
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);

      expect(digest(join(dir, 'chain-b.db'))).toEqual(digest(join(dir, 'chain-a.db')));
      expect(digest(join(dir, 'tick-b.db'))).toEqual(digest(join(dir, 'tick-a.db')));
      expect(runningRuns(dir)).toEqual([]);
      // The run the kill left running was taken over: closed as abandoned, its holder named as gone.
      const closed = query<{ status: string; error_code: string }>(
        dir,
        `SELECT status, error_code FROM runs WHERE id IN (${leftRunning.join(', ')})`,
      );
      expect(closed, why).toEqual(
        leftRunning.map(() => ({ status: 'abandoned', error_code: 'HOLDER_GONE' })),
      );
      // The request it held was requeued and run to its end by the second process.
      const holder = `${hostname()}:${second.child.pid}`;
      const requests = query<{ status: string; holder: string }>(
        dir,
        `SELECT status, holder FROM run_requests WHERE id IN (${leftRequests.join(', ')})`,
      );
      expect(requests, why).toEqual(leftRequests.map(() => ({ status: 'done', holder })));
      // Resumed, not restarted: the same backfill went on from its checkpoint, and every record
      // counted once (a restart or a re-read past the checkpoint would count more than 80,000).
      expect(backfills(dir)).toEqual(atKill.map((b) => ({ ...b, backfill_done: 80_000 })));
      // The bundle kept its runs apart across both processes.
      const overlaps = query(
        dir,
        `SELECT count(*) AS n FROM runs a JOIN runs b ON a.id < b.id
         WHERE a.status != 'abandoned' AND b.status != 'abandoned' AND b.started_at < a.ended_at AND a.started_at < b.ended_at`,
      );
      expect(overlaps).toEqual([{ n: 0 }]);
    },
    // Two serve processes and two 80,000-row backfills: 10 s on an idle 2-core machine, 45 s at load 10.
    150_000,
  );
});
