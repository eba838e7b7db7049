import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sluice, writeContactsConfig } from '../support/cli.ts';
import { digest, execSql, seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';

describe('sluice CLI', () => {
  it('backfills, runs incrementally, and reports status and runs as JSON', () => {
    const dir = tempDir();
    seedContacts(join(dir, 'a.db'), 5_000);
    writeContactsConfig(dir, { batch: 500, maxRunDuration: '1ms' });

    const backfill = sluice(dir, 'backfill', 'contacts');
    expect(backfill.stderr).toMatch(/contacts: .*records/);
    expect(backfill.stdout).toMatch(/contacts: backfill done: 5,000 records in 10 runs, 10 batches/);
    expect(backfill.status).toBe(0);
    expect(digest(join(dir, 'b.db'))).toEqual(digest(join(dir, 'a.db')));

    const again = sluice(dir, 'backfill', 'contacts');
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/already done/);

    execSql(
      join(dir, 'a.db'),
      "UPDATE contacts SET company = 'New', updated_at = '2030-01-01T00:00:00Z' WHERE id <= 10",
    );
    writeContactsConfig(dir, { batch: 500 });
    const run = sluice(dir, 'run', 'contacts', '--json');
    expect(run.status).toBe(0);
    const outcome = JSON.parse(run.stdout);
    expect(outcome.run).toMatchObject({
      status: 'succeeded',
      trigger: 'run',
      phase: 'incremental',
      more: false,
    });
    expect(digest(join(dir, 'b.db'))).toEqual(digest(join(dir, 'a.db')));

    const status = JSON.parse(sluice(dir, 'status', '--json').stdout);
    expect(status).toEqual([
      expect.objectContaining({ sync: 'contacts', phase: 'incremental', progress: 1, backfillDone: 5000 }),
    ]);
    expect(sluice(dir, 'status').stdout).toMatch(
      /^SYNC\s+PHASE\s+STATE.*\ncontacts\s+incremental\s+idle\s+100\.0%/,
    );

    const runs = JSON.parse(sluice(dir, 'runs', 'contacts', '--json').stdout);
    expect(runs).toHaveLength(11);
    expect(runs[0].trigger).toBe('run');
    expect(
      runs
        .slice(1)
        .every(
          (r: { trigger: string; status: string }) => r.trigger === 'backfill' && r.status === 'succeeded',
        ),
    ).toBe(true);
  });

  it('sets, gets, lists and deletes data store keys', () => {
    const dir = tempDir();
    writeContactsConfig(dir);
    expect(sluice(dir, 'store', 'set', 'crm.owner', '{"id": 7}').status).toBe(0);
    expect(sluice(dir, 'store', 'set', 'crm.region', 'eu-west').status).toBe(0);
    expect(sluice(dir, 'store', 'set', 'other', '1').status).toBe(0);
    expect(JSON.parse(sluice(dir, 'store', 'get', 'crm.owner').stdout)).toEqual({ id: 7 });
    const listed = JSON.parse(sluice(dir, 'store', 'list', 'crm.', '--json').stdout);
    expect(listed.map((e: { key: string; value: unknown }) => [e.key, e.value])).toEqual([
      ['crm.owner', { id: 7 }],
      ['crm.region', 'eu-west'],
    ]);
    expect(sluice(dir, 'store', 'del', 'crm.owner').status).toBe(0);
    const missing = sluice(dir, 'store', 'get', 'crm.owner');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('sluice: no key "crm.owner" in the data store\n');
  });

  it('lists dead letters and resets a sync only when confirmed', () => {
    const dir = tempDir();
    seedContacts(join(dir, 'a.db'), 100);
    execSql(join(dir, 'a.db'), 'UPDATE contacts SET email = NULL WHERE id = 42');
    execSql(
      join(dir, 'b.db'),
      'CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT NOT NULL, company TEXT, score REAL, updated_at TEXT)',
    );
    writeContactsConfig(dir);
    expect(sluice(dir, 'run', 'contacts').status).toBe(0);
    const letters = JSON.parse(sluice(dir, 'dead-letters', 'list', '--json').stdout);
    expect(letters).toEqual([
      expect.objectContaining({
        sync: 'contacts',
        key: [42],
        reason: expect.stringMatching(/NOT NULL constraint failed: contacts.email/),
      }),
    ]);
    expect(sluice(dir, 'dead-letters', 'list').stdout).toMatch(/NOT NULL constraint failed/);

    const refused = sluice(dir, 'reset', 'contacts');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/pass --yes/);
    expect(sluice(dir, 'reset', 'contacts', '--yes').status).toBe(0);
    expect(JSON.parse(sluice(dir, 'status', '--json').stdout)[0].phase).toBe('new');
    expect(JSON.parse(sluice(dir, 'dead-letters', 'list', '--json').stdout)).toEqual([]);
  });

  it('exits non-zero with one line for an unknown sync, and lists config problems by path', () => {
    const dir = tempDir();
    writeContactsConfig(dir, { extra: 'batch: { size: -5 }, lookback: 3,' });
    const bad = sluice(dir, 'status');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('syncs.contacts.batch.size: expected a positive integer, got -5');
    expect(bad.stderr).toContain('syncs.contacts.lookback: unknown field');

    writeContactsConfig(dir);
    const unknown = sluice(dir, 'run', 'nope');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toBe('sluice: no sync named "nope"; known syncs: contacts [SYNC_UNKNOWN]\n');

    writeFileSync(join(dir, 'broken.ts'), 'export default {');
    const broken = sluice(dir, '--config', join(dir, 'broken.ts'), 'status');
    expect(broken.status).toBe(2);
    expect(broken.stderr).toMatch(/could not load .*broken\.ts/);
  });

  it('documents every command in --help', () => {
    const dir = tempDir();
    const help = sluice(dir, '--help').stdout;
    for (const cmd of ['run', 'backfill', 'status', 'runs', 'store', 'reset', 'dead-letters'])
      expect(help).toContain(cmd);
    expect(sluice(dir, 'backfill', '--help').stdout).toMatch(/Usage: sluice backfill \[options\] <sync>/);
  });
});
