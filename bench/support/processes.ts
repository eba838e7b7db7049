/**
 * `sluice serve` and `sluice worker` as real processes for the runtime bench: started as a user
 * starts the bin (its shebang flags), told apart by the holder they write in the store (`host:pid`),
 * and every one of them killed when the bench ends, however it ends.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { DEFAULT_BIN } from './cli.ts';

export type SluiceProcess = {
  command: 'serve' | 'worker';
  child: ChildProcess;
  pid: number;
  /** What its runs and queue requests are held by in the store. */
  holder: string;
  /** `serve`'s address; null for a worker. */
  url: string | null;
  exited: Promise<void>;
  alive: () => boolean;
};

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let processEnv: NodeJS.ProcessEnv | null = null;

/** SIGKILLs every process this module started that is still alive (frozen ones too), and removes the temp folders. */
export function cleanUp(): void {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
  processEnv = null;
}

let hooked = false;
/** A folder removed by `cleanUp`; the first call also makes an interrupted bench clean up. */
export function benchDir(dir: string): string {
  dirs.add(dir);
  if (!hooked) {
    hooked = true;
    process.once('exit', cleanUp);
    for (const signal of ['SIGINT', 'SIGTERM'] as const)
      process.once(signal, () => {
        cleanUp();
        process.exit(130);
      });
  }
  return dir;
}

/** The children's environment, made once: their compile cache lives in a bench folder, removed at the end. */
function childEnv(): NodeJS.ProcessEnv {
  processEnv ??= {
    ...process.env,
    NO_COLOR: '1',
    // The bin's `#!/usr/bin/env -S node …` must find this Node (24).
    PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
    // As the chaos test does: the cache nearly halves the CPU a process spends loading the CLI.
    NODE_COMPILE_CACHE: benchDir(mkdtempSync(join(tmpdir(), 'bench-compile-cache-'))),
  };
  return processEnv;
}

/**
 * `sluice serve --port 0` or `sluice worker` with `dir`'s config, its output appended to `logPath`;
 * resolves once its runtime has started (and, for serve, it listens).
 */
export async function startSluice(
  dir: string,
  command: 'serve' | 'worker',
  logPath: string,
  timeoutMs = 30_000,
): Promise<SluiceProcess> {
  const args = [
    '--config',
    join(dir, 'sluice.config.ts'),
    command,
    ...(command === 'serve' ? ['--port', '0'] : []),
  ];
  const child = spawn(DEFAULT_BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
  children.add(child);
  let alive = true;
  const exited = new Promise<void>((resolve) =>
    child.on('close', () => {
      alive = false;
      children.delete(child);
      resolve();
    }),
  );
  const log = createWriteStream(logPath, { flags: 'a' });
  void exited.then(() => log.end());
  let head = '';
  const ready = new Promise<string | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sluice ${command} did not start within ${timeoutMs} ms: ${head.slice(0, 800)}`));
    }, timeoutMs);
    const keep = (chunk: string) => {
      log.write(chunk);
      if (head.length > 20_000) return;
      head += chunk;
      if (!head.includes('runtime started')) return;
      // The address in its log line, JSON (`"url":"http://…"`) or pretty (`listening on http://…`).
      const url = head.match(/(http:\/\/(?:\[[^\]\s]+\]|[\w.-]+):\d+)/)?.[1] ?? null;
      if (command === 'serve' && !url) return;
      clearTimeout(timer);
      resolve(url);
    };
    child.stdout!.setEncoding('utf8').on('data', keep);
    child.stderr!.setEncoding('utf8').on('data', keep);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`sluice ${command} exited before it started: ${head.slice(0, 800)}`));
    });
  });
  const url = await ready;
  return {
    command,
    child,
    pid: child.pid!,
    holder: `${hostname()}:${child.pid}`,
    url,
    exited,
    alive: () => alive,
  };
}

/** SIGTERM, and SIGKILL if it has not exited within `graceMs` (plus a little). */
export async function stopSluice(proc: SluiceProcess, graceMs: number): Promise<void> {
  if (!proc.alive()) return;
  proc.child.kill('SIGCONT');
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs + 3_000);
  await proc.exited;
  clearTimeout(timer);
}

/** Reads `dir`'s store as it stands, whatever its processes are doing. */
export function queryStore<T>(dir: string, sql: string, ...params: (string | number)[]): T[] {
  const db = new DatabaseSync(join(dir, '.sluice', 'state.db'), { readOnly: true, timeout: 5_000 });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}

const SQLITE_BUSY = 5;

/**
 * Whether someone holds the write lock of a database file in `dir` (the store, sources, targets)
 * right now. A process frozen inside a write transaction would stop every other process sharing
 * that file, so a takeover measured then would measure the lock, not the lease.
 */
export function anyWriteLocked(dir: string): boolean {
  const files = [
    join(dir, '.sluice', 'state.db'),
    ...readdirSync(dir)
      .filter((f) => f.endsWith('.db'))
      .map((f) => join(dir, f)),
  ];
  return files.some((file) => {
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
