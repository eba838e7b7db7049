/**
 * PostgreSQL → PostgreSQL backfill: Sluice's native and ordinary paths beside what a user would
 * otherwise reach for, in one run.
 *
 *   npx node bench/pg.ts [--rows 1000000] [--batch 5000] [--run-ms 15000] [--map none,identity]
 *                        [--store own,target,sqlite] [--no-peers] [--lookback 5s] [--rounds 1]
 *                        [--offset-seconds 60] [--bin bin/sluice.js] [--node-options '…']
 *                        [--launch shebang] [--db-prefix sluice_bench] [--keep]
 *
 * Generates the contacts in one database, then each round times on the same server:
 * - `sluice backfill` as a user runs it (the bin with its flags, a config file, runs time-boxed to
 *   --run-ms, the store in its own database), once per `--map`: `none` (no map: the target streams
 *   each batch's COPY from the source unparsed, the native path) and `identity` (`map: (r) => r`:
 *   records parsed into JS, mapped, written by the target with COPY and an upsert, the ordinary
 *   path most real syncs take); each into a fresh database, in a child process whose peak RSS is
 *   its own, checked against the source by digest; and once per `--store`: `own` (the store in a
 *   database of its own, the default), `target` (the store in the target's database: each batch
 *   and its checkpoint commit in one transaction, the exactly-once path, where the target declines
 *   native copies so `none` goes the ordinary way too) and `sqlite` (the embedded SQLite store);
 * - `pg_dump -t | psql`, pgloader (when installed), and a naive script paging with OFFSET (stopped
 *   after --offset-seconds, the rest extrapolated).
 * `--lookback 5s` gives the syncs `cursor: { field: 'updated_at', lookback: '5s' }`; `--bin` runs
 * another checkout's bin against the same data; `--launch node` starts it as `node bin/sluice.js`
 * (the bin's V8 flags unused, as tests and `node …/bin/sluice.js worker` run it; see support/cli.ts);
 * `--no-peers` runs the Sluice paths alone;
 * `--db-prefix` names the bench's databases (two benches on one server must not share them). The
 * 1-minute load average is printed beside every figure.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { contactsDdl, seedContactsSql } from './pg/contacts.ts';
import {
  type BackfillSummary,
  commandLine,
  DEFAULT_BIN,
  type Launch,
  loadAverage,
  median,
  nodeFlags,
  sluiceBackfill,
} from './support/cli.ts';

const BASE = process.env.SLUICE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const urlOf = (db: string) => Object.assign(new URL(BASE), { pathname: `/${db}` }).toString();
const databases = (prefix: string) => ({
  src: `${prefix}_src`,
  none: `${prefix}_native`,
  identity: `${prefix}_identity`,
  state: `${prefix}_state`,
  dump: `${prefix}_dump`,
  loader: `${prefix}_pgloader`,
  offset: `${prefix}_offset`,
});
let DB = databases('sluice_bench');
const MAPS = { none: null, identity: '(r) => r' } as const;
type MapName = keyof typeof MAPS;
/** Where the store lives: its own database, the target's database (exactly-once), a SQLite file. */
const STORES = ['own', 'target', 'sqlite'] as const;
type StoreName = (typeof STORES)[number];
const pathName = (map: MapName, store: StoreName): string => {
  // With the store in the target's database the target declines native copies: no map goes the ordinary way.
  const way =
    map === 'none'
      ? store === 'target'
        ? 'sluice, no map (ordinary way)'
        : 'sluice, native (no map)'
      : 'sluice, ordinary (map: r => r)';
  return store === 'own' ? way : `${way}, store ${store === 'target' ? 'in target db' : 'SQLite'}`;
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
      { stdio: ['ignore', 'ignore', 'inherit'] },
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
        { stdio: ['ignore', 'ignore', 'ignore'] },
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

/** The config of one Sluice path: source database, a fresh target database, the store's database. */
function writeConfig(
  dir: string,
  opts: {
    map: MapName;
    store: StoreName;
    lookback: string | null;
    batchSize: number;
    maxRunDurationMs: number;
  },
): string {
  mkdirSync(dir, { recursive: true });
  const cursor = opts.lookback
    ? `{ field: 'updated_at', lookback: ${JSON.stringify(opts.lookback)} }`
    : `'updated_at'`;
  const map = MAPS[opts.map];
  const configPath = join(dir, `sluice-${opts.map}-${opts.store}.config.ts`);
  const store = {
    own: urlOf(DB.state),
    target: urlOf(DB[opts.map]),
    sqlite: join(dir, `state-${opts.map}.db`),
  }[opts.store];
  writeFileSync(
    configPath,
    `export default {
  store: ${JSON.stringify(store)},
  connections: {
    a: { type: 'postgres', url: ${JSON.stringify(urlOf(DB.src))} },
    b: { type: 'postgres', url: ${JSON.stringify(urlOf(DB[opts.map]))} },
  },
  syncs: {
    contacts: {
      source: { connection: 'a', table: 'contacts' },
      target: { connection: 'b', table: 'contacts', mode: 'upsert' },
      key: 'id', cursor: ${cursor}, batch: { size: ${opts.batchSize} }, maxRunDuration: ${opts.maxRunDurationMs},${map ? `\n      map: ${map},` : ''}
    },
  },
};
`,
  );
  return configPath;
}

// 1,000 rows of 10 columns per INSERT stays under PostgreSQL's 65,535 parameters per statement.
const OFFSET_PAGE = 1000;
const rate = (rows: number, ms: number) => Math.round(rows / (ms / 1000));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

type Peer = 'pg_dump | psql' | 'pgloader' | 'naive OFFSET paging';
type Round = {
  sluice: (BackfillSummary & { path: MapName; store: StoreName; load: string; verified: boolean })[];
  peers: { name: Peer; ms: number | null; note: string; load: string }[];
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    allowNegative: true,
    options: {
      rows: { type: 'string', default: '1000000' },
      batch: { type: 'string', default: '5000' },
      'run-ms': { type: 'string', default: '15000' },
      map: { type: 'string', default: 'none,identity' },
      store: { type: 'string', default: 'own' },
      peers: { type: 'boolean', default: true },
      'db-prefix': { type: 'string', default: 'sluice_bench' },
      launch: { type: 'string', default: 'shebang' },
      lookback: { type: 'string' },
      rounds: { type: 'string', default: '1' },
      'offset-seconds': { type: 'string', default: '60' },
      bin: { type: 'string' },
      'node-options': { type: 'string', default: '' },
      keep: { type: 'boolean', default: false },
    },
  });
  const rows = Number(values.rows.replaceAll('_', ''));
  const batchSize = Number(values.batch);
  const runMs = Number(values['run-ms']);
  const rounds = Number(values.rounds);
  const paths = values.map.split(',').map((m) => m.trim()) as MapName[];
  for (const p of paths) if (!(p in MAPS)) throw new Error(`--map: expected none or identity, got ${p}`);
  const stores = values.store.split(',').map((m) => m.trim()) as StoreName[];
  for (const s of stores)
    if (!STORES.includes(s)) throw new Error(`--store: expected ${STORES.join(', ')}, got ${s}`);
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(values['db-prefix']))
    throw new Error(`--db-prefix: expected a lower-case SQL name, got ${values['db-prefix']}`);
  DB = databases(values['db-prefix']);
  const launch = values.launch as Launch;
  if (launch !== 'shebang' && launch !== 'node')
    throw new Error(`--launch: expected shebang or node, got ${values.launch}`);
  const cases = paths.flatMap((map) => stores.map((store) => ({ map, store })));
  const lookback = values.lookback ?? null;
  const bin = values.bin ? resolve(values.bin) : DEFAULT_BIN;
  if (!existsSync(bin)) throw new Error(`--bin: ${bin} does not exist`);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-pg-'));

  await recreate(DB.src);
  const t0 = performance.now();
  await withClient(urlOf(DB.src), async (c) => {
    await c.query(contactsDdl('contacts'));
    await c.query(seedContactsSql('contacts'), [rows]);
    await c.query('VACUUM ANALYZE contacts');
  });
  const want = await digest(urlOf(DB.src));
  const server = await withClient(
    BASE,
    async (c) => (await c.query('SHOW server_version')).rows[0].server_version,
  );
  console.error(`generated ${fmt(rows)} contacts in ${Math.round(performance.now() - t0)} ms`);

  const results: Round[] = [];
  try {
    for (let round = 1; round <= rounds; round++) {
      const r: Round = { sluice: [], peers: [] };
      for (const { map: path, store } of cases) {
        await recreate(DB[path]);
        await recreate(DB.state);
        rmSync(join(dir, `state-${path}.db`), { force: true });
        await withClient(urlOf(DB[path]), (c) => c.query(contactsDdl('contacts')));
        const config = writeConfig(dir, { map: path, store, lookback, batchSize, maxRunDurationMs: runMs });
        const load = loadAverage();
        console.error(`round ${round}/${rounds}: ${pathName(path, store)}, load ${load}`);
        const summary = await sluiceBackfill(config, 'contacts', {
          bin,
          nodeOptions: values['node-options'],
          launch,
        });
        const verified = (await digest(urlOf(DB[path]))) === want && summary.records === rows;
        r.sluice.push({ ...summary, path, store, load, verified });
      }
      if (!values.peers) {
        results.push(r);
        continue;
      }
      for (const db of [DB.dump, DB.loader, DB.offset]) await recreate(db);
      let load = loadAverage();
      console.error(`round ${round}/${rounds}: pg_dump -t | psql, load ${load}`);
      r.peers.push({ name: 'pg_dump | psql', ms: pgDumpPsql(), note: '', load });
      load = loadAverage();
      console.error(`round ${round}/${rounds}: pgloader, load ${load}`);
      const loader = pgloader();
      r.peers.push({
        name: 'pgloader',
        ms: typeof loader === 'number' ? loader : null,
        note: loader === null ? 'not installed' : typeof loader === 'string' ? loader : '',
        load,
      });
      load = loadAverage();
      console.error(`round ${round}/${rounds}: naive OFFSET paging, load ${load}`);
      const offset = await offsetPaging(rows, OFFSET_PAGE, Number(values['offset-seconds']) * 1000);
      r.peers.push({
        name: 'naive OFFSET paging',
        ms: offset.ms,
        note: offset.extrapolated
          ? `extrapolated from ${fmt(offset.measuredRows)} rows in ${values['offset-seconds']} s`
          : '',
        load,
      });
      results.push(r);
    }
  } finally {
    if (!values.keep) {
      rmSync(dir, { recursive: true, force: true });
      await withClient(BASE, async (c) => {
        for (const db of Object.values(DB)) await c.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
      });
    } else console.error(`configs kept in ${dir}; databases kept`);
  }

  const bestPeer = (r: Round) => Math.max(0, ...r.peers.map((p) => (p.ms === null ? 0 : rate(rows, p.ms))));
  const ofBest = (v: number, best: number) =>
    best > 0 ? `${((v / best) * 100).toFixed(0).padStart(5)} %` : '    — %';
  const W = Math.max(34, ...cases.map((c) => pathName(c.map, c.store).length));
  const lines = [
    '',
    `$ ${commandLine()}`,
    `${fmt(rows)} rows, batch ${fmt(batchSize)}, runs of ${fmt(runMs)} ms${lookback ? `, cursor lookback ${lookback}` : ''}, ${rounds} round(s); PostgreSQL ${server}, ${process.version}, bin ${bin}`,
    '',
    `round  ${'path'.padEnd(W)}    rows/s   % of best peer  peak RSS   load`,
  ];
  results.forEach((r, i) => {
    const best = bestPeer(r);
    for (const s of r.sluice) {
      const v = rate(rows, s.elapsedMs);
      lines.push(
        `${String(i + 1).padEnd(6)} ${pathName(s.path, s.store).padEnd(W)} ${fmt(v).padStart(9)}   ${ofBest(v, best)}      ${String(s.peakRssMb).padStart(4)} MB  ${s.load}   ${s.runs} runs, ${fmt(s.batches)} batches, copy ${s.verified ? 'verified' : 'DIFFERS'}`,
      );
    }
    for (const p of r.peers) {
      const v = p.ms === null ? null : rate(rows, p.ms);
      lines.push(
        `${String(i + 1).padEnd(6)} ${p.name.padEnd(W)} ${v === null ? '        —' : fmt(v).padStart(9)}   ${v === null ? '    — %' : ofBest(v, best)}         —     ${p.load}${p.note ? `   ${p.note}` : ''}`,
      );
    }
  });
  lines.push('', 'median over rounds');
  for (const { map, store } of cases) {
    const runs = results.map((r) => ({
      s: r.sluice.find((x) => x.path === map && x.store === store)!,
      best: bestPeer(r),
    }));
    const ofPeer = values.peers
      ? `  ${(median(runs.map(({ s, best }) => rate(rows, s.elapsedMs) / best)) * 100).toFixed(0)} % of the best peer`
      : '';
    lines.push(
      `  ${pathName(map, store).padEnd(W)} ${fmt(median(runs.map(({ s }) => rate(rows, s.elapsedMs)))).padStart(9)} rows/s${ofPeer}  peak RSS ${Math.max(...runs.map(({ s }) => s.peakRssMb))} MB (max; median ${median(runs.map(({ s }) => s.peakRssMb))})`,
    );
  }
  if (values.peers) {
    for (const name of ['pg_dump | psql', 'pgloader', 'naive OFFSET paging'] as Peer[]) {
      const ms = results.map((r) => r.peers.find((p) => p.name === name)!.ms).filter((m) => m !== null);
      lines.push(
        `  ${name.padEnd(W)} ${ms.length ? `${fmt(median(ms.map((m) => rate(rows, m)))).padStart(9)} rows/s` : '  skipped'}`,
      );
    }
  }
  const first = results[0]?.sluice[0];
  lines.push(
    `  node flags of the Sluice child (from its /proc cmdline, launched by ${launch}): ${first ? nodeFlags(first.argv) : '?'}${values['node-options'] ? `; NODE_OPTIONS ${values['node-options']}` : ''}`,
    `  load average (1 min) at the end: ${loadAverage()}`,
    '',
  );
  console.log(lines.join('\n'));
  if (results.some((r) => r.sluice.some((s) => !s.verified))) process.exitCode = 1;
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
}
