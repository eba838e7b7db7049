import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, renameSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { BIN, SRC_INDEX } from '../support/cli.ts';
import type { StoredRun } from './fleet.ts';
import type { Random } from './random.ts';

/*
 * A fleet of `sluice worker` processes sharing one PostgreSQL store (the pg-boss runtime), for the
 * pg-boss chaos test: the config they share, starting and SIGKILLing them, and reading what they
 * left in the store and in pg-boss's job table.
 */

/** The one bundle every sync of the fleet is in. */
export const BUNDLE = 'crm';
export const LANE = `bundle:${BUNDLE}`;
/** The store's schema and pg-boss's beside it (the defaults). */
const STORE_SCHEMA = 'sluice';
const BOSS_SCHEMA = 'sluice_pgboss';
const QUEUE = 'sluice-runs';

/** One sync of the bundle: SQLite `src-<name>.db` → `dst-<name>.db`. */
export type BundleSync = {
  name: string;
  rows: number;
  batch: number;
  budgetMs: number;
  /** With a `map`, records pass through Sluice; without, the SQLite target copies from the source file. */
  map: boolean;
};

export type WorkerSettings = { leaseMs: number; pollMs: number; graceMs: number };

export const sourcePath = (dir: string, sync: string): string => join(dir, `src-${sync}.db`);
export const targetPath = (dir: string, sync: string): string => join(dir, `dst-${sync}.db`);

/**
 * `count` syncs, each with its own batch size, budget and path, and as many rows as `batches` of
 * its batches hold, so that every backfill needs several runs whatever its batch size.
 */
export function drawBundle(
  random: Random,
  count: number,
  batches: { min: number; max: number },
): BundleSync[] {
  return Array.from({ length: count }, (_, i) => {
    const batch = random.logInt(20, 150);
    return {
      name: `s${i + 1}`,
      rows: batch * random.int(batches.min, batches.max),
      batch,
      budgetMs: random.int(100, 300),
      map: random.chance(0.5),
    };
  });
}

/** The config every worker loads: the store (and so the runtime) in PostgreSQL, one bundle of all syncs. */
export function writeBundleConfig(
  dir: string,
  store: string,
  syncs: BundleSync[],
  runtime: WorkerSettings,
): void {
  const connections = syncs.flatMap((s) => [
    `'src-${s.name}': { type: 'sqlite', path: 'src-${s.name}.db' },`,
    `'dst-${s.name}': { type: 'sqlite', path: 'dst-${s.name}.db' },`,
  ]);
  const defs = syncs.map(
    (s) => `'${s.name}': {
      source: { connection: 'src-${s.name}', table: 'contacts' },
      target: { connection: 'dst-${s.name}', table: 'contacts', mode: 'upsert' },
      key: 'id',
      cursor: { field: 'updated_at', lookback: '10s' },
      batch: { size: ${s.batch} },
      maxRunDuration: '${s.budgetMs}ms',
      rerun: { mode: 'triggered' },
      incremental: { every: '1s' },${s.map ? '\n      map: (r) => r,' : ''}
    },`,
  );
  const temp = join(dir, 'sluice.config.next.ts');
  writeFileSync(
    temp,
    `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};

export default defineConfig({
  store: ${JSON.stringify(store)},
  runtime: { lease: '${runtime.leaseMs}ms', poll: '${runtime.pollMs}ms', grace: '${runtime.graceMs}ms' },
  connections: {
    ${connections.join('\n    ')}
  },
  syncs: {
    ${defs.join('\n    ')}
  },
  bundles: {
    ${BUNDLE}: { syncs: [${syncs.map((s) => `'${s.name}'`).join(', ')}] },
  },
});
`,
  );
  renameSync(temp, join(dir, 'sluice.config.ts'));
}

/** As in fleet.ts: the compile cache nearly halves the CPU a process spends loading the CLI. */
const env = {
  ...process.env,
  NO_COLOR: '1',
  NODE_COMPILE_CACHE: join(tmpdir(), 'sluice-chaos-compile-cache'),
};

