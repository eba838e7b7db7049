/**
 * PostgreSQL helpers for the benches: databases on one server (created fresh, dropped after), the
 * digest that says two `contacts` tables hold the same rows, and `pg_dump -t | psql` timed as the
 * peer a user would otherwise reach for. (bench/pg.ts has its own copies of these; it can import
 * them from here.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export const PG_BASE = process.env.SLUICE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** The URL of database `db` on the bench's server. */
export const pgUrlOf = (db: string): string =>
  Object.assign(new URL(PG_BASE), { pathname: `/${db}` }).toString();

export async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

const SQL_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

function checkedName(db: string): string {
  if (!SQL_NAME.test(db)) throw new Error(`expected a lower-case SQL name for a bench database, got ${db}`);
  return db;
}

/** Drops `db` (closing its connections) and creates it empty. */
export async function recreateDatabase(db: string): Promise<void> {
  await withClient(PG_BASE, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${checkedName(db)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${checkedName(db)}`);
  });
}

export async function dropDatabases(dbs: readonly string[]): Promise<void> {
  await withClient(PG_BASE, async (c) => {
    for (const db of dbs) await c.query(`DROP DATABASE IF EXISTS ${checkedName(db)} WITH (FORCE)`);
  });
}

/** Row count and an md5 over every row of `table` in id order: equal digests, equal tables. */
export function tableDigest(url: string, table = 'contacts'): Promise<string> {
  return withClient(url, async (c) => {
    const { rows } = await c.query(
      `SELECT count(*)::int AS n, md5(string_agg(t::text, E'\\n' ORDER BY t.id)) AS md5 FROM ${checkedName(table)} t`,
    );
    return `${rows[0].n}:${rows[0].md5}`;
  });
}

/**
 * `pg_dump -t <table> <from> | psql <to>` (the table created on the way): its wall time in ms, and
 * the peak RSS of each side in MB where GNU time is installed (`/usr/bin/time`), else null.
 */
export function pgDumpPsql(
  from: string,
  to: string,
  table = 'contacts',
): { ms: number; peakRssMb: { pgDump: number; psql: number } | null } {
  const u = new URL(PG_BASE);
  const conn = ['-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username || 'postgres')];
  const gnuTime = existsSync('/usr/bin/time');
  const dir = gnuTime ? mkdtempSync(join(tmpdir(), 'bench-pgdump-')) : null;
  const timed = (name: string) => (dir ? `/usr/bin/time -f %M -o ${join(dir, name)} ` : '');
  const started = performance.now();
  try {
    execFileSync(
      'bash',
      [
        '-o',
        'pipefail',
        '-c',
        `${timed('dump')}pg_dump ${conn.join(' ')} -t ${checkedName(table)} ${checkedName(from)} | ${timed('psql')}psql -q -v ON_ERROR_STOP=1 ${conn.join(' ')} ${checkedName(to)}`,
      ],
      // Bounded: a dump that hangs (a lock) fails the peer rather than the whole bench.
      { stdio: ['ignore', 'ignore', 'inherit'], timeout: 600_000 },
    );
    const ms = performance.now() - started;
    if (!dir) return { ms, peakRssMb: null };
    // GNU time writes the maximum resident set size in KB.
    const mb = (name: string) => Math.round(Number(readFileSync(join(dir, name), 'utf8').trim()) / 1024);
    return { ms, peakRssMb: { pgDump: mb('dump'), psql: mb('psql') } };
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}
