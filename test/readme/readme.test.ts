import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/main.ts';
import { configSchema, syncSchema } from '../../src/config/schema.ts';
import { connectorTypes, loadConnector } from '../../src/connectors/registry.ts';
import { BIN } from '../support/cli.ts';
import { seedContacts } from '../support/contacts.ts';
import { installSluiceModule } from '../support/sluice-module.ts';
import { tempDir } from '../support/tmp.ts';

/**
 * README.md, run as written, so the next drift between it and the code fails the suite.
 *
 * The convention (keep it when editing the README):
 * - A fenced block right after a line `<!-- readme-test: NAME -->` is run here; unmarked blocks are
 *   prose (they may need a network, a running server, a secret). Marked blocks must run offline.
 * - `config`: the `sluice.config.ts` example, written as is into a temp folder whose
 *   `node_modules/sluice` is this repository's source (`import … from 'sluice'` as in a project),
 *   beside the data its text names: `crm-a.db` with a `contacts` table (a `deleted` flag among its
 *   columns) and `CRM_B_PATH` set.
 * - `project` and `commands`: shell blocks, one command a line, `#` comments allowed, no pipes,
 *   variables or substitutions (a line with one fails: it would not run as written here). Each line
 *   must exit 0. `npm install sluice` links this repository's package instead of the registry;
 *   `npx sluice …` runs `bin/sluice.js`. `project` runs in an empty folder holding what its text
 *   says is there (`source.db` with `contacts`); `commands` runs in the `config` block's folder.
 * - The CLI table: the flags its first column names for a command are the flags the command has,
 *   both ways (a flag the code has and the README does not name fails too), and every command
 *   `sluice --help` lists has a row.
 * - The Connectors table: its row for each connector names every connection, source and target
 *   option the connector's schema has (the API connectors' shared settings in the paragraph after).
 * - The Config section's defaults: each `` `option` | `default` `` row of the sync options table, and
 *   the top-level `runtime: {…}` and `server: {…}` it states, written into a config, change nothing
 *   the schema would fill in itself.
 */

const SPAWN_TIMEOUT_MS = 60_000;
const BLOCK_TIMEOUT_MS = 180_000;

const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

/** The fenced block after `<!-- readme-test: name -->`. */
function marked(name: string): { lang: string; body: string } {
  const match = new RegExp(`<!-- readme-test: ${name} -->\\n\`\`\`(\\w*)\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(
    README,
  );
  if (!match) throw new Error(`README.md has no block marked <!-- readme-test: ${name} -->`);
  return { lang: match[1]!, body: match[2]! };
}

/** Shell words of one line: spaces split, single and double quotes group; nothing else is shell here. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let quote: '"' | "'" | null = null;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = null;
      else word += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      word ??= '';
    } else if (/\s/.test(ch)) {
      if (word !== null) words.push(word);
      word = null;
    } else if ('$|&;<>`*?(){}'.includes(ch)) {
      throw new Error(`not runnable as written here (shell syntax "${ch}"): ${line}`);
    } else word = (word ?? '') + ch;
  }
  if (quote) throw new Error(`unclosed quote: ${line}`);
  if (word !== null) words.push(word);
  return words;
}

function commandLines(body: string): string[] {
  return body
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith('#'));
}

type Ran = { line: string; status: number | null; stdout: string; stderr: string };

