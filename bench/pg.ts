/**
 * PostgreSQL → PostgreSQL backfill benchmark: Sluice beside what a user would otherwise reach for.
 *
 *   node bench/pg.ts [--rows 1000000] [--batch 10000] [--run-ms 15000] [--offset-seconds 60] [--keep]
 *                    [--worker-flags "--max-semi-space-size=16"]  (default: the flags bin/sluice.js uses)
 *
 * Generates the contacts in one database, then on the same server times: Sluice backfilling them
 * into another database (through `executeRun`, run after run, in a child process whose peak RSS is
 * its own; store in a third database), `pg_dump -t | psql`, pgloader, and a naive script paging
 * with OFFSET (capped, then extrapolated). Sluice's copy is checked against the source by digest.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { contactsDdl, seedContactsSql } from './pg/contacts.ts';
import type { PgWorkerJob, PgWorkerResult } from './pg/worker.ts';

const BASE = process.env.SLUICE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const urlOf = (db: string) => Object.assign(new URL(BASE), { pathname: `/${db}` }).toString();
const DB = {
  src: 'sluice_bench_src',
  sluice: 'sluice_bench_sluice',
  state: 'sluice_bench_state',
  dump: 'sluice_bench_dump',
  loader: 'sluice_bench_pgloader',
  offset: 'sluice_bench_offset',
};

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function recreate(db: string): Promise<void> {
  await withClient(BASE, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${db}`);
  });
}

const digest = (url: string) =>
  withClient(url, async (c) => {
    const { rows } = await c.query(
      `SELECT count(*)::int AS n, md5(string_agg(t::text, E'\\n' ORDER BY t.id)) AS md5 FROM contacts t`,
    );
    return `${rows[0].n}:${rows[0].md5}`;
  });

/** Runs the Sluice worker; `flags` go to its node (V8 flags under trial, e.g. a smaller young generation). */
function runWorker(job: PgWorkerJob, flags: readonly string[]): Promise<PgWorkerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...flags, new URL('./pg/worker.ts', import.meta.url).pathname, JSON.stringify(job)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`the Sluice worker exited with code ${code}`));
      resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as PgWorkerResult);
    });
  });
}

function timed(fn: () => void): number {
  const started = performance.now();
  fn();
  return performance.now() - started;
}

