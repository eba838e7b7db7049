/**
 * Start-up of the installed package: `sluice status` on a small store, beside `node -e 0`.
 *
 *   npx node bench/startup.ts [--runs 20] [--rows 1000] [--config ts|mjs] [--json] [--keep]
 *
 * Packs the repository (prepack builds dist/), installs the tarball into a temporary project as a
 * user does (`npm install <tarball>`), writes a SQLite → SQLite `sluice.config.ts` (or `.mjs`) that
 * imports `defineConfig` from 'sluice', and backfills --rows contacts so the store has a checkpoint
 * and runs to report. Then `node_modules/.bin/sluice status` (the bin, its shebang flags and its
 * compile cache, warmed by one uncounted run) and `node -e 0` run --runs times each, alternately, so
 * both see the same load. Wall time is measured around each child; CPU time (user + system) and
 * peak RSS are each child's own (`process.resourceUsage()` at exit, printed by a NODE_OPTIONS
 * preload given to both). On a busy machine the wall time grows with the load; CPU time much less.
 *
 * The goal (issue 14): `sluice status` ≤ 100 ms and ≤ 60 MB, written where Node started in 20 ms.
 * Where Node's own start is slower, the line "above node -e 0" (the median of each status run less
 * the node -e 0 run beside it) is the part Sluice owns. The 1-minute load average is printed beside
 * the figures: on a shared machine the times move with it, the memory does not.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { commandLine, loadAverage, median } from './support/cli.ts';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '20' },
    rows: { type: 'string', default: '1000' },
    config: { type: 'string', default: 'ts' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const RUNS = Number(args.runs);
const ROWS = Number(args.rows);
if (args.config !== 'ts' && args.config !== 'mjs') throw new Error('--config is ts or mjs');

const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));
const GOAL = { ms: 100, mb: 60 };
// Each child prints its own peak RSS as it exits (the same preload for sluice and for node -e 0).
const PRELOAD = `data:text/javascript,${encodeURIComponent(
  "import{writeSync}from'node:fs';process.on('exit',()=>{const u=process.resourceUsage();writeSync(2,'\\nmaxrss_kb='+u.maxRSS+' cpu_us='+(u.userCPUTime+u.systemCPUTime)+'\\n')})",
)}`;

const work = mkdtempSync(join(tmpdir(), 'sluice-startup-'));
const project = join(work, 'project');
mkdirSync(project);
// A user's shell: this Node first, nothing of the repository's node_modules/.bin, no npm_* variables.
const env: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(npm_|INIT_CWD$|NODE_OPTIONS$)/.test(k)),
  ),
  PATH: [
    dirname(process.execPath),
    ...(process.env.PATH ?? '').split(delimiter).filter((p) => p && !resolve(p).startsWith(REPO)),
  ].join(delimiter),
  NODE_COMPILE_CACHE: join(work, 'compile-cache'),
};

try {
  process.stderr.write('packing and installing the package…\n');
  execFileSync('npm', ['pack', '--silent', '--pack-destination', work], { cwd: REPO, stdio: 'ignore' });
  const tarball = join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'bench', private: true, type: 'module' }),
  );
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
    cwd: project,
    env,
    stdio: 'ignore',
  });
  seed(join(project, 'source.db'));
  writeFileSync(join(project, `sluice.config.${args.config}`), config(args.config));
  const sluice = join(project, 'node_modules/.bin/sluice');
  const configFile = `sluice.config.${args.config}`;
  run(sluice, ['--config', configFile, 'backfill', 'contacts', '--json']);

  // One uncounted run of each, the first with the compile cache empty (a user's first command after
  // installing or upgrading), which writes it for the others.
  rmSync(env.NODE_COMPILE_CACHE!, { recursive: true, force: true });
  const cold = run(sluice, ['--config', configFile, 'status']);
  run(process.execPath, ['-e', '0']);
  const status: Sample[] = [];
  const bare: Sample[] = [];
  for (let i = 0; i < RUNS; i++) {
    status.push(run(sluice, ['--config', configFile, 'status']));
    bare.push(run(process.execPath, ['-e', '0']));
  }
  const figures = {
    load: loadAverage(),
    runs: RUNS,
    config: configFile,
    statusMs: summary(status.map((s) => s.ms)),
    statusCpuMs: summary(status.map((s) => s.cpuMs)),
    statusMb: summary(status.map((s) => s.mb)),
    nodeMs: summary(bare.map((s) => s.ms)),
    nodeCpuMs: summary(bare.map((s) => s.cpuMs)),
    nodeMb: summary(bare.map((s) => s.mb)),
    // What Sluice adds to Node's own start, from each status run and the node -e 0 run beside it:
    // Node's own start differs between machines; the part above it is Sluice's.
    aboveNodeMs: summary(status.map((s, i) => s.ms - bare[i]!.ms)),
    aboveNodeCpuMs: summary(status.map((s, i) => s.cpuMs - bare[i]!.cpuMs)),
    aboveNodeMb: summary(status.map((s, i) => s.mb - bare[i]!.mb)),
    firstStatus: cold,
  };
  if (args.json) process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  else {
    const line = (name: string, ms: Stats, cpu: Stats, mb: Stats, goal = '') =>
      `${name.padEnd(34)} ${ms.median.toFixed(0).padStart(5)} ms wall (p90 ${ms.p90.toFixed(0).padStart(4)})  ${cpu.median.toFixed(0).padStart(4)} ms CPU  ${mb.median.toFixed(1).padStart(6)} MB peak RSS${goal}`;
    process.stdout.write(
      [
        `${commandLine()}   (load ${figures.load}, ${RUNS} runs each, median)`,
        line(
          `sluice status (${configFile})`,
          figures.statusMs,
          figures.statusCpuMs,
          figures.statusMb,
          `   goal ≤ ${GOAL.ms} ms, ≤ ${GOAL.mb} MB`,
        ),
        line('node -e 0', figures.nodeMs, figures.nodeCpuMs, figures.nodeMb),
        line(
          'sluice status above node -e 0',
          figures.aboveNodeMs,
          figures.aboveNodeCpuMs,
          figures.aboveNodeMb,
        ),
        `${'sluice status, first run'.padEnd(34)} ${cold.ms.toFixed(0).padStart(5)} ms wall             ${cold.cpuMs.toFixed(0).padStart(4)} ms CPU  ${cold.mb.toFixed(1).padStart(6)} MB peak RSS   (compile cache cold)`,
        '',
      ].join('\n'),
    );
  }
} finally {
  if (args.keep) process.stderr.write(`kept ${work}\n`);
  else rmSync(work, { recursive: true, force: true });
}

type Sample = { ms: number; cpuMs: number; mb: number };
type Stats = { median: number; p90: number; min: number };

/** One child, timed from spawn to exit; its peak RSS from the preload's line on stderr. */
function run(cmd: string, argv: string[]): Sample {
  const started = performance.now();
  const child = spawnSync(cmd, argv, {
    cwd: project,
    env: { ...env, NODE_OPTIONS: `--import=${PRELOAD}` },
    encoding: 'utf8',
  });
  const ms = performance.now() - started;
  if (child.status !== 0)
    throw new Error(`${cmd} ${argv.join(' ')} exited with ${child.status}: ${child.stderr}${child.stdout}`);
  const [, kb, cpu] = /maxrss_kb=(\d+) cpu_us=(\d+)/.exec(child.stderr) ?? [];
  if (!kb || !cpu) throw new Error(`${cmd} printed no peak RSS: ${child.stderr}`);
  return { ms, cpuMs: Number(cpu) / 1000, mb: Number(kb) / 1024 };
}

function summary(values: number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: median(sorted),
    p90: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.9))]!,
    min: sorted[0]!,
  };
}

function seed(file: string): void {
  const db = new DatabaseSync(file);
  db.exec('CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT NOT NULL, updated_at TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO contacts VALUES (?, ?, ?)');
  db.exec('BEGIN');
  for (let i = 1; i <= ROWS; i++)
    insert.run(i, `user${i}@example.com`, `2024-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`);
  db.exec('COMMIT');
  db.close();
}

function config(kind: 'ts' | 'mjs'): string {
  const typed = kind === 'ts';
  return `import { defineConfig${typed ? ', defineSync' : ''} } from 'sluice';
${typed ? '\ntype Contact = { id: number; email: string; updated_at: string };\n' : ''}
export default defineConfig({
  connections: {
    crm: { type: 'sqlite', path: 'source.db' },
    warehouse: { type: 'sqlite', path: 'target.db' },
  },
  syncs: {
    contacts: ${typed ? 'defineSync<Contact>(' : ''}{
      source: { connection: 'crm', table: 'contacts' },
      target: { connection: 'warehouse', table: 'contacts' },
      key: 'id',
      cursor: 'updated_at',
    }${typed ? ')' : ''},
  },
});
`;
}
