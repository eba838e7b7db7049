import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/validate.ts';
import { connectorTypes, loadConnectors } from '../../../src/connectors/registry.ts';
import { ConfigError } from '../../../src/core/errors.ts';
import type { BatchCommit, Store, StoreTransaction, Target } from '../../../src/core/ports.ts';
import type { Json } from '../../../src/core/types.ts';
import { PostgresStore } from '../../../src/store/postgres/store.ts';
import { connect, freshDatabase } from '../../support/pg.ts';
import { contactsDdl, pgSync, seedContacts, tableDigest } from './helpers.ts';

// Every built-in connector, imported up front: validation takes a synchronous lookup.
const findConnector = await loadConnectors(connectorTypes());

async function setup(
  label: string,
  rows: number,
  options: { storeInTarget?: boolean; updatedAt?: string; targetDdl?: string } = {},
) {
  const a = await freshDatabase(`${label}_src`);
  const b = await freshDatabase(`${label}_dst`, { store: options.storeInTarget ?? false });
  const state = options.storeInTarget ? b : await freshDatabase(`${label}_state`, { store: true });
  const src = await connect(a.url);
  const dst = await connect(b.url);
  await src.query(contactsDdl('contacts'));
  await seedContacts(src, 'contacts', rows, options.updatedAt ? { updatedAt: options.updatedAt } : {});
  await dst.query(options.targetDdl ?? contactsDdl('contacts'));
  const store = await PostgresStore.open(state.url);
  return { a, b, src, dst, store };
}

/** What the engine asked of the target: each copy's answer (rows written, or null: declined) and each write. */
type Calls = { copies: (number | null)[]; writes: number[]; writesIn: number[] };

function spy(target: Target, calls: Calls): Target {
  return {
    database: target.database,
    write: async (records, req) => {
      calls.writes.push(records.length);
      return target.write(records, req);
    },
    writeIn: async (tx, records, req) => {
      calls.writesIn.push(records.length);
      return target.writeIn!(tx, records, req);
    },
    copyFrom: async (location, range, req) => {
      const result = await target.copyFrom!(location, range, req);
      calls.copies.push(result ? result.written : null);
      return result;
    },
  };
}

const noCalls = (): Calls => ({ copies: [], writes: [], writesIn: [] });

