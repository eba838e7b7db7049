import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));
export const SRC_INDEX = fileURLToPath(new URL('../../src/index.ts', import.meta.url));

export type CliResult = { status: number | null; stdout: string; stderr: string };

/** Runs `sluice` as a user would, with the config in `dir`. */
export function sluice(dir: string, ...args: string[]): CliResult {
  const result = spawnSync(process.execPath, [BIN, '--config', join(dir, 'sluice.config.ts'), ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function sluiceChild(dir: string, ...args: string[]): ChildProcess {
  return spawn(process.execPath, [BIN, '--config', join(dir, 'sluice.config.ts'), ...args], {
    cwd: dir,
    stdio: 'pipe',
  });
}

/** A SQLite → SQLite contacts config in `dir`, typed through `defineConfig`. */
export function writeContactsConfig(
  dir: string,
  sync: { batch?: number; maxRunDuration?: string; extra?: string } = {},
): void {
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
      batch: { size: ${sync.batch ?? 1000} },
      maxRunDuration: '${sync.maxRunDuration ?? '10m'}',
      ${sync.extra ?? ''}
    },
  },
});
`,
  );
}
