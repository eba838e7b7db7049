import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Target } from '../../../src/core/ports.ts';
import { PostgresStore } from '../../../src/store/postgres/store.ts';
import { connect, freshDatabase } from '../../support/pg.ts';
import { contactsDdl, ident, pgSync, seedContacts, tableDigest } from './helpers.ts';

async function setup(
  label: string,
  rows: number,
  options: { storeInTarget?: boolean; updatedAt?: string } = {},
) {
  const a = await freshDatabase(`${label}_src`);
  const b = await freshDatabase(`${label}_dst`, { store: options.storeInTarget ?? false });
  const state = options.storeInTarget ? b : await freshDatabase(`${label}_state`, { store: true });
  const src = await connect(a.url);
  const dst = await connect(b.url);
  await src.query(contactsDdl('contacts'));
  await seedContacts(src, 'contacts', rows, options.updatedAt ? { updatedAt: options.updatedAt } : {});
  await dst.query(contactsDdl('contacts'));
  const store = await PostgresStore.open(state.url);
  return { a, b, src, dst, store };
}

/** Fails the batch once the write is done (the instant between write and checkpoint), `times` times. */
function crashAfterWrite(target: Target, batches: number[]): Target {
  let batch = 0;
  const crash = () => {
    batch += 1;
    if (batches.includes(batch)) throw new Error(`crash after writing batch ${batch}`);
  };
  return {
    database: target.database,
    write: async (records, req) => {
      const result = await target.write(records, req);
      crash();
      return result;
    },
    ...(target.writeIn
      ? {
          writeIn: async (tx, records, req) => {
            const result = await target.writeIn!(tx, records, req);
            crash();
            return result;
          },
        }
      : {}),
  };
}

