import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sluice, writeContactsConfig } from '../support/cli.ts';
import { execSql, seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';

describe('sluice dead-letters list', () => {
  it('says on stderr when --limit cut the list short, and a retry failing again counts an attempt on the same letter', () => {
    const dir = tempDir();
    seedContacts(join(dir, 'a.db'), 20);
    execSql(join(dir, 'a.db'), 'UPDATE contacts SET email = NULL WHERE id <= 5');
    execSql(
      join(dir, 'b.db'),
      'CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT NOT NULL, company TEXT, score REAL, updated_at TEXT)',
    );
    writeContactsConfig(dir, { extra: 'map: (r) => r,' });
    expect(sluice(dir, 'run', 'contacts').status).toBe(0);

    const cut = sluice(dir, 'dead-letters', 'list', '--limit', '2', '--json');
    expect(cut.status).toBe(0);
    expect(JSON.parse(cut.stdout)).toHaveLength(2);
    expect(cut.stderr).toBe(
      'sluice: showing the first 2 dead letters, oldest first; there are more (--limit <n> shows more)\n',
    );
    const whole = sluice(dir, 'dead-letters', 'list', '--limit', '5');
    expect(whole.stderr).toBe('');
    expect(whole.stdout.trim().split('\n')).toHaveLength(6);

    // As the README says: a retry that fails again counts an attempt on the same letter, no new one.
    const retry = sluice(dir, 'dead-letters', 'retry', 'contacts', '--json');
    expect(retry.status).toBe(0);
    expect(JSON.parse(retry.stdout)).toMatchObject({ retried: 5, written: 0, rejectedAgain: 5 });
    const after = JSON.parse(sluice(dir, 'dead-letters', 'list', '--all', '--json').stdout);
    expect(after.map((l: { key: unknown; attempts: number }) => [l.key, l.attempts])).toEqual(
      [1, 2, 3, 4, 5].map((id) => [[id], 2]),
    );
    expect(sluice(dir, 'dead-letters', 'list').stdout).toContain('open, 2 attempts');
  });
});
