/**
 * bench/scale.ts, part 1: a SQLite → HubSpot (emulator) backfill, partitioned, where the emulator
 * carries at most so many records a second on each TCP connection (`connectionCap`, see
 * test/emulators/server.ts). Each case gets a fresh emulator process (no contacts, no sockets) and a
 * fresh store; `sluice backfill` runs as a user runs it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { HUBSPOT_TOKEN } from '../../test/emulators/hubspot.ts';
import { type BackfillSummary, loadAverage, sluiceBackfill } from '../support/cli.ts';
import { withDeadline } from './deadline.ts';

const SERVE = fileURLToPath(new URL('../../test/emulators/serve.ts', import.meta.url));

export type ApiCase = {
  /** How the case is named in the output. */
  label: string;
  partitions: number;
  /** The sync's batch size: 100 is one HubSpot batch call per batch (HubSpot's maximum per call). */
  batch: number;
};

export type ApiSettings = {
  /** The SQLite file holding `contacts`. */
  source: string;
  rows: number;
  /** Records a second each TCP connection to the emulator carries. */
  cap: number;
  /** The HubSpot connection's `concurrency` (calls in flight over every client of the connection). */
  concurrency: number;
  runMs: number;
  /** A case still running this long after it started is stopped (SIGTERM, then SIGKILL). */
  deadlineMs: number;
};

export type ApiFigure = ApiCase & {
  summary: BackfillSummary | null;
  /** Set when the case failed or was stopped at its deadline. */
  error: string | null;
  /** Contacts the emulator holds afterwards. */
  contacts: number;
  /** What the sync's checkpoint says it read and wrote (over its partitions). */
  read: number | null;
  written: number | null;
  connections: number;
  busiestConnections: number;
  load: string;
};

type Emulator = { url: string; child: ChildProcess; stop: () => Promise<void> };

async function startEmulator(cap: number): Promise<Emulator> {
  const child = spawn(
    process.execPath,
    [SERVE, '--hubspot', '0', '--salesforce', '0', '--connection-cap', String(cap)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the HubSpot emulator exited with ${code}`)));
  });
  return {
    url: (JSON.parse(line) as { hubspot: string }).hubspot,
    child,
    stop: async () => {
      // Closing its stdin ends it; a kill if it has not gone a few seconds later.
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function emulatorFigures(
  url: string,
): Promise<{ count: number; connections: number; busiest: number }> {
  const { count } = (await (await fetch(`${url}/_emulator/count`)).json()) as { count: number };
  const stats = (await (await fetch(`${url}/_emulator/stats`)).json()) as {
    connections: number;
    busiestConnections: number;
  };
  return { count, connections: stats.connections, busiest: stats.busiestConnections };
}

function writeConfig(dir: string, url: string, settings: ApiSettings, c: ApiCase): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'sluice.config.ts');
  writeFileSync(
    path,
    `export default {
  store: ${JSON.stringify(join(dir, 'state.db'))},
  connections: {
    src: { type: 'sqlite', path: ${JSON.stringify(settings.source)} },
    // No client-side rate limits: the emulator's per-connection cap is the only limit.
    crm: {
      type: 'hubspot', baseUrl: ${JSON.stringify(url)}, accessToken: ${JSON.stringify(HUBSPOT_TOKEN)},
      rateLimit: null, searchRateLimit: null, concurrency: ${settings.concurrency},
    },
  },
  syncs: {
    contacts: {
      source: { connection: 'src', table: 'contacts' },
      target: { connection: 'crm', batchSize: 100 },
      key: 'id', cursor: 'updated_at', batch: { size: ${c.batch} }, maxRunDuration: ${settings.runMs},
      backfill: { partitions: ${c.partitions}, parallel: true },
      map: (r) => ({ email: r.email, firstname: r.first_name, lastname: r.last_name, company: r.company, phone: r.phone, city: r.city, country: r.country }),
    },
  },
};
`,
  );
  return path;
}

/** The sync's own checkpoint: once its partitions are done it holds their totals. */
function storeTotals(dir: string): { read: number; written: number } | null {
  // A case stopped before Sluice made its store has none.
  if (!existsSync(join(dir, 'state.db'))) return null;
  const db = new DatabaseSync(join(dir, 'state.db'), { readOnly: true });
  try {
    const row = db
      .prepare(
        "SELECT records_read AS read, records_written AS written FROM checkpoints WHERE sync = 'contacts'",
      )
      .get() as { read: number; written: number } | undefined;
    return row ?? null;
  } finally {
    db.close();
  }
}

export async function apiCase(dir: string, settings: ApiSettings, c: ApiCase): Promise<ApiFigure> {
  const emulator = await startEmulator(settings.cap);
  try {
    const config = writeConfig(dir, emulator.url, settings, c);
    const load = loadAverage();
    console.error(`api: ${c.label}, load ${load}`);
    let summary: BackfillSummary | null = null;
    let error: string | null = null;
    try {
      summary = await withDeadline(settings.deadlineMs, [emulator.child.pid!], () =>
        sluiceBackfill(config, 'contacts'),
      );
    } catch (err) {
      error = (err as Error).message;
    }
    const seen = await emulatorFigures(emulator.url);
    const totals = storeTotals(dir);
    return {
      ...c,
      summary,
      error,
      contacts: seen.count,
      read: totals?.read ?? null,
      written: totals?.written ?? null,
      connections: seen.connections,
      busiestConnections: seen.busiest,
      load,
    };
  } finally {
    await emulator.stop();
  }
}
