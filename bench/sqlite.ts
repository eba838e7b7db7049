/**
 * SQLite → SQLite backfill: Sluice's native and ordinary paths against the physical limit, in one run.
 *
 *   npx node bench/sqlite.ts [--rows 1000000] [--batch 5000] [--run-ms 10000] [--map none,identity]
 *                            [--lookback 5s] [--rounds 1] [--bin bin/sluice.js] [--node-options '…']
 *                            [--json] [--keep]
 *
 * Generates the contacts once, then each round times `INSERT INTO … SELECT` across an attached
 * database into the source's own table definition (the most one SQLite process can do: rows are
 * copied without being decoded), then `sluice backfill` as a user runs it — the bin with its flags,
 * a config file, runs time-boxed to --run-ms — once per `--map`:
 *
 * - `none`: no `map`, the native path (the target copies each batch from the attached source);
 * - `identity`: `map: (r) => r`, the ordinary path most real syncs take (records read into JS, mapped,
 *   written by the target with multi-row upserts).
 *
 * `--lookback 5s` gives the syncs `cursor: { field: 'updated_at', lookback: '5s' }`: records the
 * first sweep will read again are fingerprinted during the backfill. `--bin` runs another checkout's
 * bin (a worktree of an older commit) against the same data. Each Sluice run is a child process whose
 * peak RSS is its own, and each copy is checked against the source by row count and a digest of every
 * value and its storage class. The 1-minute load average is printed beside every figure.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { parseArgs } from 'node:util';
import {
  type BackfillSummary,
  commandLine,
  DEFAULT_BIN,
  loadAverage,
  median,
  nodeFlags,
  sluiceBackfill,
} from './support/cli.ts';
import { generateContacts } from './support/contacts.ts';
import { columnsOf, tableDigest } from './support/verify.ts';

const TABLE = 'contacts';
const KEY = 'id';
const MAPS = { none: null, identity: '(r) => r' } as const;
type MapName = keyof typeof MAPS;
const PATH_NAMES: Record<MapName, string> = {
  none: 'native (no map)',
  identity: 'ordinary (map: r => r)',
};

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

/** A folder with the sync's config, its target file and its store: one Sluice run from scratch. */
function writeConfig(
  dir: string,
  sourcePath: string,
  opts: { map: MapName; lookback: string | null; batchSize: number; maxRunDurationMs: number },
): string {
  mkdirSync(dir, { recursive: true });
  const cursor = opts.lookback
    ? `{ field: 'updated_at', lookback: ${JSON.stringify(opts.lookback)} }`
    : `'updated_at'`;
  const map = MAPS[opts.map];
  const configPath = join(dir, 'sluice.config.ts');
  writeFileSync(
    configPath,
    `export default {
  store: ${JSON.stringify(join(dir, 'state.db'))},
  connections: {
    a: { type: 'sqlite', path: ${JSON.stringify(sourcePath)} },
    b: { type: 'sqlite', path: ${JSON.stringify(join(dir, 'crm-b.db'))} },
  },
  syncs: {
    contacts: {
      source: { connection: 'a', table: '${TABLE}' },
      target: { connection: 'b', table: '${TABLE}' },
      key: '${KEY}', cursor: ${cursor}, batch: { size: ${opts.batchSize} }, maxRunDuration: ${opts.maxRunDurationMs},${map ? `\n      map: ${map},` : ''}
    },
  },
};
`,
  );
  return configPath;
}

