import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { HUBSPOT_TOKEN, type HubSpotEmulator, startHubSpotEmulator } from '../emulators/hubspot.ts';
import { type SalesforceEmulator, SF_CLIENT, startSalesforceEmulator } from '../emulators/salesforce.ts';
import { BIN, SRC_INDEX, sluice, writeContactsConfig } from '../support/cli.ts';
import { execSql, seedContacts } from '../support/contacts.ts';
import { connect, freshDatabase } from '../support/pg.ts';
import { tempDir } from '../support/tmp.ts';

/** `sluice check` without blocking this process: the emulators it calls live here. */
function checkAsync(
  dir: string,
  ...args: string[]
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, '--config', join(dir, 'sluice.config.ts'), 'check', ...args],
      { cwd: dir, env: { ...process.env, NO_COLOR: '1' } },
      (err, stdout, stderr) =>
        resolve({ status: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function writeConfig(dir: string, body: string): void {
  writeFileSync(
    join(dir, 'sluice.config.ts'),
    `import { defineConfig } from ${JSON.stringify(SRC_INDEX)};\nexport default defineConfig(${body});\n`,
  );
}

/** Every file under `dir` (but the config) with a hash of its bytes: what check must leave as it found. */
function snapshot(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (name === 'sluice.config.ts' || !statSync(path).isFile()) continue;
    // A reader of a WAL database maps its -shm index and may open an empty -wal: no data in either.
    if (name.endsWith('-shm') || (name.endsWith('-wal') && statSync(path).size === 0)) continue;
    files[name] = createHash('sha256').update(readFileSync(path)).digest('hex');
  }
  return files;
}

describe('sluice check: SQLite', () => {
  it('says what a new sync would do and writes nothing: no store, no target file', () => {
    const dir = tempDir();
    seedContacts(join(dir, 'a.db'), 2_500);
    writeContactsConfig(dir, { batch: 500 });
    const before = snapshot(dir);
    const check = sluice(dir, 'check');
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
    expect(check.stdout).toContain('contacts: sqlite a → sqlite b');
    expect(check.stdout).toContain('next run:    starts the backfill; 2,500 records left');
    expect(check.stdout).toMatch(
      /high-water: {2}\{"key":\[2500\],"k":\["[^"]+",2500\]\} \(as the source stands now\)/,
    );
    expect(check.stdout).toContain('native copy: yes');
    expect(check.stdout).toMatch(/ok +target: .*b\.db does not exist yet: the first write creates it/);
    expect(check.stdout).toContain('no problems found in 1 sync');
    expect(existsSync(join(dir, 'b.db'))).toBe(false);
    expect(existsSync(join(dir, '.sluice'))).toBe(false);
    expect(snapshot(dir)).toEqual(before);
  });

  it('reads the checkpoint of a sync under way and leaves store and target as they were', () => {
    const dir = tempDir();
    seedContacts(join(dir, 'a.db'), 3_000);
    writeContactsConfig(dir, { batch: 1000, extra: 'map: (r) => r,' });
    expect(sluice(dir, 'run', 'contacts').status).toBe(0);
    execSql(join(dir, 'a.db'), 'DELETE FROM contacts WHERE id > 2990');
    const before = snapshot(dir);
    const check = JSON.parse(sluice(dir, 'check', 'contacts', '--json').stdout);
    expect(check).toMatchObject({
      ok: true,
      problems: [],
      syncs: [
        {
          sync: 'contacts',
          next: {
            phase: 'incremental',
            startsBackfill: false,
            nativeCopy: { native: false, why: expect.stringContaining('a map changes the records') },
          },
        },
      ],
    });
    expect(snapshot(dir)).toEqual(before);
  });

  it('lists every problem and exits 1: a missing table, a bad where, a target without a unique key', () => {
    const dir = tempDir();
    seedContacts(join(dir, 'a.db'), 10);
    execSql(join(dir, 'b.db'), 'CREATE TABLE contacts (id INTEGER, email TEXT)');
    writeConfig(
      dir,
      `{
  connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' } },
  syncs: {
    missing: { source: { connection: 'a', table: 'nope' }, target: { connection: 'b', table: 'other' }, key: 'id' },
    filtered: { source: { connection: 'a', table: 'contacts', where: 'no_such_column = 1' }, target: { connection: 'b', table: 'contacts_copy' }, key: 'id' },
    unkeyed: { source: { connection: 'a', table: 'contacts' }, target: { connection: 'b', table: 'contacts' }, key: 'id', cursor: 'updated_at' },
  },
}`,
    );
    const check = sluice(dir, 'check');
    expect(check.status).toBe(1);
    const problems = check.stdout.slice(check.stdout.indexOf('problems:'));
    expect(problems).toContain(
      'missing: source: opening the source: source table "nope" does not exist [SOURCE_TABLE_MISSING]',
    );
    expect(problems).toMatch(
      /filtered: source: table "contacts" in .*a\.db: the read is refused: no such column: no_such_column/,
    );
    expect(problems).toMatch(
      /unkeyed: target: table "contacts" in .*b\.db has no PRIMARY KEY or UNIQUE index on \(id\)/,
    );

    const one = sluice(dir, 'check', 'filtered');
    expect(one.status).toBe(1);
    expect(one.stdout).not.toContain('missing:');
    const unknown = sluice(dir, 'check', 'nope');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toBe(
      'sluice: no sync named "nope"; known syncs: missing, filtered, unkeyed [SYNC_UNKNOWN]\n',
    );
  });
});

describe('sluice check: partitioned backfills', () => {
  it('refuses backfill.partitions on a source that cannot split its keys, and passes it on SQLite', () => {
    const dir = tempDir();
    seedContacts(join(dir, 'a.db'), 100);
    writeFileSync(join(dir, 'rows.jsonl'), '{"id":1}\n');
    writeConfig(
      dir,
      `{
  connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' }, f: { type: 'files' } },
  syncs: {
    split: { source: { connection: 'a', table: 'contacts' }, target: { connection: 'b', table: 'contacts' }, key: 'id', backfill: { partitions: 4 } },
    lines: { source: { connection: 'f', path: 'rows.jsonl' }, target: { connection: 'b', table: 'rows' }, key: 'id', backfill: { partitions: 2 } },
  },
}`,
    );
    const check = sluice(dir, 'check');
    expect(check.status).toBe(1);
    const problems = check.stdout.slice(check.stdout.indexOf('1 problem:'));
    expect(problems).toContain(
      'lines: source: backfill.partitions is 2, but a files source cannot split its keys into ranges; set it to 1',
    );
    expect(problems).not.toContain('split:');
  });
});

describe('sluice check: PostgreSQL', () => {
  it('checks tables, keys and the connection, and estimates the backfill', async () => {
    const db = await freshDatabase('check');
    const storeDb = await freshDatabase('check_store');
    const client = await connect(db.url);
    await client.query(`CREATE TABLE contacts (id bigint PRIMARY KEY, email text, updated_at timestamptz NOT NULL);
      INSERT INTO contacts SELECT g, 'u' || g || '@x.com', '2024-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 1500) g;
      CREATE TABLE loose (id bigint, email text, updated_at timestamptz)`);
    const dir = tempDir();
    const missingDb = new URL(db.url);
    missingDb.pathname = `/${db.name}_absent`;
    writeConfig(
      dir,
      `{
  store: ${JSON.stringify(storeDb.url)},
  connections: {
    pg: { type: 'postgres', url: ${JSON.stringify(db.url)} },
    gone: { type: 'postgres', url: ${JSON.stringify(missingDb.toString())} },
  },
  syncs: {
    copy: { source: { connection: 'pg', table: 'contacts' }, target: { connection: 'pg', table: 'contacts_copy' }, key: 'id', cursor: 'updated_at' },
    strict: { source: { connection: 'pg', table: 'contacts' }, target: { connection: 'pg', table: 'absent', create: false }, key: 'id' },
    loose: { source: { connection: 'pg', table: 'contacts' }, target: { connection: 'pg', table: 'loose' }, key: 'id' },
    away: { source: { connection: 'pg', table: 'contacts' }, target: { connection: 'gone', table: 'contacts' }, key: 'id' },
  },
}`,
    );
    const check = await checkAsync(dir, '--json');
    expect(check.status).toBe(1);
    const out = JSON.parse(check.stdout);
    const sync = (name: string) => out.syncs.find((s: { sync: string }) => s.sync === name);
    expect(sync('copy').next).toMatchObject({
      phase: 'backfill',
      startsBackfill: true,
      estimate: { records: 1500 },
      nativeCopy: { native: true },
    });
    expect(sync('copy').findings).toEqual([
      {
        side: 'source',
        level: 'ok',
        message: expect.stringMatching(/table public\.contacts is readable as/),
      },
      {
        side: 'target',
        level: 'ok',
        message: 'table public.contacts_copy does not exist yet: the first write creates it',
      },
    ]);
    expect(out.problems).toEqual([
      'strict: target: table public.absent does not exist and create is false: create it',
      'loose: target: table public.loose has no PRIMARY KEY or UNIQUE index on (id); writes by key need one',
      expect.stringMatching(/^away: target: table public\.contacts: .*does not exist/),
    ]);
    // Nothing was created: no target table, no store.
    const { rows } = await client.query(
      "SELECT count(*)::int AS n FROM pg_tables WHERE tablename IN ('contacts_copy', 'absent')",
    );
    expect(rows[0].n).toBe(0);
    expect(out.store).toEqual([
      {
        side: 'store',
        level: 'ok',
        message: expect.stringMatching(/holds no store yet: every sync starts with its backfill/),
      },
    ]);
    const store = await connect(storeDb.url);
    const schemas = await store.query("SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = 'sluice'");
    expect(schemas.rows[0].n).toBe(0);
  });
});

describe('sluice check: CRM credentials', () => {
  const emulators: (HubSpotEmulator | SalesforceEmulator)[] = [];
  afterEach(async () => {
    await Promise.all(emulators.splice(0).map((e) => e.server.close()));
  });

  it('tells accepted from refused credentials on HubSpot and Salesforce', async () => {
    const hubspot = await startHubSpotEmulator({ contacts: 30 });
    const salesforce = await startSalesforceEmulator({ contacts: 5 });
    emulators.push(hubspot, salesforce);
    const dir = tempDir();
    const hs = (token: string) =>
      `{ type: 'hubspot', baseUrl: ${JSON.stringify(hubspot.url)}, accessToken: '${token}', maxBackoffMs: 50 }`;
    // The bad one differs by its client id: connections are told apart by id, not secret, in a process.
    const sf = (id: string) =>
      `{ type: 'salesforce', loginUrl: ${JSON.stringify(salesforce.url)}, clientId: '${id}', clientSecret: '${SF_CLIENT.secret}', maxBackoffMs: 50 }`;
    writeConfig(
      dir,
      `{
  connections: { hs: ${hs(HUBSPOT_TOKEN)}, hsBad: ${hs('wrong')}, sf: ${sf(SF_CLIENT.id)}, sfBad: ${sf('wrong')} },
  syncs: {
    good: { source: { connection: 'hs' }, target: { connection: 'sf', externalIdField: 'External_Id__c' }, key: 'id', cursor: 'lastmodifieddate' },
    bad: { source: { connection: 'hsBad' }, target: { connection: 'sfBad', externalIdField: 'External_Id__c' }, key: 'id', cursor: 'lastmodifieddate' },
    field: { source: { connection: 'hs' }, target: { connection: 'sf', externalIdField: 'No_Such__c' }, key: 'id', cursor: 'lastmodifieddate' },
  },
}`,
    );
    const check = await checkAsync(dir, '--json');
    expect(check.status).toBe(1);
    const out = JSON.parse(check.stdout);
    const good = out.syncs.find((s: { sync: string }) => s.sync === 'good');
    expect(good.findings.map((f: { level: string }) => f.level)).toEqual(['ok', 'ok']);
    expect(good.next).toMatchObject({ phase: 'backfill', nativeCopy: { native: false } });
    const problems: string[] = out.problems;
    expect(problems, check.stdout).toContainEqual(
      expect.stringMatching(/^bad: source: .*credentials are refused \(401\)/),
    );
    expect(problems, check.stdout).toContainEqual(
      expect.stringMatching(/^bad: target: Salesforce Contact: /),
    );
    expect(problems, check.stdout).toContainEqual(
      expect.stringMatching(/^field: target: Salesforce Contact: .*No_Such__c/),
    );
    expect(problems.filter((p) => p.startsWith('good:'))).toEqual([]);
  });
});