describe('PostgreSQL → PostgreSQL native copy', () => {
  it('bounds a page from its keys alone, as read would, and copies exactly that page', async () => {
    const env = await setup('bounds', 100);
    try {
      const sync = pgSync({ sourceUrl: env.a.url, targetUrl: env.b.url, store: env.store });
      const source = await sync.openSource();
      const target = await sync.openTarget();
      try {
        const hwm = await source.highWaterMark!();
        const signal = new AbortController().signal;
        const req = {
          phase: 'backfill' as const,
          cursor: { key: [10n] },
          limit: 25,
          highWaterMark: hwm,
          signal,
        };
        const bounds = await source.bounds!(req);
        const page = await source.read(req);
        expect(bounds).toMatchObject({ count: 25, next: page.next, done: page.done });
        expect(bounds.next).toEqual({ key: [35n] });
        const location = source.location!();
        expect(location).toMatchObject({
          system: 'postgres',
          schema: 'public',
          table: 'contacts',
          where: null,
        });
        expect(await target.copyFrom!(location, bounds.range, { signal })).toEqual({
          written: 25,
          rejected: [],
        });
        const { rows } = await env.dst.query(
          'SELECT min(id)::int AS lo, max(id)::int AS hi, count(*)::int AS n FROM contacts',
        );
        expect(rows[0]).toEqual({ lo: 11, hi: 35, n: 25 });
        // The copied rows are the source's, value for value.
        const copied = await env.dst.query('SELECT t::text AS row FROM contacts t ORDER BY id');
        const expected = await env.src.query(
          'SELECT t::text AS row FROM contacts t WHERE id BETWEEN 11 AND 35 ORDER BY id',
        );
        expect(copied.rows).toEqual(expected.rows);
        // The last page: fewer rows than the limit, done, next at its last row.
        const end = await source.bounds!({ ...req, cursor: { key: [90n] } });
        expect(end).toMatchObject({ count: 10, next: { key: [100n] }, done: true });
        const empty = await source.bounds!({ ...req, cursor: { key: [100n] } });
        expect(empty).toMatchObject({ count: 0, done: true, next: { key: [100n] } });
        expect(await target.copyFrom!(location, empty.range, { signal })).toEqual({
          written: 0,
          rejected: [],
        });
        // Another system's location is declined.
        expect(
          await target.copyFrom!({ system: 'sqlite', path: 'x.db', table: 't' }, bounds.range, { signal }),
        ).toBeNull();
      } finally {
        await source.close?.();
        await target.close?.();
      }
    } finally {
      await env.store.close();
    }
  });

  it('copies every batch natively across ties at batch boundaries, in backfill and incremental', async () => {
    const env = await setup('ties', 10_000, { updatedAt: "'2024-05-01T10:00:00.123456Z'::timestamptz" });
    try {
      const sync = pgSync({
        sourceUrl: env.a.url,
        targetUrl: env.b.url,
        store: env.store,
        spec: { batchSize: 3000 },
      });
      const calls = noCalls();
      const first = await sync.run({ stopAfterBackfill: true, wrapTarget: (t) => spy(t, calls) });
      expect(first.run.counters).toMatchObject({ batches: 4, read: 10_000, written: 10_000 });
      expect(calls).toEqual({ copies: [3000, 3000, 3000, 1000], writes: [], writesIn: [] });
      expect(await tableDigest(env.dst, 'contacts')).toEqual(await tableDigest(env.src, 'contacts'));
      // Every row moves to one later instant: incremental reads each exactly once, through the stage.
      await env.src.query(
        "UPDATE contacts SET updated_at = '2024-06-01T00:00:00.000001Z', company = 'moved'",
      );
      const again = noCalls();
      const second = await sync.run({ wrapTarget: (t) => spy(t, again) });
      expect(second.run.counters).toMatchObject({ batches: 4, read: 10_000, written: 10_000 });
      expect(again).toEqual({ copies: [3000, 3000, 3000, 1000], writes: [], writesIn: [] });
      expect(second.checkpoint.cursor).toEqual({ k: ['2024-06-01T00:00:00.000001Z', 10000n] });
      expect(await tableDigest(env.dst, 'contacts')).toEqual(await tableDigest(env.src, 'contacts'));
      const third = await sync.run();
      expect(third.run.counters.read).toBe(0);
    } finally {
      await env.store.close();
    }
  });

  it('declines a batch with a row the table refuses; the engine dead-letters just that row and writes the rest', async () => {
    const env = await setup('refused', 3000);
    try {
      await env.dst.query(
        'ALTER TABLE contacts ADD CONSTRAINT score_small CHECK (score <> 12.34), ALTER COLUMN email SET NOT NULL',
      );
      await env.src.query('UPDATE contacts SET email = NULL WHERE id = 2500');
      const sync = pgSync({
        sourceUrl: env.a.url,
        targetUrl: env.b.url,
        store: env.store,
        spec: { batchSize: 1000 },
        cursorField: null,
      });
      const calls = noCalls();
      const outcome = await sync.run({ stopAfterBackfill: true, wrapTarget: (t) => spy(t, calls) });
      // Batch 1 is copied; batch 2 holds id 1234 (score 12.34) and batch 3 id 2500: each is declined
      // and goes the ordinary way on its own, the next batch trying a copy again.
      expect(calls).toEqual({ copies: [1000, null, null], writes: [1000, 1000], writesIn: [] });
      const letters = await env.store.listDeadLetters({ sync: 'contacts', limit: 100 });
      expect(letters.map((l) => l.key)).toEqual([[1234], [2500]]);
      expect(letters[0]!.reason).toMatch(/violates check constraint "score_small"/);
      expect(letters[1]!.reason).toMatch(/null value in column "email"/);
      expect(outcome.run.counters).toMatchObject({ read: 3000, written: 2998, rejected: 2 });
      expect((await env.dst.query('SELECT count(*)::int AS n FROM contacts')).rows[0].n).toBe(2998);
    } finally {
      await env.store.close();
    }
  });

  it('declines when a column type differs between the tables, and the ordinary path writes the rows', async () => {
    const env = await setup('types', 500, {
      targetDdl: contactsDdl('contacts').replace('score numeric(12, 2)', 'score text'),
    });
    try {
      const sync = pgSync({
        sourceUrl: env.a.url,
        targetUrl: env.b.url,
        store: env.store,
        spec: { batchSize: 200 },
      });
      const calls = noCalls();
      const outcome = await sync.run({ stopAfterBackfill: true, wrapTarget: (t) => spy(t, calls) });
      // Every batch is offered a copy, declined, and written the ordinary way.
      expect(calls.copies).toEqual([null, null, null]);
      expect(calls.writes).toEqual([200, 200, 100]);
      expect(outcome.run.counters).toMatchObject({ read: 500, written: 500 });
      expect((await env.dst.query('SELECT score FROM contacts WHERE id = 150')).rows).toEqual([
        { score: '1.50' },
      ]);
    } finally {
      await env.store.close();
    }
  });

  it('keeps exactly once where the store lives in the target database: copies are declined, batch and checkpoint commit together', async () => {
    const env = await setup('store_here', 5000, { storeInTarget: true });
    try {
      // A store that fails the third batch's commit, after the target wrote it in the same transaction.
      let commits = 0;
      const failing: Store = Object.create(env.store, {
        commitBatch: {
          value: async (commit: BatchCommit, tx?: StoreTransaction) => {
            commits += 1;
            if (commits === 3) throw new Error('crash before the checkpoint of batch 3');
            return env.store.commitBatch(commit, tx);
          },
        },
      });
      const sync = pgSync({
        sourceUrl: env.a.url,
        targetUrl: env.b.url,
        store: failing,
        spec: { batchSize: 1000 },
      });
      const calls = noCalls();
      await expect(sync.run({ stopAfterBackfill: true, wrapTarget: (t) => spy(t, calls) })).rejects.toThrow(
        'crash before the checkpoint of batch 3',
      );
      // The engine does not offer copies where batch and checkpoint can commit in one transaction.
      expect(calls.copies).toEqual([]);
      expect(calls.writesIn).toEqual([1000, 1000, 1000]);
      const cp = await env.store.getCheckpoint('contacts');
      expect(cp).toMatchObject({ cursor: { key: [2000] }, backfillDone: 2000 });
      expect((await env.dst.query('SELECT count(*)::int AS n FROM contacts')).rows[0].n).toBe(2000);
      const resumed = await sync.run({ stopAfterBackfill: true });
      expect(resumed.checkpoint.totals).toMatchObject({ read: 5000, written: 5000 });
      expect(await tableDigest(env.dst, 'contacts')).toEqual(await tableDigest(env.src, 'contacts'));
    } finally {
      await env.store.close();
    }
  });

  it('never copies natively when a map is configured', async () => {
    const env = await setup('mapped', 300);
    try {
      const sync = pgSync({
        sourceUrl: env.a.url,
        targetUrl: env.b.url,
        store: env.store,
        spec: { batchSize: 100, map: (r) => ({ ...r, company: 'mapped' }) },
      });
      const calls = noCalls();
      const outcome = await sync.run({ stopAfterBackfill: true, wrapTarget: (t) => spy(t, calls) });
      expect(calls).toEqual({ copies: [], writes: [100, 100, 100], writesIn: [] });
      expect(outcome.run.counters.written).toBe(300);
      expect(
        (await env.dst.query("SELECT count(*)::int AS n FROM contacts WHERE company = 'mapped'")).rows[0].n,
      ).toBe(300);
    } finally {
      await env.store.close();
    }
  });
});

