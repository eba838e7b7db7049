import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.ts';
import { PostgresStore } from '../../src/store/postgres/store.ts';
import { freshDatabase } from '../support/pg.ts';
import { storeConformance } from './conformance.ts';

storeConformance('PostgresStore', async ({ now }) => {
  const db = await freshDatabase('store', { store: true });
  return PostgresStore.open(db.url, { now });
});

describe('PostgresStore migrations', () => {
  it('migrates an empty database from many processes at once, in a schema of its choosing', async () => {
    const db = await freshDatabase('migrate');
    const stores = await Promise.all(
      Array.from({ length: 5 }, () => PostgresStore.open(db.url, { schema: 'my "state"' })),
    );
    await Promise.all(stores.map((s) => s.close()));
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query(
        'SELECT version, name FROM "my ""state""".migrations ORDER BY version',
      );
      expect(rows).toEqual([
        { version: 1, name: 'initial' },
        { version: 4, name: 'run-lanes' },
        { version: 5, name: 'sweeps-fingerprints-fences' },
        { version: 6, name: 'webhook-receipts-request-ids' },
      ]);
    } finally {
      await client.end();
    }
  });

  it('refuses a store migrated by a newer Sluice', async () => {
    const db = await freshDatabase('too_new', { store: true });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    await client.query(
      "INSERT INTO sluice.migrations (version, name, applied_at) VALUES (9999, 'future', now())",
    );
    await client.end();
    await expect(PostgresStore.open(db.url)).rejects.toMatchObject({ code: 'STORE_TOO_NEW' });
  });

  it('is opened by a postgres:// or postgresql:// store location, naming its database', async () => {
    const db = await freshDatabase('open', { store: true });
    const a = await openStore(db.url, '/nowhere');
    const b = await openStore(
      db.url.replace('postgres://', 'postgresql://').replace('127.0.0.1', 'localhost'),
      '/nowhere',
    );
    try {
      expect(a).toBeInstanceOf(PostgresStore);
      // The same database reached by two URLs is one database: a target there can share the transaction.
      expect(a.database).toBe(b.database);
      expect(a.database).toMatch(/^postgres:\d+\/sluice_t_open_/);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