/** Fingerprints the store keeps after the backfill (null for a store that has none: older code). */
function fingerprintCount(statePath: string): number | null {
  const db = new DatabaseSync(statePath, { readOnly: true });
  try {
    const has = db
      .prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'fingerprints'`)
      .get();
    return has ? Number(db.prepare('SELECT count(*) AS n FROM fingerprints').get()?.n ?? 0) : null;
  } finally {
    db.close();
  }
}

type Measured = BackfillSummary & { path: MapName; round: number; load: string; fingerprints: number | null };

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      batch: { type: 'string' },
      'run-ms': { type: 'string' },
      map: { type: 'string', default: 'none,identity' },
      lookback: { type: 'string' },
      rounds: { type: 'string' },
      bin: { type: 'string' },
      'node-options': { type: 'string', default: '' },
      json: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
    },
  });
  const rows = positiveInt(values.rows, 1_000_000, '--rows');
  const batchSize = positiveInt(values.batch, 5000, '--batch');
  const maxRunDurationMs = positiveInt(values['run-ms'], 10_000, '--run-ms');
  const rounds = positiveInt(values.rounds, 1, '--rounds');
  const paths = values.map.split(',').map((m) => m.trim());
  for (const p of paths) if (!(p in MAPS)) throw new Error(`--map: expected none or identity, got ${p}`);
  const lookback = values.lookback ?? null;
  const bin = values.bin ? resolve(values.bin) : DEFAULT_BIN;
  if (!existsSync(bin)) throw new Error(`--bin: ${bin} does not exist`);
  const log = values.json ? () => {} : (line: string) => process.stderr.write(`${line}\n`);
  const n = (x: number) => Math.round(x).toLocaleString('en-US');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
  let ok = false;
  try {
    const sourcePath = join(dir, 'crm-a.db');
    log(`generating ${n(rows)} contacts`);
    generateContacts(sourcePath, rows);
    const columns = columnsOf(sourcePath, TABLE);
    const want = tableDigest(sourcePath, TABLE, columns, KEY);

    const physical: { ms: number; load: string }[] = [];
    const sluice: Measured[] = [];
    for (let round = 1; round <= rounds; round++) {
      const load = loadAverage();
      log(`round ${round}/${rounds}: physical limit (INSERT INTO … SELECT, attached), load ${load}`);
      const physicalPath = join(dir, 'physical.db');
      physical.push({ ms: physicalLimit(sourcePath, physicalPath), load });
      for (const suffix of ['', '-wal', '-shm']) rmSync(`${physicalPath}${suffix}`, { force: true });

      for (const path of paths as MapName[]) {
        const runDir = join(dir, `${path}-${round}`);
        const config = writeConfig(runDir, sourcePath, { map: path, lookback, batchSize, maxRunDurationMs });
        const load = loadAverage();
        log(`round ${round}/${rounds}: sluice backfill, ${PATH_NAMES[path]}, load ${load}`);
        const result = await sluiceBackfill(config, 'contacts', { bin, nodeOptions: values['node-options'] });
        if (result.records !== rows)
          throw new Error(`Sluice read ${result.records} records, expected ${rows}`);
        const got = tableDigest(join(runDir, 'crm-b.db'), TABLE, columns, KEY);
        if (got.rows !== want.rows || got.sha256 !== want.sha256) {
          throw new Error(
            `${PATH_NAMES[path]}: target differs from source: ${got.rows} rows ${got.sha256} vs ${want.rows} rows ${want.sha256} (files in ${runDir})`,
          );
        }
        sluice.push({
          ...result,
          path,
          round,
          load,
          fingerprints: fingerprintCount(join(runDir, 'state.db')),
        });
        if (!values.keep) rmSync(runDir, { recursive: true, force: true });
      }
    }

    const rate = (ms: number) => (rows / ms) * 1000;
    const physicalRate = median(physical.map((p) => rate(p.ms)));
    const summary = (paths as MapName[]).map((path) => {
      const runs = sluice.filter((s) => s.path === path);
      return {
        path,
        name: PATH_NAMES[path],
        rowsPerSec: Math.round(median(runs.map((r) => rate(r.elapsedMs)))),
        // Each round against the limit measured in the same round, then the median of those.
        ofLimit: median(runs.map((r) => rate(r.elapsedMs) / rate(physical[r.round - 1]!.ms))),
        peakRssMb: Math.max(...runs.map((r) => r.peakRssMb)),
        peakRssMedianMb: median(runs.map((r) => r.peakRssMb)),
        runs: runs[0]!.runs,
        batches: runs[0]!.batches,
        fingerprints: runs[0]!.fingerprints,
        loads: runs.map((r) => r.load),
        nodeFlags: nodeFlags(runs[0]!.argv),
      };
    });
    const figures = {
      command: commandLine(),
      rows,
      batchSize,
      lookback,
      rounds,
      bin,
      physicalRowsPerSec: Math.round(physicalRate),
      physicalLoads: physical.map((p) => p.load),
      sluice: summary,
      perRound: sluice.map(({ path, round, elapsedMs, peakRssMb, load }) => ({
        path,
        round,
        rowsPerSec: Math.round(rate(elapsedMs)),
        physicalRowsPerSec: Math.round(rate(physical[round - 1]!.ms)),
        peakRssMb,
        load,
      })),
      verified: want,
      node: process.version,
      loadAtEnd: loadAverage(),
    };
    if (values.json) process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
    else {
      const lines = [
        '',
        `$ ${figures.command}`,
        `${n(rows)} rows, batch ${n(batchSize)}, runs of ${n(maxRunDurationMs)} ms${lookback ? `, cursor lookback ${lookback}` : ''}, ${rounds} round(s) (medians), ${process.version}, bin ${bin}`,
        '',
        'round  path                        rows/s    % of limit  peak RSS  load',
      ];
      for (let round = 1; round <= rounds; round++) {
        const p = physical[round - 1]!;
        lines.push(
          `${String(round).padEnd(6)} ${'physical limit'.padEnd(24)} ${n(rate(p.ms)).padStart(9)}    100.0 %        —      ${p.load}`,
        );
        for (const s of sluice.filter((x) => x.round === round)) {
          lines.push(
            `${String(round).padEnd(6)} ${PATH_NAMES[s.path].padEnd(24)} ${n(rate(s.elapsedMs)).padStart(9)}    ${((rate(s.elapsedMs) / rate(p.ms)) * 100).toFixed(1).padStart(5)} %  ${String(s.peakRssMb).padStart(4)} MB   ${s.load}`,
          );
        }
      }
      lines.push(
        '',
        'median',
        `  physical limit (INSERT … SELECT, attached)  ${n(physicalRate).padStart(9)} rows/s`,
      );
      for (const s of summary) {
        lines.push(
          `  sluice backfill, ${s.name.padEnd(24)}  ${n(s.rowsPerSec).padStart(9)} rows/s  ${(s.ofLimit * 100).toFixed(1)} % of the limit  peak RSS ${s.peakRssMb} MB (median ${s.peakRssMedianMb})  ${s.runs} runs, ${n(s.batches)} batches${s.fingerprints === null ? '' : `, ${n(s.fingerprints)} fingerprints kept`}`,
        );
      }
      lines.push(
        `  node flags of the Sluice child (from its /proc cmdline): ${summary[0]?.nodeFlags ?? 'none'}${values['node-options'] ? `; NODE_OPTIONS ${values['node-options']}` : ''}`,
        `  target = source (count, sha256 of values and storage classes) for every run: ${n(want.rows)} rows, ${want.sha256.slice(0, 16)}…`,
        `  load average (1 min): ${[...physical.map((p) => p.load), ...sluice.map((s) => s.load)].join(', ')}; at the end ${figures.loadAtEnd}`,
        '',
      );
      process.stdout.write(lines.join('\n'));
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
