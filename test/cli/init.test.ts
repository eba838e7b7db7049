import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { scaffoldConfig, scaffoldEnv, scaffoldTypes } from '../../src/cli/scaffold.ts';
import { Workspace } from '../../src/runtime/workspace.ts';
import { BIN, SRC_INDEX, sluice } from '../support/cli.ts';
import { digest, seedContacts } from '../support/contacts.ts';
import { installSluiceModule } from '../support/sluice-module.ts';
import { tempDir } from '../support/tmp.ts';

/** Values for the variables a scaffolded config reads: any that validate will do, nothing connects. */
const ENV: Record<string, string> = {
  SOURCE_DATABASE_URL: 'postgres://sluice@127.0.0.1:5432/source',
  TARGET_DATABASE_URL: 'postgres://sluice@127.0.0.1:5432/target',
  SOURCE_API_TOKEN: 'token',
  TARGET_API_TOKEN: 'token',
  HUBSPOT_ACCESS_TOKEN: 'token',
  SALESFORCE_CLIENT_ID: 'id',
  SALESFORCE_CLIENT_SECRET: 'secret',
  SALESFORCE_REFRESH_TOKEN: 'refresh',
};

describe('sluice init', () => {
  it('writes a config that loads and validates, for every source and target type', async () => {
    const dir = tempDir();
    Object.assign(process.env, ENV);
    try {
      for (const source of scaffoldTypes)
        for (const target of scaffoldTypes) {
          const file = join(dir, `${source}-${target}.config.ts`);
          writeFileSync(file, scaffoldConfig({ source, target, importFrom: SRC_INDEX }));
          const config = await Workspace.loadConfig(file);
          expect([...config.syncs.keys()], `${source} → ${target}`).toEqual(['contacts']);
          const sync = config.syncs.get('contacts')!;
          expect(config.connections.get(sync.source.connection)?.type).toBe(source);
          expect(config.connections.get(sync.target.connection)?.type).toBe(target);
          for (const name of scaffoldEnv({ source, target })) expect(ENV[name]).toBeDefined();
        }
    } finally {
      for (const name of Object.keys(ENV)) delete process.env[name];
    }
  });

  it('writes the config as a user runs it (flags, no terminal), then check and backfill work on it', () => {
    const dir = tempDir();
    installSluiceModule(dir);
    const init = sluice(dir, 'init', '--source', 'sqlite', '--target', 'sqlite', '--yes');
    expect(init.stderr).toBe('');
    expect(init.status).toBe(0);
    expect(init.stdout).toContain(`wrote ${join(dir, 'sluice.config.ts')} (sqlite → sqlite, sync contacts)`);
    expect(init.stdout).toMatch(/npx sluice check .*\n.*npx sluice backfill contacts/);
    const text = readFileSync(join(dir, 'sluice.config.ts'), 'utf8');
    expect(text).toContain("import { defineConfig } from 'sluice';");
    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toContain('\n.sluice/\n');

    // The scaffold reads source.db's contacts and writes target.db's.
    seedContacts(join(dir, 'source.db'), 1_200);
    const check = sluice(dir, 'check');
    expect(check.stdout).toContain('no problems found in 1 sync');
    expect(check.status).toBe(0);
    const backfill = sluice(dir, 'backfill', 'contacts');
    expect(backfill.status).toBe(0);
    expect(backfill.stdout).toMatch(/contacts: backfill done: 1,200 records/);
    expect(digest(join(dir, 'target.db'))).toEqual(digest(join(dir, 'source.db')));
  });

  it('refuses to overwrite a config without --force, and adds the store to .gitignore once', () => {
    const dir = tempDir();
    writeFileSync(join(dir, '.gitignore'), 'node_modules');
    writeFileSync(join(dir, 'sluice.config.ts'), '// mine\n');
    const refused = sluice(dir, 'init', '--yes');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(
      /sluice\.config\.ts exists; pass --force to overwrite it,.*\[CONFIG_EXISTS\]/,
    );
    expect(readFileSync(join(dir, 'sluice.config.ts'), 'utf8')).toBe('// mine\n');

    for (let i = 0; i < 2; i++) {
      const forced = sluice(dir, 'init', '--yes', '--force', '--source', 'postgres', '--target', 'files');
      expect(forced.status).toBe(0);
      expect(forced.stdout).toContain('set SOURCE_DATABASE_URL in the environment');
    }
    expect(readFileSync(join(dir, 'sluice.config.ts'), 'utf8')).toContain("type: 'postgres'");
    expect(readFileSync(join(dir, '.gitignore'), 'utf8')).toBe(
      "node_modules\n# Sluice's store (checkpoints, runs, dead letters)\n.sluice/\n",
    );
  });

  it('asks for flags when not on a terminal, and names the types it knows', () => {
    const dir = tempDir();
    const bare = sluice(dir, 'init');
    expect(bare.status).toBe(1);
    expect(bare.stderr).toMatch(/not on a terminal: pass --source <type> and --target <type>/);
    const wrong = sluice(dir, 'init', '--source', 'oracle', '--yes');
    expect(wrong.status).toBe(1);
    expect(wrong.stderr).toContain(`expected one of ${scaffoldTypes.join(', ')}, got "oracle"`);
  });

  it('writes to --config and names it in the next commands', () => {
    const dir = tempDir();
    const init = sluice(dir, '--config', 'crm.config.ts', 'init', '--yes', '--source', 'files');
    expect(init.status).toBe(0);
    expect(readFileSync(join(dir, 'crm.config.ts'), 'utf8')).toContain("type: 'files'");
    expect(init.stdout).toContain('npx sluice check --config crm.config.ts');
    expect(init.stdout).toContain('npx sluice backfill contacts --config crm.config.ts');
  });

  it('writes sluice.config.mts in a CommonJS project, and the default name finds it', () => {
    const dir = tempDir();
    installSluiceModule(dir);
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'app', type: 'commonjs' }));
    const init = spawnSync(process.execPath, [BIN, 'init', '--yes'], { cwd: dir, encoding: 'utf8' });
    expect(init.stderr).toBe('');
    expect(init.stdout).toContain(`wrote ${join(dir, 'sluice.config.mts')}`);
    expect(init.stdout).toMatch(/ npx sluice check +connects/);
    seedContacts(join(dir, 'source.db'), 10);
    const check = spawnSync(process.execPath, [BIN, 'check'], { cwd: dir, encoding: 'utf8' });
    expect(check.stdout).toContain('no problems found in 1 sync');
    const again = spawnSync(process.execPath, [BIN, 'init', '--yes'], { cwd: dir, encoding: 'utf8' });
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('sluice.config.mts exists');
  });

  // On a terminal (script(1) gives the process one), init asks with @inquirer/prompts.
  it.skipIf(!hasScript())('asks on a terminal: source, target and the sync name', async () => {
    const dir = tempDir();
    const child = spawn('script', ['-qfec', `${process.execPath} ${BIN} init`, '/dev/null'], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: '1' },
    });
    onTestFinished(() => {
      child.kill('SIGKILL');
    });
    let out = '';
    const waiters: { text: string; resolve: () => void }[] = [];
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      for (const w of waiters.splice(0))
        if (out.includes(w.text)) w.resolve();
        else waiters.push(w);
    });
    const seen = (text: string) =>
      new Promise<void>((resolve) => (out.includes(text) ? resolve() : waiters.push({ text, resolve })));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    await seen('Read records from');
    const before = out.length;
    child.stdin.write('\u001b[B'); // down: postgres
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (out.length === before) return;
        clearInterval(poll);
        resolve();
      }, 20);
    });
    child.stdin.write('\r');
    await seen('Write them to');
    child.stdin.write('\r'); // sqlite, the first
    await seen('Name of the sync');
    child.stdin.write('people\r');
    expect(await exited).toBe(0);
    expect(out).toContain('(postgres → sqlite, sync people)');
    const text = readFileSync(join(dir, 'sluice.config.ts'), 'utf8');
    expect(text).toContain("type: 'postgres'");
    expect(text).toContain('    people: {');
  });
});

function hasScript(): boolean {
  return spawnSync('script', ['--version']).status === 0;
}