describe('PostgreSQL → PostgreSQL through the engine', () => {
  it('moves 10,000 rows sharing one updated_at in batches of 3,000, in backfill and incremental', async () => {
    const env = await setup('ties', 10_000, { updatedAt: "'2024-05-01T10:00:00.123456Z'::timestamptz" });
    try {
      const sync = pgSync({
        sourceUrl: env.a.url,
        targetUrl: env.b.url,
        store: env.store,
        spec: { batchSize: 3000 },
      });
      const first = await sync.run({ stopAfterBackfill: true });
      expect(first.checkpoint).toMatchObject({ phase: 'incremental', backfillDone: 10_000 });
      expect(first.run.counters).toMatchObject({ batches: 4, read: 10_000 });
      expect(await tableDigest(env.dst, 'contacts')).toEqual(await tableDigest(env.src, 'contacts'));
      // Every row changes to one later instant: incremental must read each exactly once across batches.
      await env.src.query(
        "UPDATE contacts SET updated_at = '2024-06-01T00:00:00.000001Z', company = 'moved'",
      );
      const second = await sync.run();
      expect(second.run.counters).toMatchObject({ batches: 4, read: 10_000 });
      expect(second.checkpoint.cursor).toEqual({ k: ['2024-06-01T00:00:00.000001Z', 10000n] });
      expect(await tableDigest(env.dst, 'contacts')).toEqual(await tableDigest(env.src, 'contacts'));
      const third = await sync.run();
      expect(third.run.counters.read).toBe(0);
    } finally {
      await env.store.close();
    }
  });

  it('commits batch and checkpoint together when the store lives in the target database: a crash between them leaves nothing half-done', async () => {
    const env = await setup('exactly_once', 5000, { storeInTarget: true });
    try {
      const sync = pgSync({
        sourceUrl: env.a.url,
        targetUrl: env.b.url,
        store: env.store,
        spec: { batchSize: 1000 },
      });
      const target = await sync.openTarget();
      expect(target.database).toBe(env.store.database);
      await target.close?.();
      await expect(
        sync.run({ wrapTarget: (t) => crashAfterWrite(t, [3]), stopAfterBackfill: true }),
      ).rejects.toThrow('crash after writing batch 3');
      // The third batch's rows went with its checkpoint: the target holds exactly what the checkpoint says.
      const cp = await env.store.getCheckpoint('contacts');
      expect(cp).toMatchObject({ cursor: { key: [2000] }, backfillDone: 2000, totals: { written: 2000 } });
      expect(
        (await env.dst.query('SELECT count(*)::int AS n, max(id)::int AS m FROM contacts')).rows[0],
      ).toEqual({ n: 2000, m: 2000 });
      const resumed = await sync.run({ stopAfterBackfill: true });
      // Exactly once: no batch was written twice.
      expect(resumed.checkpoint.totals).toMatchObject({ read: 5000, written: 5000 });
      expect(await tableDigest(env.dst, 'contacts')).toEqual(await tableDigest(env.src, 'contacts'));
    } finally {
      await env.store.close();
    }
  });

  it('replays the batch in hand into an idempotent target when the store lives elsewhere', async () => {
    const env = await setup('replay', 5000);
    try {
      const sync = pgSync({
        sourceUrl: env.a.url,
        targetUrl: env.b.url,
        store: env.store,
        spec: { batchSize: 1000 },
      });
      expect((await sync.openTarget().then(async (t) => [t.database, await t.close?.()]))[0]).not.toBe(
        env.store.database,
      );
      await expect(
        sync.run({ wrapTarget: (t) => crashAfterWrite(t, [3]), stopAfterBackfill: true }),
      ).rejects.toThrow();
      // Written but not checkpointed: 3,000 rows in the target, a checkpoint at 2,000.
      expect((await env.dst.query('SELECT count(*)::int AS n FROM contacts')).rows[0].n).toBe(3000);
      expect((await env.store.getCheckpoint('contacts'))?.cursor).toEqual({ key: [2000] });
      const resumed = await sync.run({ stopAfterBackfill: true });
      // Batch 3 was written twice; the upsert by key left one copy of each row.
      expect(resumed.checkpoint.totals).toMatchObject({ read: 5000, written: 5000 });
      expect(await tableDigest(env.dst, 'contacts')).toEqual(await tableDigest(env.src, 'contacts'));
    } finally {
      await env.store.close();
    }
  });

  it('sends rows the target refuses to the dead letters with PostgreSQL’s reason and writes the rest', async () => {
    const env = await setup('rejects', 3000);
    try {
      await env.dst.query(
        'ALTER TABLE contacts ADD CONSTRAINT score_small CHECK (score <> 12.34), ALTER COLUMN email SET NOT NULL',
      );
      await env.dst.query(
        "CREATE UNIQUE INDEX contacts_company ON contacts (company) WHERE company = 'unique co'",
      );
      await env.src.query('UPDATE contacts SET email = NULL WHERE id IN (10, 2500)');
      await env.src.query("UPDATE contacts SET company = 'unique co' WHERE id IN (1200, 1201)");
      const sync = pgSync({
        sourceUrl: env.a.url,
        targetUrl: env.b.url,
        store: env.store,
        spec: { batchSize: 1000 },
        cursorField: null,
      });
      const outcome = await sync.run({ stopAfterBackfill: true });
      const bad = await env.src.query<{ id: string }>(
        'SELECT id FROM contacts WHERE score = 12.34 OR email IS NULL OR id = 1201 ORDER BY id',
      );
      const letters = await env.store.listDeadLetters({ sync: 'contacts', limit: 1000 });
      expect(letters.map((l) => l.key)).toEqual(bad.rows.map((r) => [Number(r.id)]));
      expect(outcome.run.counters).toMatchObject({
        read: 3000,
        rejected: bad.rows.length,
        written: 3000 - bad.rows.length,
      });
      expect(letters.find((l) => JSON.stringify(l.key) === '[10]')?.reason).toMatch(
        /null value in column "email"/,
      );
      expect(letters.find((l) => JSON.stringify(l.key) === '[1234]')?.reason).toMatch(
        /violates check constraint "score_small"/,
      );
      expect(letters.find((l) => JSON.stringify(l.key) === '[1201]')?.reason).toMatch(
        /duplicate key value violates unique constraint "contacts_company"/,
      );
      expect((await env.dst.query('SELECT count(*)::int AS n FROM contacts')).rows[0].n).toBe(
        3000 - bad.rows.length,
      );
    } finally {
      await env.store.close();
    }
  });

  it('reads and writes a table whose schema and name hold quotes and spaces', async () => {
    const env = await setup('quoted', 10);
    const table = `${ident('odd "schema"')}.${ident('my "contacts" table')}`;
    try {
      for (const c of [env.src, env.dst]) {
        await c.query(`CREATE SCHEMA ${ident('odd "schema"')}`);
        await c.query(contactsDdl(table).replace('first_name text', '"first ""name"" col" text'));
      }
      await env.src.query(
        `INSERT INTO ${table} SELECT id, first_name, last_name, email, company, score, tags, attrs, created_at, updated_at FROM contacts`,
      );
      const names = { table: 'my "contacts" table', schema: 'odd "schema"' };
      const sync = pgSync({
        sourceUrl: env.a.url,
        targetUrl: env.b.url,
        store: env.store,
        source: names,
        target: names,
        spec: { batchSize: 3 },
      });
      const outcome = await sync.run();
      expect(outcome.checkpoint.phase).toBe('incremental');
      expect(await tableDigest(env.dst, table)).toEqual(await tableDigest(env.src, table));
    } finally {
      await env.store.close();
    }
  });

  it('fails a run whose connection is killed mid-batch with a retryable error, and resumes cleanly', async () => {
    const env = await setup('terminate', 5000);
    try {
      // Row 2500 makes the write of the third batch slow enough to be killed in the middle of it.
      await env.dst.query(`CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.id = 2500 AND current_setting('application_name') = 'sluice' THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END $$`);
      await env.dst.query(
        'CREATE TRIGGER slow BEFORE INSERT ON contacts FOR EACH ROW EXECUTE FUNCTION slow()',
      );
      const sync = pgSync({
        sourceUrl: env.a.url,
        targetUrl: env.b.url,
        store: env.store,
        spec: { batchSize: 1000 },
      });
      const killer = killWhenSleeping(env.dst, env.b.name);
      const failed = await sync.run({ stopAfterBackfill: true }).catch((err: unknown) => err);
      expect(await killer).toBe(true);
      expect(failed).toMatchObject({ code: expect.stringMatching(/^PG_(57P01|CONNECTION_LOST)$/) });
      const [run] = await env.store.listRuns({ sync: 'contacts' });
      expect(run).toMatchObject({ status: 'failed', errorCode: (failed as { code: string }).code });
      expect((await env.store.getCheckpoint('contacts'))?.cursor).toEqual({ key: [2000] });
      await env.dst.query('DROP TRIGGER slow ON contacts');
      const resumed = await sync.run({ stopAfterBackfill: true });
      expect(resumed.checkpoint).toMatchObject({ phase: 'incremental', backfillDone: 5000 });
      expect(await tableDigest(env.dst, 'contacts')).toEqual(await tableDigest(env.src, 'contacts'));
    } finally {
      await env.store.close();
    }
  });
});

/** Waits for a backend of `database` to sit in pg_sleep, then terminates it. */
async function killWhenSleeping(client: pg.Client, database: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const { rows } = await client.query(
      `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
       WHERE datname = $1 AND pid <> pg_backend_pid() AND wait_event = 'PgSleep'`,
      [database],
    );
    if (rows.some((r) => r.killed)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}
