import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

/**
 * Sluice as a user gets it: `npm pack`, the tarball installed into a fresh project outside the
 * repository (nothing of the repository copied there but the tarball), a `sluice.config.ts` that
 * imports `defineConfig` from 'sluice', `npx sluice backfill`, and the library API from a `.mjs`
 * script. publint and arethetypeswrong check the tarball itself.
 */

const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const ROWS = 2_000;
// Each step spawns npx or a few processes: generous on a busy 2-core CI machine; the whole file
// stays within about 4 minutes there.
const STEP_TIMEOUT = 120_000;
const run = promisify(execFile);

// The user's shell: the Node this test runs on, and nothing of the repository's node_modules/.bin
// (no sluice, no tsc from here); no npm_* variables of the `npm test` around this one.
const PATH = [
  dirname(process.execPath),
  ...(process.env.PATH ?? '').split(delimiter).filter((p) => p && !resolve(p).startsWith(REPO)),
].join(delimiter);
const userEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(npm_|INIT_CWD$|VITEST|NODE_OPTIONS$)/i.test(k)),
  ),
  PATH,
  NO_COLOR: '1',
};

let work: string;
let project: string;
let tarball: string;

async function sh(cmd: string, args: string[], cwd: string, env = userEnv): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { cwd, env, maxBuffer: 32 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed in ${cwd}:\n${stderr ?? ''}\n${stdout ?? ''}`, {
      cause: err,
    });
  }
}

function countRows(file: string, table: string): number {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function seedSource(file: string): void {
  const db = new DatabaseSync(file);
  db.exec('CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT NOT NULL, updated_at TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO contacts VALUES (?, ?, ?)');
  db.exec('BEGIN');
  for (let i = 1; i <= ROWS; i++)
    insert.run(i, `User${i}@Example.com`, `2024-01-${String((i % 28) + 1).padStart(2, '0')}T00:00:00Z`);
  db.exec('COMMIT');
  db.close();
}

const CONFIG_TS = `import { defineConfig, defineSync } from 'sluice';

type Contact = { id: number; email: string; updated_at: string };

export default defineConfig({
  connections: {
    crm: { type: 'sqlite', path: 'source.db' },
    warehouse: { type: 'sqlite', path: 'target.db' },
  },
  syncs: {
    contacts: defineSync<Contact>({
      source: { connection: 'crm', table: 'contacts' },
      target: { connection: 'warehouse', table: 'contacts' },
      key: 'id',
      cursor: 'updated_at',
      batch: { size: 500 },
      map: (c) => ({ ...c, email: c.email.toLowerCase() }),
    }),
  },
});
`;

// The library API from plain JavaScript: a config value, a backfill with progress, status, the
// runtime and server in this process; then the file config the CLI used, opened by its path.
const LIBRARY_MJS = `import { openWorkspace } from 'sluice';

const ws = await openWorkspace({
  baseDir: process.cwd(),
  config: {
    store: '.sluice/library.db',
    connections: {
      crm: { type: 'sqlite', path: 'source.db' },
      lake: { type: 'sqlite', path: 'library.db' },
    },
    syncs: {
      contacts: { source: { connection: 'crm', table: 'contacts' }, target: { connection: 'lake', table: 'contacts' }, key: 'id', cursor: 'updated_at', batch: { size: 400 } },
    },
  },
});
let progressEvents = 0;
const backfill = await ws.backfill('contacts', { onProgress: () => progressEvents++ });
const [status] = await ws.status();
const deadLetters = await ws.deadLetters('contacts');
const server = await ws.serve({ port: 0 });
const health = await (await fetch(server.url + '/healthz')).json();
const incremental = await ws.run('contacts');
const clean = await ws.close();

const fromFile = await openWorkspace({ configFile: 'sluice.config.ts' });
const [cliStatus] = await fromFile.status();
await fromFile.close();

console.log(JSON.stringify({ backfill, status, deadLetters: deadLetters.length, progressEvents, health, port: server.port, incremental: incremental.run.status, clean, cliStatus }));
`;

describe('the packed package in a project of its own', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'sluice-consumer-'));
    project = join(work, 'project');
    mkdirSync(project);
    // prepack builds dist/ first.
    await sh('npm', ['pack', '--silent', '--pack-destination', work], REPO, {
      ...userEnv,
      PATH: process.env.PATH ?? '',
    });
    const packed = readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (!packed) throw new Error(`npm pack left no tarball in ${work}`);
    tarball = join(work, packed);
    writeFileSync(
      join(project, 'package.json'),
      `${JSON.stringify({ name: 'consumer', private: true, type: 'module' }, null, 2)}\n`,
    );
    await sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], project);
    seedSource(join(project, 'source.db'));
    writeFileSync(join(project, 'sluice.config.ts'), CONFIG_TS);
    writeFileSync(join(project, 'library.mjs'), LIBRARY_MJS);
  }, 240_000);

  // The project and the tarball are kept when a step fails, with their path in the failure.
  let failed = false;
  afterEach((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    failed = true;
    for (const error of ctx.task.result.errors ?? []) error.message = `${error.message}\n(kept in ${work})`;
  });
  afterAll(() => {
    if (work && !failed) rmSync(work, { recursive: true, force: true });
  });

  it('carries dist, the migrations and the bin, and none of the repository tooling or sources', async () => {
    const listing = await sh('tar', ['-tzf', tarball], work);
    const files = listing.split('\n').filter(Boolean);
    expect(files).toContain('package/dist/index.js');
    expect(files).toContain('package/dist/index.d.ts');
    expect(files).toContain('package/dist/index.js.map');
    expect(files).toContain('package/dist/cli.js');
    // The migrations ship at their repository path, where the stores look for them (src/store/migrations.ts).
    expect(files).toContain('package/src/store/sqlite/migrations/0001-initial.sql');
    expect(files).toContain('package/src/store/postgres/migrations/0001-initial.sql');
    expect(files).toContain('package/bin/sluice.js');
    const unwanted = files.filter(
      (f) =>
        /^package\/(\.ci|test|bench|demo)\/|^package\/(biome\.json|tsconfig[^/]*\.json|rolldown\.config\.ts)$/.test(
          f,
        ) ||
        (f.startsWith('package/src/') &&
          !/^package\/src\/store\/\w+\/migrations\/\d{4}-[\w-]+\.sql$/.test(f)),
    );
    expect(unwanted).toEqual([]);
  });

  it(
    'backfills a SQLite → SQLite sync from a .ts config with npx sluice',
    async () => {
      const out = await sh('npx', ['--no', 'sluice', 'backfill', 'contacts', '--json'], project);
      const summary = JSON.parse(out) as { done: boolean; records: number };
      expect(summary).toMatchObject({ done: true, records: ROWS });
      expect(countRows(join(project, 'target.db'), 'contacts')).toBe(ROWS);
      const status = JSON.parse(await sh('npx', ['--no', 'sluice', 'status', '--json'], project)) as {
        sync: string;
        phase: string;
        backfillDone: number;
      }[];
      expect(status).toMatchObject([{ sync: 'contacts', phase: 'incremental', backfillDone: ROWS }]);
    },
    STEP_TIMEOUT,
  );

  it(
    'runs the same through the library API from a .mjs script',
    async () => {
      const result = JSON.parse(await sh(process.execPath, ['library.mjs'], project));
      expect(result).toMatchObject({
        backfill: { sync: 'contacts', done: true, records: ROWS },
        status: { sync: 'contacts', phase: 'incremental', backfillDone: ROWS, deadLetters: 0 },
        deadLetters: 0,
        health: { ok: true },
        incremental: 'succeeded',
        clean: true,
        cliStatus: { sync: 'contacts', phase: 'incremental', backfillDone: ROWS },
      });
      expect(result.progressEvents).toBeGreaterThan(0);
      expect(result.port).toBeGreaterThan(0);
      expect(countRows(join(project, 'library.db'), 'contacts')).toBe(ROWS);
    },
    STEP_TIMEOUT,
  );

  it(
    'passes publint and arethetypeswrong',
    async () => {
      const publint = await sh(join(REPO, 'node_modules/.bin/publint'), ['run', tarball], work, {
        ...userEnv,
        PATH: process.env.PATH ?? '',
      });
      expect(publint).toContain('All good!');
      // An ESM-only package (Node ≥ 22.18 loads it with require() too): the esm-only profile leaves
      // out the CommonJS resolutions (node10, node16 from CJS), whose one complaint is that very fact.
      const attw = await sh(
        join(REPO, 'node_modules/.bin/attw'),
        [tarball, '--profile', 'esm-only', '--format', 'json'],
        work,
        { ...userEnv, PATH: process.env.PATH ?? '' },
      );
      // The JSON lists the left-out resolutions' problems too; attw's exit code (0, or sh throws) and
      // this filter both leave them out.
      const report = JSON.parse(attw) as { problems?: Record<string, { resolutionKind?: string }[]> };
      const ignored = new Set(['node10', 'node16-cjs']);
      const problems = Object.values(report.problems ?? {})
        .flat()
        .filter((p) => !ignored.has(p.resolutionKind ?? ''));
      expect(problems).toEqual([]);
    },
    STEP_TIMEOUT,
  );
});
