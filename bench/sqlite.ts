/**
 * SQLite → SQLite backfill benchmark: Sluice against the physical limit.
 *
 *   node bench/sqlite.ts [--rows 1000000] [--batch 5000] [--run-ms 10000] [--json] [--keep]
 *                        [--worker-flags=--max-semi-space-size=16]
 *
 * `--worker-flags` passes Node flags to the Sluice child only. Its peak RSS is mostly V8's heap
 * sizing, not data: with defaults the young generation grows until RSS sits near 230 MB at 1M and
 * 3M rows alike; `--max-semi-space-size=16` kept it near 135 MB at 1M rows.
 *
 * Generates the contacts, times `INSERT INTO … SELECT` across an attached database (the most one
 * SQLite process can do) into the source's own DDL and into the table shape Sluice creates, then
 * backfills the same rows through `executeRun` in a child process whose peak RSS is its own, and
 * checks the target equals the source by row count and a content digest.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import { generateContacts } from './support/contacts.ts';
import type { WorkerJob, WorkerResult } from './support/sluice-worker.ts';
import { columnsOf, tableDigest } from './support/verify.ts';

const TABLE = 'contacts';
const KEY = 'id';

type Rate = { ms: number; rowsPerSec: number };

type Figures = {
  rows: number;
  batchSize: number;
  generateMs: number;
  /** INSERT … SELECT into a table with the source's own DDL: SQLite copies records without decoding them. */
  physical: Rate;
  /** INSERT … SELECT into the table shape Sluice's target creates (untyped columns, PRIMARY KEY on the key). */
  physicalSluiceShape: Rate;
  sluice: Rate & { cpuMs: number; runs: number; batches: number; peakRssMB: number };
  /** Sluice's rows/s over `physical`'s. */
  ratio: number;
  /** Sluice's rows/s over `physicalSluiceShape`'s. */
  ratioSameShape: number;
  verified: { rows: number; sha256: string };
  node: string;
  workerFlags: string;
};

function positiveInt(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value.replaceAll('_', ''));
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${flag}: expected a positive integer, got ${value}`);
  return n;
}

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

const rate = (rows: number, ms: number): Rate => ({ ms, rowsPerSec: (rows / ms) * 1000 });

/**
 * `INSERT INTO … SELECT` from the attached source in one transaction, with the target pragmas Sluice's
 * SQLite target uses, timed until the connection is closed (its WAL checkpointed into the file), as
 * Sluice's time is. `shape` picks the target table: the source's DDL, or the one Sluice creates.
 */
function physicalLimit(sourcePath: string, targetPath: string, shape: 'source' | 'sluice'): number {
  const started = performance.now();
  const db = new DatabaseSync(targetPath);
  try {
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL');
    db.prepare('ATTACH DATABASE ? AS src').run(sourcePath);
    const ddl = db.prepare(`SELECT sql FROM src.sqlite_master WHERE type = 'table' AND name = ?`).get(TABLE);
    if (!ddl) throw new Error(`the source has no table ${TABLE}`);
    if (shape === 'source') db.exec(String(ddl.sql));
    else {
      // As SqliteTarget creates a table on first write: the fields untyped, a PRIMARY KEY on the key.
      const columns = db
        .prepare('SELECT name FROM src.pragma_table_info(?) ORDER BY cid')
        .all(TABLE)
        .map((r) => quoteIdent(String(r.name)));
      db.exec(
        `CREATE TABLE main.${quoteIdent(TABLE)} (${columns.join(', ')}, PRIMARY KEY (${quoteIdent(KEY)}))`,
      );
    }
    db.exec('BEGIN IMMEDIATE');
    db.exec(`INSERT INTO main.${quoteIdent(TABLE)} SELECT * FROM src.${quoteIdent(TABLE)}`);
    db.exec('COMMIT');
    db.exec('DETACH DATABASE src');
  } finally {
    db.close();
  }
  const ms = performance.now() - started;
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${targetPath}${suffix}`, { force: true });
  return ms;
}

function runWorker(job: WorkerJob, nodeFlags: string[]): Promise<WorkerResult> {
  const script = join(import.meta.dirname, 'support', 'sluice-worker.ts');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, script, JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code !== 0) return reject(new Error(`the Sluice worker exited with ${signal ?? `code ${code}`}`));
      const last = out.trim().split('\n').at(-1) ?? '';
      try {
        resolve(JSON.parse(last) as WorkerResult);
      } catch (err) {
        reject(new Error(`the Sluice worker printed no result: ${out.slice(0, 500)}`, { cause: err }));
      }
    });
  });
}

