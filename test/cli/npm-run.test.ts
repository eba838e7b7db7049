import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { typedInFolder } from '../../src/cli/main.ts';
import { tempDir } from '../support/tmp.ts';

const REPO = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '');

describe('npm run sluice -- …', () => {
  it('resolves paths in the folder the command was typed in (INIT_CWD), not the repository', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'conf'));
    const result = spawnSync(
      'npm',
      [
        '--prefix',
        REPO,
        'run',
        '--silent',
        'sluice',
        '--',
        '--config',
        'conf/crm.config.ts',
        'init',
        '--yes',
      ],
      {
        cwd: dir,
        encoding: 'utf8',
        env: { ...process.env, INIT_CWD: undefined, npm_lifecycle_event: undefined },
      },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(existsSync(join(dir, 'conf', 'crm.config.ts'))).toBe(true);
    expect(existsSync(join(REPO, 'conf'))).toBe(false);
  });

  it("moves only for npm running this package's own sluice script from its folder", () => {
    const env = {
      INIT_CWD: '/home/me/project',
      npm_lifecycle_event: 'sluice',
      npm_package_json: '/repo/package.json',
    };
    expect(typedInFolder(env, '/repo')).toBe('/home/me/project');
    expect(typedInFolder({ ...env, npm_lifecycle_event: 'test' }, '/repo')).toBeNull();
    expect(typedInFolder(env, '/tmp/elsewhere')).toBeNull();
    expect(typedInFolder({ ...env, INIT_CWD: '/repo' }, '/repo')).toBeNull();
    expect(typedInFolder({}, '/repo')).toBeNull();
  });
});