export type Exit = { code: number | null; signal: NodeJS.Signals | null; at: number };

export type WorkerProcess = {
  /** Which place in the fleet it fills, and its generation there (0 first). */
  slot: number;
  generation: number;
  child: ChildProcess;
  pid: number;
  /** What its runs are held by in the store: `host:pid`. */
  holder: string;
  spawnedAt: number;
  /** When it logged that its runtime started (pg-boss up, its workers registered). */
  readyAt: number;
  /** Set when the test SIGKILLed it. */
  killedAt: number | null;
  exited: Promise<Exit>;
  alive: () => boolean;
};

/**
 * `sluice worker --concurrency <n>` in `dir`, its output (JSON log lines) appended to `logPath`;
 * resolves once it logs that its runtime started. `spawned` hears of the child at once, so that a
 * test failing meanwhile can still kill it.
 */
export async function startWorker(
  dir: string,
  slot: number,
  generation: number,
  logPath: string,
  options: { concurrency: number; timeoutMs: number; spawned?: (child: ChildProcess) => void },
): Promise<WorkerProcess> {
  const spawnedAt = Date.now();
  const child = spawn(
    process.execPath,
    [
      BIN,
      '--config',
      join(dir, 'sluice.config.ts'),
      'worker',
      '--concurrency',
      String(options.concurrency),
      '--log-format',
      'json',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  options.spawned?.(child);
  const out = createWriteStream(logPath, { flags: 'a' });
  let head = '';
  const keep = (chunk: string) => {
    out.write(chunk);
    if (head.length < 20_000) head += chunk;
  };
  child.stderr!.setEncoding('utf8').on('data', keep);
  let alive = true;
  const exited = new Promise<Exit>((resolve) =>
    // `close`, not `exit`: by then its output is read to the end, for the error below.
    child.on('close', (code, signal) => {
      alive = false;
      out.end();
      resolve({ code, signal, at: Date.now() });
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `worker (slot ${slot}) did not start its runtime within ${options.timeoutMs} ms: ${head.slice(-500)}`,
        ),
      );
    }, options.timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      keep(chunk);
      if (head.includes('"msg":"runtime started"')) {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(
        new Error(`worker (slot ${slot}) exited (${signal ?? code}) before starting: ${head.slice(-500)}`),
      );
    });
  });
  return {
    slot,
    generation,
    child,
    pid: child.pid!,
    holder: `${hostname()}:${child.pid}`,
    spawnedAt,
    readyAt: Date.now(),
    killedAt: null,
    exited,
    alive: () => alive,
  };
}

/** SIGKILLs `proc` and waits until it is gone; returns when the signal was sent. */
export async function killNow(proc: WorkerProcess): Promise<number> {
  proc.child.kill('SIGKILL');
  const at = Date.now();
  proc.killedAt = at;
  await proc.exited;
  return at;
}

/** A run as the PostgreSQL store keeps it, with its last heartbeat. */
export type PgRun = StoredRun & { renewedAt: string | null };

export type Checkpoint = { sync: string; phase: string };

export type JobStates = Record<string, number>;

/** Reads the store's tables and pg-boss's jobs, on a small pool of its own. */
export class StoreReader {
  private readonly pool: pg.Pool;

  constructor(url: string) {
    this.pool = new pg.Pool({ connectionString: url, max: 2 });
    // A connection the server drops between queries is replaced at the next query.
    this.pool.on('error', () => undefined);
  }

  /** The whole run history, in id order; times as ISO strings, `more` as 1 or 0 as in fleet.ts. */
  async runs(): Promise<PgRun[]> {
    const { rows } = await this.pool.query(
      `SELECT id, sync, lane, status, holder, started_at, ended_at, renewed_at, more, error_code, error_message
         FROM ${STORE_SCHEMA}.runs ORDER BY id`,
    );
    return rows.map((r) => ({
      id: Number(r.id),
      sync: r.sync,
      lane: r.lane,
      status: r.status,
      holder: r.holder,
      startedAt: isoOf(r.started_at)!,
      endedAt: isoOf(r.ended_at),
      renewedAt: isoOf(r.renewed_at),
      more: r.more === null ? null : r.more ? 1 : 0,
      errorCode: r.error_code,
      errorMessage: r.error_message,
    }));
  }