function formatTable(f: Figures): string {
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const r = (x: Rate) => `${n(x.rowsPerSec).padStart(9)} rows/s  ${(x.ms / 1000).toFixed(2).padStart(7)} s`;
  const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
  const lines: [string, string][] = [
    ['rows', n(f.rows)],
    ['physical limit: INSERT … SELECT, source DDL', r(f.physical)],
    ['physical limit: INSERT … SELECT, Sluice table shape', r(f.physicalSluiceShape)],
    [
      `Sluice backfill (batch ${n(f.batchSize)}, ${f.sluice.runs} runs, ${n(f.sluice.batches)} batches)`,
      r(f.sluice),
    ],
    ['Sluice / physical limit (source DDL)', pct(f.ratio)],
    ['Sluice / physical limit (Sluice table shape)', pct(f.ratioSameShape)],
    ['Sluice peak RSS', `${f.sluice.peakRssMB.toFixed(1)} MB`],
    [
      'target = source (count, sha256 of values and types)',
      `yes: ${n(f.verified.rows)} rows, ${f.verified.sha256.slice(0, 16)}…`,
    ],
  ];
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      batch: { type: 'string' },
      'run-ms': { type: 'string' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'worker-flags': { type: 'string', default: '' },
    },
  });
  const rows = positiveInt(values.rows, 1_000_000, '--rows');
  const batchSize = positiveInt(values.batch, 5000, '--batch');
  const maxRunDurationMs = positiveInt(values['run-ms'], 10_000, '--run-ms');
  const log = values.json ? () => {} : (line: string) => process.stderr.write(`${line}\n`);
  const seconds = (from: number) => `${((performance.now() - from) / 1000).toFixed(2)} s`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  let ok = false;
  try {
    const sourcePath = join(dir, 'crm-a.db');
    log(`generating ${rows.toLocaleString('en-US')} contacts in ${sourcePath}`);
    let t = performance.now();
    generateContacts(sourcePath, rows);
    const generateMs = performance.now() - t;
    log(`  ${seconds(t)}`);

    log(
      'physical limit: INSERT INTO … SELECT across an attached database (source DDL, then Sluice table shape)',
    );
    const physical = rate(rows, physicalLimit(sourcePath, join(dir, 'physical.db'), 'source'));
    const physicalSluiceShape = rate(
      rows,
      physicalLimit(sourcePath, join(dir, 'physical-shape.db'), 'sluice'),
    );

    log(`Sluice: backfill through executeRun, batch ${batchSize}, in a child process`);
    const sluice = await runWorker(
      {
        dir,
        source: 'crm-a.db',
        target: 'crm-b.db',
        store: 'state.db',
        table: TABLE,
        batchSize,
        maxRunDurationMs,
      },
      values['worker-flags'].split(' ').filter(Boolean),
    );

    log('verifying target = source');
    t = performance.now();
    const columns = columnsOf(sourcePath, TABLE);
    const want = tableDigest(sourcePath, TABLE, columns, KEY);
    const got = tableDigest(join(dir, 'crm-b.db'), TABLE, columns, KEY);
    if (want.rows !== rows) throw new Error(`the source holds ${want.rows} rows, expected ${rows}`);
    if (sluice.rows !== rows || sluice.rejected !== 0) {
      throw new Error(
        `Sluice reported ${sluice.rows} rows read and ${sluice.rejected} rejected, expected ${rows} and 0`,
      );
    }
    if (got.rows !== want.rows || got.sha256 !== want.sha256) {
      throw new Error(
        `target differs from source: ${got.rows} rows ${got.sha256} vs ${want.rows} rows ${want.sha256}`,
      );
    }
    log(`  ${seconds(t)}`);

    const sluiceRate = rate(rows, sluice.ms);
    const figures: Figures = {
      rows,
      batchSize,
      generateMs,
      physical,
      physicalSluiceShape,
      sluice: {
        ...sluiceRate,
        cpuMs: sluice.cpuMs,
        runs: sluice.runs,
        batches: sluice.batches,
        peakRssMB: sluice.maxRssMB,
      },
      ratio: sluiceRate.rowsPerSec / physical.rowsPerSec,
      ratioSameShape: sluiceRate.rowsPerSec / physicalSluiceShape.rowsPerSec,
      verified: got,
      node: process.version,
      workerFlags: values['worker-flags'],
    };
    process.stdout.write(
      values.json ? `${JSON.stringify(figures, null, 2)}\n` : `\n${formatTable(figures)}\n`,
    );
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