describe('PostgreSQL connector options', () => {
  const config = (
    connection: Record<string, Json>,
    source: Record<string, Json>,
    target: Record<string, Json>,
  ) =>
    ({
      connections: {
        a: { type: 'postgres', url: 'postgres://u@h/a', ...connection },
        b: { type: 'postgres', url: 'postgres://u@h/b' },
      },
      syncs: {
        contacts: {
          source: { connection: 'a', table: 'contacts', ...source },
          target: { connection: 'b', table: 'contacts', ...target },
          key: 'id',
        },
      },
    }) as Json;
  const issuesOf = (raw: Json): string[] => {
    try {
      validateConfig(raw, { baseDir: '/tmp', lookup: findConnector, knownTypes: connectorTypes(), env: {} });
    } catch (err) {
      if (err instanceof ConfigError) return [...err.issues].sort();
      throw err;
    }
    return [];
  };

  it('refuses a misspelt option, naming its path', () => {
    expect(issuesOf(config({}, { colums: ['email'] }, { mdoe: 'insert' }))).toEqual([
      'syncs.contacts.source.colums: unknown field',
      'syncs.contacts.target.mdoe: unknown field',
    ]);
    expect(issuesOf(config({ ssl: true }, {}, {}))).toEqual(['connections.a.ssl: unknown field']);
    expect(
      issuesOf(config({}, { columns: ['email'], where: 'true' }, { mode: 'insert', schema: 's' })),
    ).toEqual([]);
  });
});
