import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, SRC_INDEX } from '../support/cli.ts';
import type { Random } from './random.ts';

/*
 * A fleet of `sluice serve` processes on one store file, for the serve chaos test: the config they
 * share, starting and SIGKILLing them, and reading what they left in the store.
 */

export const BUNDLES = ['b1', 'b2', 'b3'] as const;

/** One sync of the fleet: `<bundle>-a` or `<bundle>-b`, SQLite `src-<name>.db` → `dst-<name>.db`. */
export type FleetSync = {
  name: string;
  bundle: string;
  rows: number;
  batch: number;
  budgetMs: number;
  /** With a `map`, records pass through Sluice; without, the SQLite target copies from the source file. */
  map: boolean;
};

export type RuntimeSettings = { leaseMs: number; pollMs: number; graceMs: number };

export const sourcePath = (dir: string, sync: string): string => join(dir, `src-${sync}.db`);
export const targetPath = (dir: string, sync: string): string => join(dir, `dst-${sync}.db`);
export const laneOf = (sync: FleetSync): string => `bundle:${sync.bundle}`;

/**
 * Three bundles of two syncs, each with its own batch size, budget and path, and as many rows as
 * `batches` of its batches hold, so that every backfill needs many runs whatever its batch size.
 */
export function drawFleet(random: Random, batches: { min: number; max: number }): FleetSync[] {
  return BUNDLES.flatMap((bundle) =>
    ['a', 'b'].map((letter) => {
      const batch = random.logInt(20, 150);
      return {
        name: `${bundle}-${letter}`,
        bundle,
        rows: batch * random.int(batches.min, batches.max),
        batch,
        budgetMs: random.int(100, 300),
        map: random.chance(0.5),
      };
    }),
  );
}

export const API_TOKEN = 'chaos';

/** The config every process of the fleet loads; `runtime` carries the lease, poll and grace under test. */
export function writeFleetConfig(dir: string, syncs: FleetSync[], runtime: RuntimeSettings): void {
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
  const bundles = BUNDLES.map(
    (b) =>
      `${b}: { syncs: [${syncs
        .filter((s) => s.bundle === b)
        .map((s) => `'${s.name}'`)
        .join(', ')}] },`,
  );
  const temp = join(dir, 'sluice.config.next.ts');
  writeFileSync(
    temp,
    `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};

export default defineConfig({
  store: '.sluice/state.db',
  runtime: { lease: '${runtime.leaseMs}ms', poll: '${runtime.pollMs}ms', grace: '${runtime.graceMs}ms' },
  server: { apiTokens: ['${API_TOKEN}'] },
  connections: {
    ${connections.join('\n    ')}
  },
  syncs: {
    ${defs.join('\n    ')}
  },
  bundles: {
    ${bundles.join('\n    ')}
  },
});
`,
  );
  renameSync(temp, join(dir, 'sluice.config.ts'));
}

/** As in cli.ts: the compile cache nearly halves the CPU a process spends loading the CLI. */
const env = {
  ...process.env,
  NO_COLOR: '1',
  NODE_COMPILE_CACHE: join(tmpdir(), 'sluice-chaos-compile-cache'),
};

export type ServeProcess = {
  /** Which of the two places in the fleet it fills (0 or 1), and its generation there (0 first). */
  slot: number;
  generation: number;
  child: ChildProcess;
  pid: number;
  /** What its runs and requests are held by in the store: `host:pid`. */
  holder: string;
  url: string;
  spawnedAt: number;
  listeningAt: number;
  /** Set when the test SIGKILLed it. */
  killedAt: number | null;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  alive: () => boolean;
};

/** `sluice serve --port 0` in `dir`, its output appended to `logPath`; resolves once it listens. */
export async function startServe(
  dir: string,
  slot: number,
  generation: number,
  logPath: string,
  timeoutMs: number,
): Promise<ServeProcess> {
  const spawnedAt = Date.now();
  const child = spawn(
    process.execPath,
    [BIN, '--config', join(dir, 'sluice.config.ts'), 'serve', '--port', '0'],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    },
  );
  const out = createWriteStream(logPath, { flags: 'a' });
  let head = '';
  const keep = (chunk: string) => {
    out.write(chunk);
    if (head.length < 10_000) head += chunk;
  };
  child.stderr!.setEncoding('utf8').on('data', keep);
  let alive = true;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    // `close`, not `exit`: by then its output is read to the end, for the error below.
    child.on('close', (code, signal) => {
      alive = false;
      resolve({ code, signal, at: Date.now() });
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`serve (slot ${slot}) did not listen within ${timeoutMs} ms: ${head.slice(-500)}`));
    }, timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      keep(chunk);
      const match = head.match(/"url":"(http:[^"]+)"/);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(
        new Error(`serve (slot ${slot}) exited (${signal ?? code}) before listening: ${head.slice(-500)}`),
      );
    });
  });
  return {
    slot,
    generation,
    child,
    pid: child.pid!,
    holder: `${hostname()}:${child.pid}`,
    url,
    spawnedAt,
    listeningAt: Date.now(),
    killedAt: null,
    exited,
    alive: () => alive,
  };
}

/** What a stopped process held: its running runs and running queue requests. */
export type Held = { runs: { id: number; sync: string; lane: string | null }[]; lanes: string[] };