  /** Runs `holder` holds as the store stands. */
  async held(holder: string): Promise<{ id: number; sync: string; lane: string | null }[]> {
    const { rows } = await this.pool.query(
      `SELECT id, sync, lane FROM ${STORE_SCHEMA}.runs WHERE status = 'running' AND holder = $1 ORDER BY id`,
      [holder],
    );
    return rows.map((r) => ({ id: Number(r.id), sync: r.sync, lane: r.lane }));
  }

  async maxRunId(): Promise<number> {
    const { rows } = await this.pool.query(`SELECT max(id) AS m FROM ${STORE_SCHEMA}.runs`);
    return Number(rows[0]?.m ?? 0);
  }

  async checkpoints(): Promise<Checkpoint[]> {
    const { rows } = await this.pool.query(
      `SELECT sync, phase FROM ${STORE_SCHEMA}.checkpoints ORDER BY sync`,
    );
    return rows.map((r) => ({ sync: r.sync, phase: r.phase }));
  }

  /** How many of the runtime's jobs are in each state, and how many were retried (taken back from a worker). */
  async jobs(): Promise<{ states: JobStates; retried: number }> {
    const { rows } = await this.pool.query(
      `SELECT state::text AS state, count(*)::int AS n, sum(CASE WHEN retry_count > 0 THEN 1 ELSE 0 END)::int AS retried
         FROM ${BOSS_SCHEMA}.job WHERE name = $1 GROUP BY state ORDER BY state`,
      [QUEUE],
    );
    return {
      states: Object.fromEntries(rows.map((r) => [r.state, r.n])),
      retried: rows.reduce((sum, r) => sum + r.retried, 0),
    };
  }

  /**
   * The runtime's jobs not completed, one line each (request id, sync, state, retries, when due,
   * started and last beat, by the database server's clock), for the test's log.
   */
  async openJobs(): Promise<string[]> {
    const { rows } = await this.pool.query(
      `SELECT data->>'requestId' AS request, data->>'sync' AS sync, state::text AS state, retry_count,
         to_char(start_after, 'HH24:MI:SS.MS') AS start_after, to_char(started_on, 'HH24:MI:SS.MS') AS started_on,
         to_char(heartbeat_on, 'HH24:MI:SS.MS') AS heartbeat_on
         FROM ${BOSS_SCHEMA}.job WHERE name = $1 AND state::text <> 'completed' ORDER BY created_on`,
      [QUEUE],
    );
    return rows.map(
      (r) =>
        `request ${r.request} ${r.sync} ${r.state} (retries ${r.retry_count}, due ${r.start_after}, started ${
          r.started_on ?? '-'
        }, heartbeat ${r.heartbeat_on ?? '-'})`,
    );
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * Logs every change in the runtime's open jobs (see `openJobs`) until `signal` aborts: what pg-boss
 * did with a killed worker's job, and when, as the test's log tells it.
 */
export async function watchJobs(
  reader: StoreReader,
  log: (line: string) => void,
  signal: AbortSignal,
  everyMs = 250,
): Promise<void> {
  let last = new Set<string>();
  while (!signal.aborted) {
    let now: Set<string>;
    try {
      now = new Set(await reader.openJobs());
    } catch (err) {
      // The schema appears once the first worker started pg-boss; until then there is nothing to watch.
      if ((err as { code?: string }).code !== '42P01') log(`jobs: cannot read: ${(err as Error).message}`);
      now = last;
    }
    for (const line of now) if (!last.has(line)) log(`jobs: + ${line}`);
    for (const line of last) if (!now.has(line)) log(`jobs: - ${line}`);
    last = now;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

const isoOf = (value: Date | string | null): string | null =>
  value === null ? null : new Date(value).toISOString();
