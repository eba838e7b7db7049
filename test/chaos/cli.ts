import { spawn, spawnSync } from 'node:child_process';
import { renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { BIN, SRC_INDEX } from '../support/cli.ts';

export const SYNCS = ['upsert', 'append'] as const;
export type SyncName = (typeof SYNCS)[number];

/** One sync's settings for the next run; the config is written again before every step. */
/** `parallel`: the partitions move at once (a JSON Lines target has one writer: one after another). */
export type SyncSettings = {
  batch: number;
  budgetMs: number;
  map: boolean;
  partitions: number;
  parallel: boolean;
};

export const LOOKBACK = '60s';
export const LOOKBACK_MS = 60_000;

/**
 * `upsert`: the SQLite source into a SQLite table, upsert by id (with no `map` the target copies
 * batches from the source file itself; with one, records pass through Sluice). `append`: the same
 * source appended to a JSON Lines file, always through a `map`.
 */
export function writeChaosConfig(dir: string, settings: Record<SyncName, SyncSettings>): void {
  // Written aside and renamed over: a run starting meanwhile reads the old file or the new, never half.
  const temp = join(dir, 'sluice.config.next.ts');
  const sync = (name: SyncName, target: string) => {
    const s = settings[name];
    return `${name}: {
      source: { connection: 'src', table: 'contacts' },
      target: ${target},
      key: 'id',
      cursor: { field: 'updated_at', lookback: '${LOOKBACK}' },
      batch: { size: ${s.batch} },
      maxRunDuration: '${s.budgetMs}ms',${s.map ? '\n      map: (r) => r,' : ''}${s.partitions > 1 ? `\n      backfill: { partitions: ${s.partitions}, parallel: ${s.parallel} },` : ''}
    },`;
  };
  writeFileSync(
    temp,
    `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};

export default defineConfig({
  connections: {
    src: { type: 'sqlite', path: 'source.db' },
    dst: { type: 'sqlite', path: 'target.db' },
    out: { type: 'files', dir: '.' },
  },
  syncs: {
    ${sync('upsert', "{ connection: 'dst', table: 'contacts', mode: 'upsert', synchronous: 'NORMAL' }")}
    ${sync('append', "{ connection: 'out', path: 'contacts.jsonl' }")}
  },
});
`,
  );
  renameSync(temp, join(dir, 'sluice.config.ts'));
}

/**
 * Node's compile cache for the CLI's modules, shared by every run of every seed: a run spends most of
 * its CPU loading the CLI, and the cache nearly halves that (it is keyed by each file's content).
 */
const env = {
  ...process.env,
  NO_COLOR: '1',
  NODE_COMPILE_CACHE: join(tmpdir(), 'sluice-chaos-compile-cache'),
};

/**
 * How a run is killed, if it is. `spawn`: SIGKILL a set delay after spawn, wherever the run is then
 * (loading, mid-batch, ending, or already gone). `stall`: SIGKILL it in the window between a batch
 * the target confirmed and that batch's checkpoint, which a random instant seldom hits (the store's
 * commit takes well under a millisecond): once the target's file grows, the test takes the store's
 * write lock, so the run's next checkpoint waits on it; `waitMs` later the run is killed while it
 * waits, and the lock released. The next run must replay that batch.
 */
export type Kill = { after: 'spawn'; ms: number } | { after: 'stall'; waitMs: number };

export type RunResult = {
  sync: SyncName;
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  kill: Kill | null;
  /** For a `stall` kill: whether the target changed, so the run was killed waiting on the store. */
  stalled: boolean;
  stdout: string;
  stderr: string;
  wallMs: number;
};

/** `sluice run <sync> --json` as a child process, killed as `kill` says. */
export async function runSync(dir: string, sync: SyncName, kill: Kill | null): Promise<RunResult> {
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [BIN, '--config', join(dir, 'sluice.config.ts'), 'run', sync, '--json'],
    {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  let ended = false;
  void exited.then(() => {
    ended = true;
  });
  let stalled = false;
  if (kill?.after === 'spawn') {
    const timer = setTimeout(() => child.kill('SIGKILL'), kill.ms);
    void exited.then(() => clearTimeout(timer));
  } else if (kill?.after === 'stall') {
    stalled = await stallAndKill(
      dir,
      sync,
      kill.waitMs,
      () => ended,
      () => child.kill('SIGKILL'),
      exited,
    );
  }
  const { code, signal } = await exited;
  return { sync, code, signal, kill, stalled, stdout, stderr, wallMs: Date.now() - started };
}

/** The size and time of the file a sync's target appends to (none while it is empty or absent). */
function targetSignature(dir: string, sync: SyncName): string {
  try {
    const file = statSync(join(dir, sync === 'append' ? 'contacts.jsonl' : 'target.db-wal'));
    return file.size > 0 ? `${file.size}:${file.mtimeMs}` : 'none';
  } catch {
    return 'none';
  }
}

/**
 * Waits for the run to write to its target, then holds the store's write lock for `waitMs` (the
 * batch in hand is confirmed by the target meanwhile and its checkpoint waits on the lock), kills
 * the run, and releases the lock. False when the run ended without writing.
 */
async function stallAndKill(
  dir: string,
  sync: SyncName,
  waitMs: number,
  ended: () => boolean,
  killNow: () => void,
  exited: Promise<unknown>,
): Promise<boolean> {
  const before = targetSignature(dir, sync);
  while (!ended() && targetSignature(dir, sync) === before) await sleep(1);
  if (ended()) return false;
  const lock = new DatabaseSync(join(dir, '.sluice', 'state.db'), { timeout: 10_000 });
  try {
    lock.exec('BEGIN IMMEDIATE');
    await sleep(waitMs);
    killNow();
    await exited;
    lock.exec('ROLLBACK');
  } finally {
    lock.close();
  }
  return true;
}

/** Whether a finished run says it caught up: `more: false` in its JSON output. Null when it printed none. */
export function caughtUp(result: RunResult): boolean | null {
  try {
    const out = JSON.parse(result.stdout) as { more?: unknown; run?: { more?: unknown } };
    const more = out.run?.more ?? out.more;
    return typeof more === 'boolean' ? !more : null;
  } catch {
    return null;
  }
}

export type RunRow = {
  id: number;
  sync: string;
  status: string;
  more: boolean | null;
  errorCode: string | null;
  errorMessage: string | null;
};

/** `sluice runs --json`: every run of the workspace, newest first. */
export function listRuns(dir: string): RunRow[] {
  const result = spawnSync(
    process.execPath,
    [BIN, '--config', join(dir, 'sluice.config.ts'), 'runs', '--json', '--limit', '100000'],
    { cwd: dir, encoding: 'utf8', env },
  );
  if (result.status !== 0) throw new Error(`sluice runs --json exited ${result.status}: ${result.stderr}`);
  return JSON.parse(result.stdout) as RunRow[];
}
