import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';
import { onTestFinished } from 'vitest';
import { listMigrations } from '../../src/store/postgres/migrate.ts';
import { PostgresStore } from '../../src/store/postgres/store.ts';

/** The server tests run against; each test gets databases of its own on it. */
export const PG_URL = process.env.SLUICE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** `PG_URL` pointing at another database of the same server. */
export function urlOf(database: string): string {
  const url = new URL(PG_URL);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** One migrated store database per migration set, built once and copied per test (fast). */
const templateName = (): string => {
  const hash = createHash('sha256');
  for (const m of listMigrations()) hash.update(m.sql);
  return `sluice_tpl_${hash.digest('hex').slice(0, 12)}`;
};

let templateReady: Promise<string> | undefined;

function storeTemplate(): Promise<string> {
  templateReady ??= admin(async (client) => {
    const name = templateName();
    // Test files run in parallel workers: one builds the template while the others wait on the lock.
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [name]);
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (!rowCount) {
        const building = `${name}_building`;
        await client.query(`DROP DATABASE IF EXISTS ${ident(building)}`);
        await client.query(`CREATE DATABASE ${ident(building)}`);
        const store = await PostgresStore.open(urlOf(building));
        await store.close();
        await client.query(`ALTER DATABASE ${ident(building)} RENAME TO ${ident(name)}`);
      }
      return name;
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
    }
  });
  return templateReady;
}

export type TestDatabase = { name: string; url: string };

/**
 * A fresh database for one test: empty, or with the store already migrated (`store: true`). It is
 * dropped when the test passes and kept when it fails, with its name added to the failure.
 */
export async function freshDatabase(label: string, options: { store?: boolean } = {}): Promise<TestDatabase> {
  const name = `sluice_t_${label
    .replace(/[^a-z0-9]+/gi, '_')
    .toLowerCase()
    .slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const template = options.store ? await storeTemplate() : 'template0';
  await admin(async (client) => {
    for (let attempt = 0; ; attempt++) {
      try {
        await client.query(`CREATE DATABASE ${ident(name)} TEMPLATE ${ident(template)}`);
        return;
      } catch (err) {
        // Two copies of one template at the same instant can collide; a short retry settles it.
        if ((err as { code?: string }).code !== '55006' || attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  });
  onTestFinished(async (ctx) => {
    if (ctx.task.result?.state === 'fail') {
      for (const error of ctx.task.result?.errors ?? [])
        error.message = `${error.message}\n(test database kept: ${name})`;
      return;
    }
    await admin((client) => client.query(`DROP DATABASE IF EXISTS ${ident(name)} WITH (FORCE)`));
  });
  return { name, url: urlOf(name) };
}

/** A client on a test database, closed when the test ends. */
export async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  onTestFinished(async () => {
    await client.end().catch(() => undefined);
  });
  return client;
}
