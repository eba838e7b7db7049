import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { SRC_INDEX, sluiceChild } from '../support/cli.ts';
import { digest, seedContacts } from '../support/contacts.ts';
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

function runningRuns(dir: string): number[] {
  const db = new DatabaseSync(join(dir, '.sluice', 'state.db'), { readOnly: true });
  try {
    return db
      .prepare("SELECT id FROM runs WHERE status = 'running'")
      .all()
      .map((r) => Number(r.id));
  } finally {
    db.close();
  }
}

const phases = async (url: string): Promise<Record<string, string>> => {
  const syncs = (await (
    await fetch(`${url}/api/syncs`, { headers: { authorization: 'Bearer t' } })
  ).json()) as { sync: string; phase: string }[];
  return Object.fromEntries(syncs.map((s) => [s.sync, s.phase]));
};

describe('sluice serve', () => {
  it('resumes every sync from its checkpoint after a SIGKILL, and exits cleanly on SIGTERM', async () => {
    const dir = tempDir('serve');
    seedContacts(join(dir, 'chain-a.db'), 80_000, { perSecond: 200 });
    seedContacts(join(dir, 'tick-a.db'), 80_000, { perSecond: 200 });
    writeConfig(dir);

    const first = await startServe(dir);
    await until('both syncs under way', () => {
      const db = new DatabaseSync(join(dir, '.sluice', 'state.db'), { readOnly: true });
      try {
        const rows = db.prepare('SELECT sync, backfill_done FROM checkpoints WHERE backfill_done > 0').all();
        return rows.length === 2;
      } finally {
        db.close();
      }
    });
    await sleep(Math.floor(Math.random() * 200));
    // Kill the moment a run is under way, so the restart has a run to take over.
    await until('a run under way', () => runningRuns(dir).length > 0, 10_000).catch(() => undefined);
    first.child.kill('SIGKILL');
    await first.exited;
    const leftRunning = runningRuns(dir);
    // Killed mid-way: neither backfill was done.
    expect(digest(join(dir, 'chain-b.db')).count).toBeLessThan(80_000);
    expect(digest(join(dir, 'tick-b.db')).count).toBeLessThan(80_000);

    const second = await startServe(dir);
    await until(
      'both backfills done after the restart',
      async () => {
        const p = await phases(second.url);
        return p.chain === 'incremental' && p.tick === 'incremental';
      },
      60_000,
    );
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    expect(digest(join(dir, 'chain-b.db'))).toEqual(digest(join(dir, 'chain-a.db')));
    expect(digest(join(dir, 'tick-b.db'))).toEqual(digest(join(dir, 'tick-a.db')));
    const db = new DatabaseSync(join(dir, '.sluice', 'state.db'), { readOnly: true });
    const statuses = db.prepare('SELECT status, count(*) AS n FROM runs GROUP BY status').all();
    const overlaps = db
      .prepare(
        `SELECT count(*) AS n FROM runs a JOIN runs b ON a.id < b.id
         WHERE a.status != 'abandoned' AND b.status != 'abandoned' AND b.started_at < a.ended_at AND a.started_at < b.ended_at`,
      )
      .get();
    db.close();
    expect(statuses.find((s) => s.status === 'running')).toBeUndefined();
    // Every run the kill left running was taken over: closed as abandoned, its work resumed.
    const abandoned = new DatabaseSync(join(dir, '.sluice', 'state.db'), { readOnly: true });
    const closed = leftRunning.map(
      (id) => abandoned.prepare('SELECT status FROM runs WHERE id = ?').get(id)?.status,
    );
    abandoned.close();
    expect(closed).toEqual(leftRunning.map(() => 'abandoned'));
    // The bundle kept its runs apart across both processes.
    expect(overlaps).toEqual({ n: 0 });
  });
});