/**
 * Freezes `proc` (SIGSTOP) inside a run when it can, and leaves it frozen: what the store shows it
 * holding then is what it holds until it is killed or resumed. If it holds nothing it goes on
 * (SIGCONT) and is looked at again shortly; after `patienceMs` it is frozen wherever it is.
 *
 * With `unlocked`, it is only left frozen while no database file of the fleet is write-locked (by it,
 * or by anyone at that instant): a process frozen inside a SQLite write transaction stops every
 * other process sharing that file, so no lane could be taken over from it meanwhile.
 */
export async function stopHolding(
  proc: ServeProcess,
  dir: string,
  patienceMs: number,
  options: { unlocked?: boolean } = {},
): Promise<{ held: Held; at: number; looks: number; lastRunId: number }> {
  const deadline = Date.now() + patienceMs;
  for (let looks = 1; ; looks++) {
    proc.child.kill('SIGSTOP');
    const at = Date.now();
    const held = heldBy(dir, proc.holder);
    const locked = options.unlocked ? writeLocked(dir) : [];
    if (locked.length === 0 && (held.lanes.length > 0 || Date.now() >= deadline))
      return { held, at, looks, lastRunId: maxRunId(dir) };
    proc.child.kill('SIGCONT');
    if (Date.now() > deadline + 15_000)
      throw new Error(`pid ${proc.pid}: no moment without a write lock in 15 s (last: ${locked.join(', ')})`);
    await sleep(20);
  }
}

const SQLITE_BUSY = 5;

/** The fleet's database files (store, sources, targets) whose write lock someone holds right now. */
export function writeLocked(dir: string): string[] {
  const files = [
    join(dir, '.sluice', 'state.db'),
    ...readdirSync(dir)
      .filter((f) => f.endsWith('.db'))
      .map((f) => join(dir, f)),
  ];
  return files.filter((file) => {
    const db = new DatabaseSync(file, { timeout: 0 });
    try {
      db.exec('BEGIN IMMEDIATE');
      db.exec('ROLLBACK');
      return false;
    } catch (err) {
      if ((err as { errcode?: number }).errcode === SQLITE_BUSY) return true;
      throw err;
    } finally {
      db.close();
    }
  });
}

/** SIGKILLs `proc` and waits until it is gone; returns when the signal was sent. */
export async function killNow(proc: ServeProcess): Promise<number> {
  proc.child.kill('SIGKILL');
  const at = Date.now();
  proc.killedAt = at;
  await proc.exited;
  return at;
}

/** Reads the store file as it stands, whatever its processes are doing. */
export function queryStore<T>(dir: string, sql: string, ...params: (string | number)[]): T[] {
  const db = new DatabaseSync(join(dir, '.sluice', 'state.db'), { readOnly: true, timeout: 5_000 });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

/** The runs and queue requests `holder` holds as the store stands (a live process may move on at once). */
export function heldBy(dir: string, holder: string): Held {
  const runs = queryStore<{ id: number; sync: string; lane: string | null }>(
    dir,
    "SELECT id, sync, lane FROM runs WHERE status = 'running' AND holder = ? ORDER BY id",
    holder,
  ).map((r) => ({ id: Number(r.id), sync: r.sync, lane: r.lane }));
  const requests = queryStore<{ lane: string }>(
    dir,
    "SELECT lane FROM run_requests WHERE status = 'running' AND holder = ?",
    holder,
  );
  const lanes = new Set([...runs.flatMap((r) => (r.lane ? [r.lane] : [])), ...requests.map((r) => r.lane)]);
  return { runs, lanes: [...lanes].sort() };
}

const maxRunId = (dir: string): number =>
  Number(queryStore<{ m: number | null }>(dir, 'SELECT max(id) AS m FROM runs')[0]?.m ?? 0);

export type StoredRun = {
  id: number;
  sync: string;
  lane: string | null;
  status: string;
  holder: string;
  startedAt: string;
  endedAt: string | null;
  more: number | null;
  errorCode: string | null;
  errorMessage: string | null;
};

/** The whole run history, in the order runs started. */
export function storedRuns(dir: string): StoredRun[] {
  return queryStore<StoredRun>(
    dir,
    `SELECT id, sync, lane, status, holder, started_at AS startedAt, ended_at AS endedAt, more,
       error_code AS errorCode, error_message AS errorMessage FROM runs ORDER BY id`,
  ).map((r) => ({ ...r, id: Number(r.id), more: r.more === null ? null : Number(r.more) }));
}

export type StoredRequest = {
  id: number;
  sync: string;
  lane: string;
  status: string;
  holder: string | null;
  errorCode: string | null;
  errorMessage: string | null;
};

export function storedRequests(dir: string): StoredRequest[] {
  return queryStore<StoredRequest>(
    dir,
    `SELECT id, sync, lane, status, holder, error_code AS errorCode, error_message AS errorMessage
       FROM run_requests ORDER BY id`,
  ).map((r) => ({ ...r, id: Number(r.id) }));
}

/** A sync as `GET /api/syncs` shows it (the fields the test reads). */
export type SyncView = {
  sync: string;
  phase: string;
  state: string;
  error: string | null;
  lastRun: { id: number; status: string; more: boolean | null; startedAt: string } | null;
};

export async function syncViews(url: string): Promise<SyncView[]> {
  const res = await fetch(`${url}/api/syncs`, {
    headers: { authorization: `Bearer ${API_TOKEN}` },
    signal: AbortSignal.timeout(5_000),
  });
  if (!res.ok) throw new Error(`GET ${url}/api/syncs answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as SyncView[];
}
