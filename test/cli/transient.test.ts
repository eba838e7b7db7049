import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { contactsDdl, seedContactsSql } from '../../bench/pg/contacts.ts';
import { SRC_INDEX, sluice, sluiceChild } from '../support/cli.ts';
import { connect, freshDatabase, PG_URL } from '../support/pg.ts';
import { tempDir } from '../support/tmp.ts';

/**
 * `sluice run` and `sluice backfill` ride out momentary failures: each `pg_terminate_backend` of the
 * source's connections failed the command before (`PG_57P01`), though the next attempt would have
 * gone on (issue 10, finding 6). Permanent failures still stop at once, with the reason.
 */

function writeConfig(dir: string, sourceUrl: string, table: string): void {
  writeFileSync(
    join(dir, 'sluice.config.ts'),
    `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};

export default defineConfig({
  connections: {
    pg: { type: 'postgres', url: ${JSON.stringify(sourceUrl)} },
    out: { type: 'sqlite', path: 'out.db' },
  },
  syncs: {
    contacts: {
      source: { connection: 'pg', table: ${JSON.stringify(table)} },
      target: { connection: 'out', table: 'contacts' },
      key: 'id',
      cursor: 'updated_at',
      batch: { size: 2000 },
      maxRunDuration: '300ms',
      retries: { attempts: 5, backoff: { initial: '20ms', max: '100ms' } },
    },
  },
});
`,
  );
}

describe('sluice run and backfill retry momentary failures', () => {
  it('finishes a backfill while the source connections are terminated again and again', async () => {
    const dir = tempDir();
    const db = await freshDatabase('transient_src');
    const src = await connect(db.url);
    await src.query(contactsDdl('contacts'));
    await src.query(seedContactsSql('contacts'), [60_000]);
    await src.query('CREATE INDEX ON contacts (updated_at, id)');
    writeConfig(dir, db.url, 'contacts');
    const admin = await connect(PG_URL);
    const child = sluiceChild(dir, 'backfill', 'contacts');
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let running = true;
    void exited.then(() => {
      running = false;
    });
    let terminated = 0;
    // Cut the backfill's source connections mid-query, 5 times, a second apart, while it runs.
    let wait = 300;
    for (let i = 0; i < 300 && running && terminated < 5; i++) {
      await sleep(wait);
      const { rowCount } = await admin.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'sluice' AND state = 'active'",
        [db.name],
      );
      terminated += rowCount ?? 0;
      // After a kill, a second for the backfill to go on; else look again soon.
      wait = rowCount ? 1000 : 100;
    }
    expect(await exited, stderr).toBe(0);
    expect(terminated).toBeGreaterThan(0);
    expect(stderr).toMatch(/attempt 1 of 5 failed \(PG_57P01/);
    const out = new DatabaseSync(join(dir, 'out.db'), { readOnly: true });
    const { n, d } = out.prepare('SELECT count(*) AS n, count(DISTINCT id) AS d FROM contacts').get() as {
      n: number;
      d: number;
    };
    out.close();
    expect([n, d]).toEqual([60_000, 60_000]);
  });

  it('stops at once on a failure a retry cannot fix, naming it', async () => {
    const dir = tempDir();
    const db = await freshDatabase('transient_missing');
    writeConfig(dir, db.url, 'no_such_table');
    const result = sluice(dir, 'run', 'contacts');
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/no_such_table/);
    expect(result.stderr).not.toMatch(/attempt \d of/);
  });
});
