import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { SRC_INDEX, sluice, sluiceChild } from '../support/cli.ts';
import { digest, seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';

/**
 * `sluice backfill` beside `sluice serve` waits its turn in the same durable queue and hands the
 * lane back after each run, so the bundle's other syncs run between its runs (issue 12, item 4: it
 * polled every 500 ms, waited 29–47 s, then held the lane for 13 s of back-to-back runs).
 */
describe('a CLI backfill beside sluice serve', () => {
  it('takes turns in the bundle lane with the syncs serve runs', async () => {
    const dir = tempDir();
    seedContacts(join(dir, 'big-a.db'), 20_000);
    seedContacts(join(dir, 'tick-a.db'), 50);
    writeFileSync(
      join(dir, 'sluice.config.ts'),
      `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};

const sync = (name: string, extra: object) => ({
  source: { connection: name + 'A', table: 'contacts' },
  target: { connection: name + 'B', table: 'contacts' },
  key: 'id',
  cursor: 'updated_at',
  batch: { size: 500 },
  maxRunDuration: '30ms',
  ...extra,
});

export default defineConfig({
  connections: {
    bigA: { type: 'sqlite', path: 'big-a.db' },
    bigB: { type: 'sqlite', path: 'big-b.db' },
    tickA: { type: 'sqlite', path: 'tick-a.db' },
    tickB: { type: 'sqlite', path: 'tick-b.db' },
  },
  syncs: {
    // Only the CLI moves 'big': its rerun is scheduled far apart, so serve never starts it.
    big: sync('big', { rerun: { mode: 'scheduled', every: '1h' }, map: (r: object) => r }),
    tick: sync('tick', { rerun: { mode: 'scheduled', every: '40ms' }, incremental: { every: '40ms' } }),
  },
  bundles: { crm: { syncs: ['big', 'tick'] } },
  runtime: { poll: '50ms' },
});
`,
    );
    const serve = sluiceChild(dir, 'worker');
    const served = new Promise<number | null>((resolve) => serve.on('exit', (code) => resolve(code)));
    try {
      const state = join(dir, '.sluice', 'state.db');
      await until('serve to run tick', async () => runsOf(state, 'tick').length >= 2, 20_000);
      const result = sluice(dir, 'backfill', 'big');
      expect(result.status, result.stderr).toBe(0);
      const runs = runsOf(state);
      const big = runs.filter((r) => r.sync === 'big');
      expect(big.length).toBeGreaterThan(5);
      // Between the first and the last run of the backfill, serve's sync had turns in the lane.
      const between = runs.filter((r) => r.sync === 'tick' && r.id > big[0]!.id && r.id < big.at(-1)!.id);
      expect(between.length).toBeGreaterThan(0);
      // And never at the same time: one lane, one run.
      for (let i = 1; i < runs.length; i++) expect(runs[i]!.started >= runs[i - 1]!.ended).toBe(true);
      expect(digest(join(dir, 'big-b.db'))).toEqual(digest(join(dir, 'big-a.db')));
    } finally {
      serve.kill('SIGTERM');
      await served;
    }
  });
});

type RunRow = { id: number; sync: string; started: string; ended: string };

function runsOf(path: string, sync?: string): RunRow[] {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    const rows = db
      .prepare(
        "SELECT id, sync, started_at AS started, coalesce(ended_at, '9999') AS ended FROM runs WHERE lane = 'bundle:crm' ORDER BY id",
      )
      .all() as RunRow[];
    return sync ? rows.filter((r) => r.sync === sync) : rows;
  } catch {
    // The store is made by the first process to open it (and its runs table by its migrations).
    return [];
  } finally {
    db?.close();
  }
}
