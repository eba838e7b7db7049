/**
 * SQLite → SQLite backfill: Sluice against the physical limit, in one run.
 *
 *   npx node bench/sqlite.ts [--rows 1000000] [--batch 5000] [--run-ms 10000] [--json] [--keep]
 *
 * Generates the contacts, times `INSERT INTO … SELECT` across an attached database into the
 * source's own table definition (the most one SQLite process can do: rows are copied without being
 * decoded), then runs `sluice backfill` as a user does — the bin with its flags, a config file, runs
 * time-boxed to --run-ms — in a child process whose peak RSS is its own, and checks the target
 * equals the source by row count and a digest of every value and its storage class.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateContacts } from './support/contacts.ts';
import { columnsOf, tableDigest } from './support/verify.ts';

const TABLE = 'contacts';
const KEY = 'id';

type CliSummary = { runs: number; batches: number; records: number; elapsedMs: number; peakRssMb: number };

function positiveInt(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag}: expected a positive integer, got ${value}`);
  return n;
}

/**
 * `INSERT INTO … SELECT` from the attached source in one transaction, with the pragmas of Sluice's
 * SQLite target, timed until the connection is closed (its WAL checkpointed), as Sluice's time is.
 */
function physicalLimit(sourcePath: string, targetPath: string): number {
  const started = performance.now();
  const db = new DatabaseSync(targetPath);
  try {
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL');
    db.prepare('ATTACH DATABASE ? AS src').run(sourcePath);
    const ddl = db.prepare(`SELECT sql FROM src.sqlite_master WHERE type = 'table' AND name = ?`).get(TABLE);
    if (!ddl) throw new Error(`the source has no table ${TABLE}`);
    db.exec(String(ddl.sql));
    db.exec('BEGIN IMMEDIATE');
    db.exec(`INSERT INTO main."${TABLE}" SELECT * FROM src."${TABLE}"`);
    db.exec('COMMIT');
    db.exec('DETACH DATABASE src');
  } finally {
    db.close();
  }
  return performance.now() - started;
}

/** `sluice backfill` as a user runs it, reading the summary it prints with --json. */
function sluiceBackfill(dir: string, batchSize: number, maxRunDurationMs: number): Promise<CliSummary> {
  writeFileSync(
    join(dir, 'sluice.config.ts'),
    `export default {
  connections: { a: { type: 'sqlite', path: 'crm-a.db' }, b: { type: 'sqlite', path: 'crm-b.db' } },
  syncs: {
    contacts: {
      source: { connection: 'a', table: '${TABLE}' },
      target: { connection: 'b', table: '${TABLE}' },
      key: '${KEY}', cursor: 'updated_at', batch: { size: ${batchSize} }, maxRunDuration: ${maxRunDurationMs},
    },
  },
};
`,
  );
  const bin = fileURLToPath(new URL('../bin/sluice.js', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--config', join(dir, 'sluice.config.ts'), 'backfill', 'contacts', '--json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
      // The bin's `env node` must find this Node (24), as `npm run` arranges for users.
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` },
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`sluice backfill exited with ${signal ?? `code ${code}`}`));
      try {
        resolve(JSON.parse(out) as CliSummary);
      } catch (err) {
        reject(new Error(`sluice backfill printed no summary: ${out.slice(0, 500)}`, { cause: err }));
      }
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      batch: { type: 'string' },
      'run-ms': { type: 'string' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  });
  const rows = positiveInt(values.rows, 1_000_000, '--rows');
  const batchSize = positiveInt(values.batch, 5000, '--batch');
  const maxRunDurationMs = positiveInt(values['run-ms'], 10_000, '--run-ms');
  const log = values.json ? () => {} : (line: string) => process.stderr.write(`${line}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  let ok = false;
  try {
    const sourcePath = join(dir, 'crm-a.db');
    log(`generating ${rows.toLocaleString('en-US')} contacts`);
    generateContacts(sourcePath, rows);

    log('physical limit: INSERT INTO … SELECT across an attached database');
    const physicalMs = physicalLimit(sourcePath, join(dir, 'physical.db'));
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, `physical.db${suffix}`), { force: true });

    log(`Sluice: sluice backfill, batch ${batchSize}, runs of ${maxRunDurationMs} ms, in a child process`);
    const sluice = await sluiceBackfill(dir, batchSize, maxRunDurationMs);

    log('verifying target = source');
    const columns = columnsOf(sourcePath, TABLE);
    const want = tableDigest(sourcePath, TABLE, columns, KEY);
    const got = tableDigest(join(dir, 'crm-b.db'), TABLE, columns, KEY);
    if (sluice.records !== rows) throw new Error(`Sluice read ${sluice.records} records, expected ${rows}`);
    if (got.rows !== want.rows || got.sha256 !== want.sha256) {
      throw new Error(
        `target differs from source: ${got.rows} rows ${got.sha256} vs ${want.rows} rows ${want.sha256}`,
      );
    }

    const physical = (rows / physicalMs) * 1000;
    const ours = (rows / sluice.elapsedMs) * 1000;
    const figures = {
      rows,
      batchSize,
      physicalRowsPerSec: Math.round(physical),
      sluiceRowsPerSec: Math.round(ours),
      ratio: ours / physical,
      sluiceRuns: sluice.runs,
      sluiceBatches: sluice.batches,
      sluicePeakRssMb: sluice.peakRssMb,
      verified: got,
      node: process.version,
    };
    if (values.json) process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
    else {
      const n = (x: number) => Math.round(x).toLocaleString('en-US');
      process.stdout.write(
        [
          '',
          `rows                                         ${n(rows)}`,
          `physical limit (INSERT … SELECT, attached)   ${n(physical).padStart(9)} rows/s  ${(physicalMs / 1000).toFixed(2)} s`,
          `sluice backfill                              ${n(ours).padStart(9)} rows/s  ${(sluice.elapsedMs / 1000).toFixed(2)} s  (${sluice.runs} runs, ${n(sluice.batches)} batches of ${n(batchSize)})`,
          `Sluice / physical limit                      ${(figures.ratio * 100).toFixed(1)} %`,
          `Sluice peak RSS                              ${sluice.peakRssMb} MB`,
          `target = source (count, sha256 of values)    yes: ${n(got.rows)} rows, ${got.sha256.slice(0, 16)}…`,
          '',
        ].join('\n'),
      );
    }
    ok = true;
  } finally {
    if (ok && !values.keep) rmSync(dir, { recursive: true, force: true });
    else log(`files kept in ${dir}`);
  }
}

try {
  await main();
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
