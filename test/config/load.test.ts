import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN } from '../support/cli.ts';
import { tempDir } from '../support/tmp.ts';

// Run through the CLI in a child process: the config is imported by Node itself, as in a user's
// project (type stripping, "type" of the nearest package.json), not by the test runner's transform.
function status(dir: string, ...config: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...config, 'status', '--json'], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const BODY = `{
  connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' } },
  syncs: { contacts: { source: { connection: 'a', table: 'contacts' }, target: { connection: 'b', table: 'contacts' }, key: 'id' } },
}`;
const ESM_TS = `type Config = Record<string, unknown>;\nconst config: Config = ${BODY};\nexport default config;\n`;
const ESM_JS = `export default ${BODY};\n`;

describe('config files', () => {
  it.each([
    ['sluice.config.ts', ESM_TS],
    ['sluice.config.mts', ESM_TS],
    ['sluice.config.js', ESM_JS],
    ['sluice.config.mjs', ESM_JS],
  ])('loads %s, found by the default name too', (name, text) => {
    const dir = tempDir();
    writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
    writeFileSync(join(dir, name), text);
    for (const args of [['--config', name], []]) {
      const result = status(dir, ...args);
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject([{ sync: 'contacts', phase: 'new' }]);
    }
  });

  it('says how to fix a .ts config with import/export in a CommonJS package', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'package.json'), '{ "type": "commonjs" }\n');
    writeFileSync(join(dir, 'sluice.config.ts'), ESM_TS);
    const result = status(dir);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('rename the config to sluice.config.mts');
  });

  it('names every default it looked for, and refuses other extensions', () => {
    const dir = tempDir();
    const none = status(dir);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('sluice.config.ts, sluice.config.mts, sluice.config.js, sluice.config.mjs');
    writeFileSync(join(dir, 'sluice.json'), '{}');
    const json = status(dir, '--config', 'sluice.json');
    expect(json.status).toBe(2);
    expect(json.stderr).toContain('must end in .ts, .mts, .js, .mjs');
  });
});
