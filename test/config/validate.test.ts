import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../src/config/validate.ts';
import { connectorTypes, loadConnectors } from '../../src/connectors/registry.ts';
import { ConfigError } from '../../src/core/errors.ts';

// Every built-in connector, imported up front: validation takes a synchronous lookup.
const findConnector = await loadConnectors(connectorTypes());

const good = () => ({
  connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' } },
  syncs: {
    contacts: {
      source: { connection: 'a', table: 'contacts' },
      target: { connection: 'b', table: 'contacts' },
      key: 'id',
      cursor: 'updated_at',
    },
  },
});

function issuesOf(raw: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    validateConfig(raw, { baseDir: '/tmp', lookup: findConnector, knownTypes: connectorTypes(), env });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.issues];
    throw err;
  }
  return [];
}

describe('config validation', () => {
  it('accepts a good config and fills the documented defaults', () => {
    const valid = validateConfig(good(), {
      baseDir: '/tmp',
      lookup: findConnector,
      knownTypes: connectorTypes(),
    });
    const sync = valid.syncs.get('contacts')!;
    expect(sync).toMatchObject({
      batchSize: 5000,
      maxRunDurationMs: 600_000,
      lookbackMs: 0,
      key: ['id'],
      cursorField: 'updated_at',
    });
    expect(valid.config.store).toBe('.sluice/state.db');
    expect(sync.targetOptions).toEqual({
      table: 'contacts',
      mode: 'upsert',
      synchronous: 'FULL',
      create: true,
    });
  });

  it('names the path and the value of a bad batch size', () => {
    const raw = good();
    Object.assign(raw.syncs.contacts, { batch: { size: -5 } });
    expect(issuesOf(raw)).toEqual(['syncs.contacts.batch.size: expected a positive integer, got -5']);
  });

  it('lists every problem at once, each by its path', () => {
    const raw = {
      store: 42,
      connections: { a: { type: 'sqlite' }, c: { type: 'ftp' } },
      syncs: {
        contacts: {
          source: { connection: 'a', table: 'contacts' },
          target: { connection: 'nowhere', table: 'x' },
          key: 'id',
          maxRunDuration: 'soon',
          batch: { size: 1.5 },
        },
      },
    };
    const issues = issuesOf(raw);
    expect(issues).toContain('store: Invalid input: expected string, received number, got 42');
    expect(issues).toContainEqual(
      expect.stringMatching(/^syncs\.contacts\.maxRunDuration: expected a duration .*, got "soon"$/),
    );
    expect(issues).toContain('syncs.contacts.batch.size: expected a positive integer, got 1.5');
  });

  it('checks connector options with the connector schema, prefixed by their path', () => {
    const raw = {
      connections: { a: { type: 'sqlite' }, c: { type: 'ftp' } },
      syncs: {
        contacts: { source: { connection: 'a' }, target: { connection: 'nowhere', table: 'x' }, key: 'id' },
      },
      bundles: { crm: { syncs: ['contacts', 'ghost'] } },
    };
    const issues = issuesOf(raw);
    expect(issues).toContain('connections.a.path: expected the path of a SQLite database file, got nothing');
    expect(issues).toContainEqual(
      expect.stringMatching(
        /^connections\.c\.type: unknown connector type "ftp"; known types: sqlite, files/,
      ),
    );
    expect(issues).toContain(
      'syncs.contacts.target.connection: no connection named "nowhere"; known connections: a, c',
    );
    expect(issues).toContain('bundles.crm.syncs.1: no sync named "ghost"');
  });

  it('reads secrets from the environment and never prints them', () => {
    const raw = good();
    Object.assign(raw.connections.a, { path: { $env: 'SLUICE_TEST_PATH' } });
    expect(issuesOf(raw)).toEqual(['connections.a.path: environment variable SLUICE_TEST_PATH is not set']);
    const valid = validateConfig(raw, {
      baseDir: '/tmp',
      lookup: findConnector,
      knownTypes: connectorTypes(),
      env: { SLUICE_TEST_PATH: 'x.db' },
    });
    expect(valid.connections.get('a')?.options).toEqual({ path: 'x.db' });
    Object.assign(raw.syncs.contacts.source, { table: { $env: 'SLUICE_SECRET_TABLE' } });
    const issues = issuesOf(raw, { SLUICE_TEST_PATH: 'x.db', SLUICE_SECRET_TABLE: '' });
    expect(issues).toEqual([
      'syncs.contacts.source.table: environment variable SLUICE_SECRET_TABLE is not set',
    ]);
  });

  it('never echoes a secret in a source or target option, nor in a value that holds one', () => {
    const raw = good();
    // A secret where a table name belongs, and one inside an option the connector refuses as a whole.
    Object.assign(raw.syncs.contacts.source, { table: { $env: 'SLUICE_TEST_TABLE' } });
    Object.assign(raw.syncs.contacts.target, { mode: { token: { $env: 'SLUICE_TEST_TOKEN' } } });
    const env = { SLUICE_TEST_TABLE: 'hunter2-table', SLUICE_TEST_TOKEN: 'hunter2-token' };
    const valid = validateConfig(
      {
        ...raw,
        syncs: { contacts: { ...raw.syncs.contacts, target: { connection: 'b', table: 'contacts' } } },
      },
      { baseDir: '/tmp', lookup: findConnector, knownTypes: connectorTypes(), env },
    );
    expect(valid.syncs.get('contacts')?.sourceOptions).toMatchObject({ table: 'hunter2-table' });
    const issues = issuesOf(raw, env);
    expect(issues.join('\n')).not.toMatch(/hunter2/);
    expect(issues).toEqual([
      expect.stringMatching(/^syncs\.contacts\.target\.mode: .*got a secret \(not shown\)$/),
    ]);
  });

  it('refuses a map that is not a function', () => {
    const raw = good();
    Object.assign(raw.syncs.contacts, { map: 'upper' });
    expect(issuesOf(raw)).toEqual([
      'syncs.contacts.map: expected a function (record, ctx) => record, got "upper"',
    ]);
  });

  it('refuses two syncs writing one JSON Lines file, however its path is spelt, and parallel partitions into one', () => {
    const config = {
      connections: {
        a: { type: 'sqlite', path: 'a.db' },
        out: { type: 'files', dir: 'exports' },
        root: { type: 'files' },
      },
      syncs: {
        contacts: {
          source: { connection: 'a', table: 'contacts' },
          target: { connection: 'out', path: 'all.jsonl' },
          key: 'id',
        },
        deals: {
          source: { connection: 'a', table: 'deals' },
          target: { connection: 'root', path: 'exports/./all.jsonl' },
          key: 'id',
        },
        notes: {
          source: { connection: 'a', table: 'notes' },
          target: { connection: 'out', path: 'notes.jsonl' },
          key: 'id',
          backfill: { partitions: 2 },
        },
      },
    };
    expect(issuesOf(config)).toEqual([
      expect.stringMatching(
        /^syncs\.deals\.target: sync "contacts" writes \/tmp\/exports\/all\.jsonl too; a files target has one writer/,
      ),
      expect.stringMatching(
        /^syncs\.notes\.backfill\.parallel: a files target has one writer at a time, so its 2 partitions cannot move at once/,
      ),
    ]);
  });

  it('refuses a sync in two bundles', () => {
    const raw = good();
    Object.assign(raw, { bundles: { one: { syncs: ['contacts'] }, two: { syncs: ['contacts'] } } });
    expect(issuesOf(raw)).toEqual(['bundles.two.syncs.0: sync "contacts" is already in bundle "one"']);
  });
});

describe('unknown fields', () => {
  it('names a misspelt field instead of ignoring it', () => {
    const raw = good();
    Object.assign(raw.syncs.contacts, { maxRunDuraton: '5m' });
    Object.assign(raw.syncs.contacts.target, { tabel: 'x' });
    expect(issuesOf(raw)).toEqual(['syncs.contacts.maxRunDuraton: unknown field']);
    delete (raw.syncs.contacts as Record<string, unknown>).maxRunDuraton;
    expect(issuesOf(raw)).toEqual(['syncs.contacts.target.tabel: unknown field']);
  });
});
