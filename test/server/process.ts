import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { SRC_INDEX, sluiceChild } from '../support/cli.ts';

export const HOOK_SECRET = 'hook-secret';
export const HOOK_TOKEN = 'hook-token';
export const API_TOKEN = 'api-token';

/**
 * A SQLite → SQLite contacts sync with a webhook (a secret and a token) and an API token, in `dir`.
 * `sync` adds fields to the sync, `top` to the config.
 */
export function writeServeConfig(dir: string, options: { sync?: string; top?: string } = {}): void {
  writeFileSync(
    join(dir, 'sluice.config.ts'),
    `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};

export default defineConfig({
  connections: {
    a: { type: 'sqlite', path: 'a.db' },
    b: { type: 'sqlite', path: 'b.db' },
  },
  syncs: {
    contacts: {
      source: { connection: 'a', table: 'contacts' },
      target: { connection: 'b', table: 'contacts' },
      key: 'id',
      cursor: 'updated_at',
      webhook: { secrets: [${JSON.stringify(HOOK_SECRET)}], tokens: [${JSON.stringify(HOOK_TOKEN)}] },
      ${options.sync ?? ''}
    },
  },
  server: { apiTokens: [${JSON.stringify(API_TOKEN)}] },
  runtime: { poll: '50ms' },
  ${options.top ?? ''}
});
`,
  );
}

export type Serve = {
  child: ChildProcess;
  pid: number;
  url: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => { stdout: string; stderr: string };
};

/** `sluice serve` as a user starts it (on a free port unless `args` say otherwise), killed when the test ends. */
export async function startServe(dir: string, ...args: string[]): Promise<Serve> {
  const child = sluiceChild(dir, 'serve', ...(args.length > 0 ? args : ['--port', '0']));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let stdout = '';
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = stdout.match(/"url":"(http:[^"]+)"/);
      if (match) resolve(match[1]!);
    });
    void exited.then(() => reject(new Error(`serve exited before listening:\n${stdout}\n${stderr}`)));
  });
  return { child, pid: child.pid!, url, exited, output: () => ({ stdout, stderr }) };
}

/** A process's resident set now and at its peak, in bytes, from /proc/<pid>/status. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => {
    const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/**
 * The resident set of process `pid` before `fn` and the most it reached while `fn` ran, in bytes.
 * The kernel's peak (VmHWM) is reset first (`5` into /proc/<pid>/clear_refs), so a brief spike
 * between two samples is seen too; samples every 10 ms back it up.
 */
export async function rssDuring(
  pid: number,
  fn: () => Promise<void>,
): Promise<{ before: number; peak: number }> {
  const before = memoryOf(pid).rss;
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
  let sampled = before;
  const sampler = setInterval(() => {
    sampled = Math.max(sampled, memoryOf(pid).rss);
  }, 10);
  try {
    await fn();
  } finally {
    clearInterval(sampler);
  }
  const after = memoryOf(pid);
  return { before, peak: Math.max(after.peak, after.rss, sampled) };
}

export type Exchange = {
  status: number | null;
  body: string;
  /** Bytes of the body written when the answer came (or the whole body, if it came after). */
  sentBeforeAnswer: number | null;
  /** Bytes of the body written when the exchange ended: answered, or cut off. */
  sent: number;
  /** The whole body had been written (and ended) before the answer came. */
  bodyEndedFirst: boolean;
  error: string | null;
};

/**
 * POSTs a body of `bytes` zero bytes through node:http, streamed in 64 KiB chunks (chunked, unless
 * `headers` set a Content-Length, which may lie), and stops writing as soon as an answer arrives.
 * With `pause`, writing stops after `pause.after` bytes for up to `pause.ms` (or until an answer).
 * Resolves with the answer, or with the error if the connection was cut with none.
 */
export function streamPost(
  url: string,
  headers: Record<string, string>,
  bytes: number,
  pause?: { after: number; ms: number },
): Promise<Exchange> {
  const chunk = Buffer.alloc(64 * 1024);
  return new Promise<Exchange>((resolve) => {
    let sent = 0;
    let ended = false;
    let answered = false;
    const result: Exchange = {
      status: null,
      body: '',
      sentBeforeAnswer: null,
      sent: 0,
      bodyEndedFirst: false,
      error: null,
    };
    // A keep-alive connection, as browsers and webhook senders use: the server answers a request it
    // will not read and then discards the rest for a while. Asked to close (`agent: false` sends
    // `Connection: close`), Node's server closes at once, and the reset can beat the answer.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const req = request(url, { method: 'POST', headers, agent });
    req.on('close', () => agent.destroy());
    req.on('response', (res) => {
      answered = true;
      result.status = res.statusCode ?? null;
      result.sentBeforeAnswer = sent;
      result.sent = sent;
      result.bodyEndedFirst = ended;
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        result.body += text;
      });
      res.on('end', () => {
        req.destroy();
        resolve(result);
      });
      res.on('error', () => resolve(result));
    });
    req.on('error', (err) => {
      if (answered) return; // the server closed the connection after answering: expected
      result.error = `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`;
      result.sent = sent;
      resolve(result);
    });
    let paused = false;
    // One chunk per turn of the event loop, as a client that also reads its socket would send.
    const pump = () => {
      if (answered || req.destroyed) return;
      if (sent >= bytes) {
        ended = true;
        req.end();
        return;
      }
      if (pause && !paused && sent >= pause.after) {
        paused = true;
        setTimeout(pump, pause.ms);
        return;
      }
      const piece = sent + chunk.length <= bytes ? chunk : chunk.subarray(0, bytes - sent);
      sent += piece.length;
      if (req.write(piece)) setImmediate(pump);
      else req.once('drain', pump);
    };
    pump();
  });
}
