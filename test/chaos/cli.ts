import { spawn, spawnSync } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, SRC_INDEX } from '../support/cli.ts';

export const SYNCS = ['upsert', 'append'] as const;
export type SyncName = (typeof SYNCS)[number];

/** One sync's settings for the next run; the config is written again before every step. */
export type SyncSettings = { batch: number; budgetMs: number; map: boolean };

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
      maxRunDuration: '${s.budgetMs}ms',${s.map ? '\n      map: (r) => r,' : ''}
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

export type RunResult = {
  sync: SyncName;
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The delay after spawn at which a SIGKILL was sent, when one was due. */
  killAfterMs: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
};

/** `sluice run <sync> --json` as a child process, SIGKILLed `killAfterMs` after spawn if it is still going. */
export function runSync(dir: string, sync: SyncName, killAfterMs: number | null): Promise<RunResult> {
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
  const timer = killAfterMs === null ? null : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ sync, code, signal, killAfterMs, stdout, stderr, wallMs: Date.now() - started });
    });
  });
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