function pgDumpPsql(): number {
  const u = new URL(BASE);
  const conn = ['-h', u.hostname, '-p', u.port || '5432', '-U', decodeURIComponent(u.username || 'postgres')];
  return timed(() => {
    execFileSync(
      'bash',
      [
        '-o',
        'pipefail',
        '-c',
        `pg_dump ${conn.join(' ')} -t contacts ${DB.src} | psql -q -v ON_ERROR_STOP=1 ${conn.join(' ')} ${DB.dump}`,
      ],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
  });
}

/**
 * pgloader copying the table, creating it on the way as it does by default; null when not installed.
 * Rows are prefetched 10,000 at a time (default 100,000): with the default, pgloader's Lisp heap
 * (1 GB) runs out on 5,000,000 rows. A failure is reported beside the others, not fatal.
 */
function pgloader(): number | string | null {
  if (spawnSync('pgloader', ['--version']).status !== 0) return null;
  const pgloaderUrl = (db: string) => urlOf(db).replace(/^postgres(ql)?:/, 'pgsql:');
  try {
    return timed(() => {
      execFileSync(
        'pgloader',
        [
          '--on-error-stop',
          '--with',
          'workers = 2',
          '--with',
          'concurrency = 1',
          '--with',
          'prefetch rows = 10000',
          pgloaderUrl(DB.src),
          pgloaderUrl(DB.loader),
        ],
        {
          stdio: ['ignore', 'ignore', 'ignore'],
        },
      );
    });
  } catch (err) {
    return `failed (${(err as Error).message.split('\n')[0]})`;
  }
}

/**
 * The hand-written backfill: `ORDER BY id LIMIT n OFFSET o` pages, each inserted with one multi-row
 * INSERT. Stopped after `capMs`; the rest is extrapolated with each page costing what the last
 * measured ones cost plus the growth of OFFSET's skip (fitted linearly on the measured pages).
 */
async function offsetPaging(
  rows: number,
  page: number,
  capMs: number,
): Promise<{ ms: number; measuredRows: number; extrapolated: boolean }> {
  const src = new pg.Client({ connectionString: urlOf(DB.src) });
  const dst = new pg.Client({ connectionString: urlOf(DB.offset) });
  await src.connect();
  await dst.connect();
  try {
    await dst.query(contactsDdl('contacts'));
    const times: number[] = [];
    const started = performance.now();
    let offset = 0;
    while (offset < rows && performance.now() - started < capMs) {
      const t = performance.now();
      const { rows: batch } = await src.query('SELECT * FROM contacts ORDER BY id LIMIT $1 OFFSET $2', [
        page,
        offset,
      ]);
      const cols = Object.keys(batch[0] ?? {});
      const values: unknown[] = [];
      const tuples = batch.map(
        (r, i) =>
          `(${cols
            .map((c, j) => {
              values.push(c === 'attrs' ? JSON.stringify(r[c]) : r[c]);
              return `$${i * cols.length + j + 1}`;
            })
            .join(', ')})`,
      );
      if (tuples.length)
        await dst.query(`INSERT INTO contacts (${cols.join(', ')}) VALUES ${tuples.join(', ')}`, values);
      times.push(performance.now() - t);
      offset += batch.length;
      if (batch.length < page) break;
    }
    const measured = performance.now() - started;
    if (offset >= rows) return { ms: measured, measuredRows: offset, extrapolated: false };
    // Fit page time = a + b·pageIndex on the measured pages, and sum it over the pages not run.
    const n = times.length;
    const meanX = (n - 1) / 2;
    const meanY = times.reduce((s, v) => s + v, 0) / n;
    let num = 0;
    let den = 0;
    times.forEach((y, x) => {
      num += (x - meanX) * (y - meanY);
      den += (x - meanX) ** 2;
    });
    const b = den ? Math.max(0, num / den) : 0;
    const a = meanY - b * meanX;
    let rest = 0;
    for (let x = n; x < Math.ceil(rows / page); x++) rest += a + b * x;
    return { ms: measured + rest, measuredRows: offset, extrapolated: true };
  } finally {
    await src.end();
    await dst.end();
  }
}

// 1,000 rows of 10 columns per INSERT stays under PostgreSQL's 65,535 parameters per statement.
const OFFSET_PAGE = 1000;
const rate = (rows: number, ms: number) => Math.round(rows / (ms / 1000));
const fmt = (n: number) => n.toLocaleString('en-US');

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string', default: '1000000' },
      batch: { type: 'string', default: '10000' },
      'run-ms': { type: 'string', default: '15000' },
      'offset-seconds': { type: 'string', default: '60' },
      keep: { type: 'boolean', default: false },
      // The flags `bin/sluice.js` runs node with, so the figures are what users get.
      'worker-flags': { type: 'string', default: '--max-semi-space-size=16' },
    },
  });
  const rows = Number(values.rows.replaceAll('_', ''));
  const batchSize = Number(values.batch);
  const runMs = Number(values['run-ms']);
  for (const db of Object.values(DB)) await recreate(db);
  const t0 = performance.now();
  await withClient(urlOf(DB.src), async (c) => {
    await c.query(contactsDdl('contacts'));
    await c.query(seedContactsSql('contacts'), [rows]);
    await c.query('VACUUM ANALYZE contacts');
  });
  console.log(
    `generated ${fmt(rows)} contacts in ${Math.round(performance.now() - t0)} ms; PostgreSQL ${await withClient(BASE, async (c) => (await c.query('SHOW server_version')).rows[0].server_version)}, node ${process.version}`,
  );
  await withClient(urlOf(DB.sluice), (c) => c.query(contactsDdl('contacts')));

  const workerFlags = values['worker-flags'].split(/\s+/).filter(Boolean);
  const load = () => os.loadavg()[0]!.toFixed(2);
  const loadBefore = load();
  const sluice = await runWorker(
    {
      source: urlOf(DB.src),
      target: urlOf(DB.sluice),
      store: urlOf(DB.state),
      table: 'contacts',
      batchSize,
      maxRunDurationMs: runMs,
    },
    workerFlags,
  );
  const loadAfterSluice = load();
  const verified = (await digest(urlOf(DB.sluice))) === (await digest(urlOf(DB.src)));
  const dumpMs = pgDumpPsql();
  const loaderMs = pgloader();
  const offset = await offsetPaging(rows, OFFSET_PAGE, Number(values['offset-seconds']) * 1000);

  const sluiceRate = rate(rows, sluice.ms);
  const dumpRate = rate(rows, dumpMs);
  const line = (name: string, ms: number | string | null, note = '') =>
    console.log(
      `${name.padEnd(24)} ${ms === null ? 'skipped: pgloader not installed' : typeof ms === 'string' ? ms : `${fmt(rate(rows, ms)).padStart(9)} rows/s  ${(ms / 1000).toFixed(1).padStart(7)} s${note}`}`,
    );
  console.log(
    `\n${fmt(rows)} rows, batch ${fmt(batchSize)}; 1-min load ${loadBefore} before Sluice, ${loadAfterSluice} after it, ${load()} at the end (${os.cpus().length} cores):`,
  );
  line(
    workerFlags.length ? `sluice ${workerFlags.join(' ')}` : 'sluice (executeRun)',
    sluice.ms,
    `  ${sluice.runs} runs, ${sluice.batches} batches, peak RSS ${sluice.maxRssMB} MB, copy ${verified ? 'verified' : 'DIFFERS'}`,
  );
  line('pg_dump -t | psql', dumpMs);
  line('pgloader', loaderMs);
  line(
    'naive OFFSET paging',
    offset.ms,
    offset.extrapolated
      ? `  (extrapolated from ${fmt(offset.measuredRows)} rows in ${values['offset-seconds']} s)`
      : '',
  );
  console.log(
    `\nsluice / pg_dump|psql: ${((sluiceRate / dumpRate) * 100).toFixed(0)}%${typeof loaderMs !== 'number' ? '' : `; sluice / pgloader: ${(sluiceRate / rate(rows, loaderMs)).toFixed(2)}x`}`,
  );
  if (!verified) process.exitCode = 1;
  if (!values.keep)
    await withClient(BASE, async (c) => {
      for (const db of Object.values(DB)) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    });
}

await main();