/** Runs one README line in `dir`, as the convention above maps it. */
function runLine(dir: string, line: string, env: NodeJS.ProcessEnv = {}): Ran {
  const words = shellWords(line);
  if (words.join(' ') === 'npm install sluice') {
    installSluiceModule(dir);
    return { line, status: 0, stdout: '', stderr: '' };
  }
  if (words[0] !== 'npx' || words[1] !== 'sluice') throw new Error(`not a sluice command: ${line}`);
  const result = spawnSync(process.execPath, [BIN, ...words.slice(2)], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, ...env, NO_COLOR: '1' },
    timeout: SPAWN_TIMEOUT_MS,
  });
  return { line, status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function runBlock(dir: string, name: string, env: NodeJS.ProcessEnv = {}): Ran[] {
  const block = marked(name);
  expect(block.lang, `the ${name} block is a shell block`).toBe('sh');
  const ran: Ran[] = [];
  for (const line of commandLines(block.body)) {
    const result = runLine(dir, line, env);
    expect(result.status, `\`${line}\` exited ${result.status}:\n${result.stdout}\n${result.stderr}`).toBe(0);
    ran.push(result);
  }
  return ran;
}

describe('README.md, run as written', () => {
  // A command a line, each its own process: bounded by SPAWN_TIMEOUT_MS a line and this per block.
  it('Use it in your project: install, init, check, backfill, status', { timeout: BLOCK_TIMEOUT_MS }, () => {
    const dir = tempDir('readme-project');
    seedContacts(join(dir, 'source.db'), 3_000);
    const ran = runBlock(dir, 'project');
    const out = (start: string) => ran.find((r) => r.line.startsWith(start))!.stdout;
    expect(out('npx sluice init')).toContain('wrote');
    expect(out('npx sluice check')).toContain('no problems found');
    expect(out('npx sluice backfill')).toMatch(/backfill done: 3,000 records/);
    expect(out('npx sluice status')).toMatch(/contacts\s+incremental/);
  });

  it('the config example loads, and the CLI commands run against it', { timeout: BLOCK_TIMEOUT_MS }, () => {
    const dir = tempDir('readme-config');
    const config = marked('config');
    expect(config.lang).toBe('ts');
    installSluiceModule(dir);
    writeFileSync(join(dir, 'sluice.config.ts'), `${config.body}\n`);
    // The data the example reads: contacts with a deleted flag, and some without an email (map skips them).
    seedContacts(join(dir, 'crm-a.db'), 2_000);
    const db = new DatabaseSync(join(dir, 'crm-a.db'));
    db.exec(`ALTER TABLE contacts ADD COLUMN deleted INTEGER NOT NULL DEFAULT 0;
      UPDATE contacts SET deleted = 1 WHERE id % 10 = 0;
      UPDATE contacts SET email = NULL WHERE id % 10 = 1`);
    db.close();

    const ran = runBlock(dir, 'commands', { CRM_B_PATH: 'crm-b.db' });
    const out = (start: string) => ran.find((r) => r.line.startsWith(start))!;
    expect(out('npx sluice check').stdout).toContain('no problems found in 1 sync');
    expect(JSON.parse(out('npx sluice backfill contacts --json').stdout)).toMatchObject({
      sync: 'contacts',
      done: true,
      records: 1_800,
    });
    const target = new DatabaseSync(join(dir, 'crm-b.db'), { readOnly: true });
    const copied = target.prepare('SELECT count(*) AS n FROM contacts').get() as { n: number };
    target.close();
    expect(copied.n).toBe(1_600); // not deleted, and with an email
    expect(out('npx sluice store get crm.owner').stdout).toBe('{\n  "id": 7\n}\n');

    // Without the variable the example reads, the config is refused by path, as the README shows.
    const unset = runLine(dir, 'npx sluice status', { CRM_B_PATH: undefined });
    expect(unset.status).toBe(2);
    expect(unset.stderr).toContain('connections.crmB.path: environment variable CRM_B_PATH is not set');
  });

  it('the CLI table names every command and exactly the flags each has', () => {
    const section = README.slice(
      README.indexOf('\n## CLI\n'),
      README.indexOf('\n## ', README.indexOf('\n## CLI\n') + 1),
    );
    expect(section).toContain('`-c, --config <file>`');
    const rows = [...section.matchAll(/^\| `sluice ([^`]+)` \|/gm)].map((m) => m[1]!.replaceAll('\\|', '|'));
    const documented = new Map<string, Set<string>>();
    for (const row of rows) {
      const words = row.split(' ');
      const path = words.filter((w) => /^[a-z][a-z|-]*$/.test(w));
      const flags = new Set(
        words
          .filter((w) => w.startsWith('--') || w.startsWith('[--'))
          .map((w) => w.replace(/^\[/, '').replace(/\]$/, '')),
      );
      const [first, second] = path;
      for (const sub of (second ?? '').split('|')) {
        const name = second ? `${first} ${sub}` : first!;
        documented.set(name, flags);
      }
    }
    const actual = new Map<string, Set<string>>();
    const walk = (cmd: Command, prefix: string) => {
      for (const sub of cmd.commands) {
        if (sub.name() === 'help') continue;
        const name = `${prefix}${sub.name()}`;
        if (sub.commands.length > 0) walk(sub, `${name} `);
        else actual.set(name, new Set(sub.options.map((o) => o.long!).filter((l) => l !== '--help')));
      }
    };
    walk(buildProgram(), '');
    expect([...documented.keys()].sort()).toEqual([...actual.keys()].sort());
    for (const [name, flags] of actual) {
      const rowFlags = documented.get(name)!;
      // A row shared by several commands (`store get|set|del|list`) names the union of their flags.
      const group = [...actual].filter(([other]) => documented.get(other) === rowFlags);
      const union = new Set(group.flatMap(([, f]) => [...f]));
      expect(
        [...flags].filter((f) => !rowFlags.has(f)),
        `flags of \`sluice ${name}\` the README does not name`,
      ).toEqual([]);
      expect(
        [...rowFlags].filter((f) => !union.has(f)),
        `flags the README names for \`sluice ${name}\` that it lacks`,
      ).toEqual([]);
    }
  });

  it("the defaults the Config section states are the schema's", () => {
    const section = README.slice(README.indexOf('\n### Sync options\n'), README.indexOf('\n### Store\n'));
    const rows = [...section.matchAll(/^\| `([\w.]+)` \| `([^`]+)` \|/gm)];
    expect(rows.map((r) => r[1])).toEqual(
      expect.arrayContaining(['batch.size', 'maxRunDuration', 'retries.attempts']),
    );
    // A default stated is one that, written out, changes nothing.
    const base = () => ({
      source: { connection: 'a', table: 't' },
      target: { connection: 'a', table: 't' },
      key: 'id',
      cursor: { field: 'updated_at' } as Record<string, unknown>,
    });
    for (const [, option, text] of rows) {
      const value = new Function(`return (${text});`)() as unknown;
      const stated: Record<string, unknown> = base();
      const [head, leaf] = option!.split('.');
      if (leaf) stated[head!] = { ...(stated[head!] as object), [leaf]: value };
      else stated[head!] = value;
      expect(syncSchema.parse(stated), `syncs.<name>.${option}: ${text}`).toEqual(syncSchema.parse(base()));
    }
    for (const top of ['runtime', 'server']) {
      const text = new RegExp(`\`${top}: (\\{[^\`]*\\})\``).exec(section)?.[1];
      expect(text, `the README states the ${top} defaults`).toBeDefined();
      const value = new Function(`return (${text});`)() as unknown;
      expect(configSchema.parse({ [top]: value }), `${top}: ${text}`).toEqual(configSchema.parse({}));
    }
  });

  it('the Connectors table names every option each connector takes', async () => {
    const section = README.slice(README.indexOf('\n### Connectors\n'), README.indexOf('\n### Values'));
    const apiSettings = section.slice(section.indexOf('The API settings of'));
    const named = (text: string) => new Set([...text.matchAll(/`([A-Za-z]\w*)/g)].map((m) => m[1]!));
    for (const type of connectorTypes()) {
      const connector = (await loadConnector(type))!;
      const row = new RegExp(`^\\| \`${type}\` \\|(.*)$`, 'm').exec(section)?.[1];
      expect(row, `a row for the ${type} connector`).toBeDefined();
      const [connection, source, target] = row!.split(/ \| /).map(named);
      // The schemas' keys are read, not none (an unreadable schema would make this pass vacuously).
      expect(optionsOf(connector.connection).length, `${type} connection options`).toBeGreaterThan(0);
      expect(optionsOf(connector.source?.options).length, `${type} source options`).toBeGreaterThan(0);
      const api = ['http', 'hubspot', 'salesforce'].includes(type) ? named(apiSettings) : new Set<string>();
      const missing = [
        ...optionsOf(connector.connection)
          .filter((k) => !connection!.has(k) && !api.has(k))
          .map((k) => `connection ${k}`),
        ...optionsOf(connector.source?.options)
          .filter((k) => !source!.has(k))
          .map((k) => `source ${k}`),
        ...optionsOf(connector.target?.options)
          .filter((k) => !target!.has(k))
          .map((k) => `target ${k}`),
      ];
      expect(missing, `${type} options the README does not name`).toEqual([]);
    }
  });
});

/** The keys of a connector's options schema (an object, maybe refined or transformed). */
function optionsOf(schema: unknown): string[] {
  let at = schema as { shape?: object; in?: unknown } | undefined;
  for (let i = 0; at && !at.shape && i < 4; i++) at = at.in as typeof at;
  return at?.shape ? Object.keys(at.shape) : [];
}
