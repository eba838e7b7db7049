/**
 * bench/scale.ts, part 2: a PostgreSQL → PostgreSQL backfill of bench/pg's contacts, partitioned or
 * not, beside `pg_dump -t | psql` of the same table on the same server in the same run. Each Sluice
 * case moves into a fresh database with a fresh store (its own database), as `sluice backfill` in a
 * child process whose peak RSS is its own, checked against the source by digest.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { contactsDdl, seedContactsSql } from '../pg/contacts.ts';
import { type BackfillSummary, DEFAULT_BIN, loadAverage, sluiceBackfill } from '../support/cli.ts';
import {
  dropDatabases,
  pgDumpPsql,
  pgUrlOf,
  recreateDatabase,
  tableDigest,
  withClient,
} from '../support/pg.ts';
import { withDeadline } from './deadline.ts';

export type PgSettings = { prefix: string; rows: number; batch: number; runMs: number; deadlineMs: number };

export type PgFigure = {
  label: string;
  partitions: number | null;
  /** What `sluice check` says the engine does with each batch (null for the peer). */
  path: string;
  ms: number | null;
  peakRssMb: string;
  verified: boolean;
  error: string | null;
  load: string;
  /** Records the Sluice child says it moved (its `--json` summary); undefined for the peer. */
  records?: number;
};

const databases = (prefix: string) => ({
  src: `${prefix}_src`,
  dst: `${prefix}_dst`,
  state: `${prefix}_state`,
  dump: `${prefix}_dump`,
});

export async function seedPg(settings: PgSettings): Promise<string> {
  const db = databases(settings.prefix);
  await recreateDatabase(db.src);
  await withClient(pgUrlOf(db.src), async (c) => {
    await c.query(contactsDdl('contacts'));
    await c.query(seedContactsSql('contacts'), [settings.rows]);
    await c.query('VACUUM ANALYZE contacts');
  });
  return tableDigest(pgUrlOf(db.src));
}

export const dropPg = (prefix: string) => dropDatabases(Object.values(databases(prefix)));

function writeConfig(dir: string, settings: PgSettings, partitions: number): string {
  const db = databases(settings.prefix);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'sluice.config.ts');
  writeFileSync(
    path,
    `export default {
  store: ${JSON.stringify(pgUrlOf(db.state))},
  connections: {
    a: { type: 'postgres', url: ${JSON.stringify(pgUrlOf(db.src))} },
    b: { type: 'postgres', url: ${JSON.stringify(pgUrlOf(db.dst))} },
  },
  syncs: {
    contacts: {
      source: { connection: 'a', table: 'contacts' },
      target: { connection: 'b', table: 'contacts', mode: 'upsert' },
      key: 'id', cursor: 'updated_at', batch: { size: ${settings.batch} }, maxRunDuration: ${settings.runMs},
      backfill: { partitions: ${partitions}, parallel: true },
    },
  },
};
`,
  );
  return path;
}

/** `sluice check --json`'s word on native copies for the sync (as the engine decides it). */
function checkedPath(config: string): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(DEFAULT_BIN, ['--config', config, 'check', 'contacts', '--json'], {
      stdio: ['ignore', 'pipe', 'ignore'],
      env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH}` },
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
    });
    child.on('close', () => {
      try {
        const found = JSON.parse(out) as {
          syncs: { next?: { nativeCopy?: { native: boolean; why: string } } }[];
        };
        const native = found.syncs[0]?.next?.nativeCopy;
        resolve(
          native ? `${native.native ? 'native COPY per batch' : 'ordinary'} (${native.why})` : 'unknown',
        );
      } catch {
        // `sluice check` printed no JSON (it failed): the path is not known, the figure still is.
        resolve(`unknown (sluice check printed no findings: ${out.slice(0, 200)})`);
      }
    });
  });
}

export async function pgSluiceCase(
  dir: string,
  settings: PgSettings,
  partitions: number,
  want: string,
): Promise<PgFigure & { summary: BackfillSummary | null }> {
  const db = databases(settings.prefix);
  await recreateDatabase(db.dst);
  await recreateDatabase(db.state);
  await withClient(pgUrlOf(db.dst), (c) => c.query(contactsDdl('contacts')));
  const config = writeConfig(dir, settings, partitions);
  const path = await checkedPath(config);
  const label = `sluice, partitions ${partitions}`;
  const load = loadAverage();
  console.error(`pg: ${label}, load ${load}`);
  let summary: BackfillSummary | null = null;
  let error: string | null = null;
  try {
    summary = await withDeadline(settings.deadlineMs, [], () => sluiceBackfill(config, 'contacts'));
  } catch (err) {
    error = (err as Error).message;
  }
  const verified = summary !== null && (await tableDigest(pgUrlOf(db.dst))) === want;
  return {
    label,
    partitions,
    path,
    ms: summary?.elapsedMs ?? null,
    peakRssMb: summary ? `${summary.peakRssMb} MB` : '?',
    verified,
    error,
    load,
    ...(summary ? { records: summary.records } : {}),
    summary,
  };
}

export async function pgDumpCase(settings: PgSettings, want: string): Promise<PgFigure> {
  const db = databases(settings.prefix);
  await recreateDatabase(db.dump);
  const load = loadAverage();
  console.error(`pg: pg_dump -t | psql, load ${load}`);
  try {
    const { ms, peakRssMb } = pgDumpPsql(db.src, db.dump);
    return {
      label: 'pg_dump -t | psql',
      partitions: null,
      path: 'one COPY out, one COPY in (plain-text dump piped to psql)',
      ms,
      peakRssMb: peakRssMb ? `pg_dump ${peakRssMb.pgDump} MB, psql ${peakRssMb.psql} MB` : '?',
      verified: (await tableDigest(pgUrlOf(db.dump))) === want,
      error: null,
      load,
    };
  } catch (err) {
    return {
      label: 'pg_dump -t | psql',
      partitions: null,
      path: '',
      ms: null,
      peakRssMb: '?',
      verified: false,
      error: (err as Error).message.split('\n')[0] ?? 'failed',
      load,
    };
  }
}
