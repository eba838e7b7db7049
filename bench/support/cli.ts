/**
 * What the benches share: `sluice backfill` run as a user runs it (the bin, its shebang flags, a
 * config file), the load average beside every figure, medians, and the command line that reproduces
 * a bench.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

/** What `sluice backfill --json` prints, and how the child was started. */
export type BackfillSummary = {
  runs: number;
  batches: number;
  records: number;
  elapsedMs: number;
  peakRssMb: number;
  /** The child's own command line as the kernel saw it: node, its flags, the bin. */
  argv: string[];
};

/** `/proc/loadavg`'s 1-minute figure (the machine is shared: every figure is printed beside it). */
export function loadAverage(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ')[0] ?? '?';
  } catch {
    // Not Linux: the figure is printed without it.
    return '?';
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The command that reproduces this bench: `npx node <script> <its arguments>`. */
export function commandLine(): string {
  const script = process.argv[1] ?? '';
  const rel = script.includes('/bench/') ? `bench/${script.split('/bench/').at(-1)}` : script;
  return ['npx node', rel, ...process.argv.slice(2).map((a) => (/[\s"'$]/.test(a) ? `'${a}'` : a))].join(' ');
}

/**
 * How the child is started: `shebang` as a user's `npx sluice` does (the kernel reads the bin's
 * `#!/usr/bin/env -S node …` line, so the child gets the bin's V8 flags), or `node` as
 * `node path/to/bin/sluice.js`, a test's `spawn(process.execPath, [BIN, …])` or a container's
 * `CMD ["node", …]` do: the shebang is then a comment and V8 runs with its defaults.
 */
export type Launch = 'shebang' | 'node';

/**
 * `sluice backfill <sync> --json` with the config at `configPath`, by default exactly as a user runs
 * the bin (`launch`). The bin's `env node` must find this Node (24), as `npm run` arranges for users.
 * `nodeOptions` (for investigations: `--trace-gc`, a heap limit) go to the child alone through
 * NODE_OPTIONS.
 */
export function sluiceBackfill(
  configPath: string,
  sync: string,
  {
    bin = DEFAULT_BIN,
    nodeOptions = '',
    launch = 'shebang',
  }: { bin?: string; nodeOptions?: string; launch?: Launch } = {},
): Promise<BackfillSummary> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
    };
    if (nodeOptions) env.NODE_OPTIONS = nodeOptions;
    else delete env.NODE_OPTIONS;
    const args = ['--config', configPath, 'backfill', sync, '--json'];
    const child = spawn(
      launch === 'node' ? process.execPath : bin,
      launch === 'node' ? [bin, ...args] : args,
      { stdio: ['ignore', 'pipe', 'inherit'], env },
    );
    let argv: string[] = [];
    // `env -S` execs node in the same process: its command line shows the flags node really got.
    const peek = setInterval(() => {
      try {
        const seen = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
        if (seen.some((a) => a.endsWith('/node') || a === 'node')) {
          argv = seen;
          clearInterval(peek);
        }
      } catch {
        // Not started yet, already gone, or not Linux: the command line stays unknown.
      }
    }, 5);
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', (err) => {
      clearInterval(peek);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearInterval(peek);
      if (code !== 0) return reject(new Error(`sluice backfill exited with ${signal ?? `code ${code}`}`));
      try {
        resolve({ ...(JSON.parse(out) as Omit<BackfillSummary, 'argv'>), argv });
      } catch (err) {
        reject(new Error(`sluice backfill printed no summary: ${out.slice(0, 500)}`, { cause: err }));
      }
    });
  });
}

/** The V8/Node flags in a child's command line (between `node` and the script). */
export function nodeFlags(argv: readonly string[]): string {
  const at = argv.findIndex((a) => a.endsWith('/node') || a === 'node');
  if (at < 0) return 'unknown';
  const flags: string[] = [];
  for (const a of argv.slice(at + 1)) {
    if (!a.startsWith('-')) break;
    flags.push(a);
  }
  return flags.length ? flags.join(' ') : 'none';
}
