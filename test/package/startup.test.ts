import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN } from '../support/cli.ts';
import { tempDir } from '../support/tmp.ts';

// Every module a command loads, written at exit by a loader hook given to the child alone.
const TRACE = `data:text/javascript,${encodeURIComponent(`
import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const seen = [];
registerHooks({ load(url, context, next) { seen.push(url); return next(url, context); } });
process.on('exit', () => writeFileSync(process.env.SLUICE_TRACE_FILE, seen.join('\\n')));
`)}`;

function loadedBy(dir: string, ...args: string[]): string[] {
  const file = join(dir, 'trace.txt');
  const result = spawnSync(process.execPath, ['--import', TRACE, BIN, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, SLUICE_TRACE_FILE: file },
  });
  if (result.status !== 0) throw new Error(`sluice ${args.join(' ')}: ${result.stderr}`);
  return readFileSync(file, 'utf8').split('\n');
}

const packageOf = (url: string) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1];

describe('what a command loads', () => {
  it('sluice status on a SQLite config loads its connector, not the others, the runtime or the server', () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 'sluice.config.mjs'),
      `export default {
  connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' } },
  syncs: { contacts: { source: { connection: 'a', table: 'contacts' }, target: { connection: 'b', table: 'contacts' }, key: 'id' } },
};\n`,
    );
    const loaded = loadedBy(dir, '--config', 'sluice.config.mjs', 'status');
    const packages = new Set(loaded.map(packageOf).filter(Boolean));
    for (const heavy of [
      'hono',
      '@hono/node-server',
      'prom-client',
      'pino',
      'pino-pretty',
      'cli-progress',
      'cockatiel',
      'pg-boss',
      'pg-copy-streams',
      'csv-parse',
      '@inquirer/prompts',
    ])
      expect(packages, heavy).not.toContain(heavy);
    const sources = loaded.filter((u) => u.includes('/src/'));
    expect(sources.some((u) => u.includes('/src/connectors/sqlite/'))).toBe(true);
    for (const part of [
      '/src/connectors/postgres/',
      '/src/connectors/http/',
      '/src/connectors/hubspot/',
      '/src/connectors/salesforce/',
      '/src/connectors/files/',
      '/src/runtime/local/',
      '/src/runtime/attempts.ts',
      '/src/server/',
      '/src/cli/progress.ts',
    ])
      expect(
        sources.filter((u) => u.includes(part)),
        part,
      ).toEqual([]);
  });

  it('sluice --help loads neither the engine nor zod', () => {
    const loaded = loadedBy(tempDir(), '--help');
    expect(loaded.filter((u) => packageOf(u) === 'zod')).toEqual([]);
    expect(loaded.filter((u) => /\/src\/(engine|runtime|store)\//.test(u))).toEqual([]);
  });
});
