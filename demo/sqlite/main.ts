/**
 * The SQLite demo: a million contacts in crm-a.db are backfilled into crm-b.db by `sluice backfill`
 * over many time-boxed runs, 1% of the source then changes, one incremental `sluice run` moves only
 * that, and the two databases are compared by key and content.
 *
 *   npm run demo                      # 1,000,000 contacts
 *   npm run demo -- --contacts 20000  # a quick one
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { generateContacts } from '../../bench/support/contacts.ts';
import { count } from '../options.ts';

const BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));
const SRC_INDEX = fileURLToPath(new URL('../../src/index.ts', import.meta.url));

type Options = { contacts: number; dir: string; maxRunDuration: string; batch: number };

function parseArgs(argv: string[]): Options {
  return new Command('demo')
    .option('--contacts <n>', 'contacts in crm-a.db', count, 1_000_000)
    .option('--dir <path>', 'where the demo writes its databases and config', 'demo-output')
    .option('--max-run-duration <d>', "each run's time box; small, so the backfill takes many runs", '500ms')
    .option('--batch <n>', 'records per batch', count, 5000)
    .parse(argv)
    .opts<Options>();
}

function sluice(dir: string, args: string[], capture = false): string {
  // The bin itself, as a user runs it: its shebang sets the V8 flags it wants.
  const result = spawnSync(BIN, ['--config', join(dir, 'sluice.config.ts'), ...args], {
    stdio: ['inherit', capture ? 'pipe' : 'inherit', 'inherit'],
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`sluice ${args.join(' ')} exited with ${result.status}`);
  return result.stdout ?? '';
}

function writeConfig(dir: string, options: Options): void {
  writeFileSync(
    join(dir, 'sluice.config.ts'),
    `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};

// Written by the demo; run any sluice command against it with --config ${join(dir, 'sluice.config.ts')}
export default defineConfig({
  store: '.sluice/state.db',
  connections: {
    crmA: { type: 'sqlite', path: 'crm-a.db' },
    crmB: { type: 'sqlite', path: 'crm-b.db' },
  },
  syncs: {
    contacts: {
      source: { connection: 'crmA', table: 'contacts' },
      target: { connection: 'crmB', table: 'contacts' },
      key: 'id',
      cursor: { field: 'updated_at', lookback: '2s' },
      batch: { size: ${options.batch} },
      maxRunDuration: '${options.maxRunDuration}',
    },
  },
});
`,
  );
}

/** Changes 1% of the source: half updates of existing contacts, half new contacts. */
function changeOnePercent(path: string, total: number): { updated: number; inserted: number } {
  const db = new DatabaseSync(path);
  const changes = Math.max(2, Math.floor(total / 100));
  const updated = Math.floor(changes / 2);
  const stamp = new Date().toISOString().slice(0, 19) + 'Z';
  const step = Math.max(1, Math.floor(total / updated));
  db.exec('BEGIN');
  const update = db.prepare(
    "UPDATE contacts SET company = company || ' (acquired)', updated_at = ? WHERE id = ?",
  );
  for (let i = 0; i < updated; i++) update.run(stamp, 1 + i * step);
  db.exec('COMMIT');
  db.close();
  const inserted = changes - updated;
  generateContacts(path, inserted, { firstId: total + 1, seed: 7, since: stamp, rowsPerSecond: inserted });
  return { updated, inserted };
}

/** Row count and a hash of every row in key order. */
function fingerprint(path: string): { rows: number; hash: string } {
  const db = new DatabaseSync(path, { readOnly: true });
  const hash = createHash('sha256');
  let rows = 0;
  for (const row of db.prepare('SELECT * FROM contacts ORDER BY id').iterate()) {
    hash.update(JSON.stringify(row));
    rows += 1;
  }
  db.close();
  return { rows, hash: hash.digest('hex') };
}

function main(): void {
  const options = parseArgs(process.argv);
  const dir = resolve(options.dir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const say = (line: string) => process.stdout.write(`\n== ${line}\n`);

  say(`Creating ${options.contacts.toLocaleString('en-US')} contacts in ${join(dir, 'crm-a.db')}`);
  let t = Date.now();
  generateContacts(join(dir, 'crm-a.db'), options.contacts, { rowsPerSecond: 2000 });
  process.stdout.write(
    `   done in ${((Date.now() - t) / 1000).toFixed(1)} s (about 2,000 contacts share each updated_at second)\n`,
  );
  writeConfig(dir, options);

  say(`sluice backfill contacts (each run is time-boxed to ${options.maxRunDuration})`);
  const backfill = JSON.parse(sluice(dir, ['backfill', 'contacts', '--json'], true)) as {
    runs: number;
    batches: number;
    records: number;
    elapsedMs: number;
    recordsPerSecond: number;
    peakRssMb: number;
  };

  say('Changing 1% of crm-a.db: updates and new contacts');
  const { updated, inserted } = changeOnePercent(join(dir, 'crm-a.db'), options.contacts);
  process.stdout.write(
    `   ${updated.toLocaleString('en-US')} updated, ${inserted.toLocaleString('en-US')} inserted\n`,
  );

  say('sluice run contacts (incremental: only what changed)');
  t = Date.now();
  const incremental = JSON.parse(sluice(dir, ['run', 'contacts', '--json'], true)) as {
    run: { id: number; counters: { batches: number; read: number; written: number; rejected: number } };
  };
  const incrementalMs = Date.now() - t;
  const c = incremental.run.counters;
  process.stdout.write(
    `   run ${incremental.run.id}: ${c.batches} batches, ${c.read.toLocaleString('en-US')} read, ${c.written.toLocaleString('en-US')} written, ${c.rejected} rejected\n`,
  );

  say('Verifying crm-a.db and crm-b.db by key and content');
  const a = fingerprint(join(dir, 'crm-a.db'));
  const b = fingerprint(join(dir, 'crm-b.db'));
  const equal = a.rows === b.rows && a.hash === b.hash;
  process.stdout.write(`   crm-a: ${a.rows.toLocaleString('en-US')} rows, sha256 ${a.hash.slice(0, 16)}\n`);
  process.stdout.write(`   crm-b: ${b.rows.toLocaleString('en-US')} rows, sha256 ${b.hash.slice(0, 16)}\n`);

  say('sluice status');
  sluice(dir, ['status']);

  say('Summary');
  const n = (v: number) => v.toLocaleString('en-US');
  process.stdout.write(
    [
      `   backfill:    ${n(backfill.records)} records in ${n(backfill.runs)} runs, ${n(backfill.batches)} batches, ${(backfill.elapsedMs / 1000).toFixed(1)} s, ${n(backfill.recordsPerSecond)} records/s`,
      `   peak memory: ${backfill.peakRssMb} MB (RSS of the sluice backfill process)`,
      `   incremental: ${n(updated + inserted)} changes synced in one run, ${(incrementalMs / 1000).toFixed(1)} s including start-up;`,
      `                ${n(c.read)} records read: the changes, plus the high-water second and the 2 s lookback window re-read`,
      `   verified:    ${equal ? 'source and target are equal by key and content' : 'MISMATCH between source and target'}`,
      `   try:         npm run sluice -- --config ${join(dir, 'sluice.config.ts')} runs contacts`,
      '',
    ].join('\n'),
  );
  if (!equal) process.exitCode = 1;
}

main();
