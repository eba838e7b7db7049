import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { execSql } from '../../support/contacts.ts';
import { sqlitePair } from '../../support/harness.ts';
import { prng } from '../../support/seed.ts';
import { tempDir } from '../../support/tmp.ts';

/**
 * A SQLite text key under NOCASE (or any collation) orders unlike JavaScript's code units: the
 * source must let SQLite decide where a page ends and whether the backfill is done (issue 10, 0).
 */
describe('SQLite order: the database decides where a page ends', () => {
  it('backfills and incrementally reads a NOCASE text key whose order is not code-unit order', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 97, map: (r) => r, lookbackMs: 3_600_000 });
    const db = new DatabaseSync(pair.sourcePath);
    db.exec(
      'CREATE TABLE contacts (id TEXT COLLATE NOCASE PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT, company TEXT, score REAL, updated_at TEXT NOT NULL)',
    );
    const insert = db.prepare("INSERT INTO contacts VALUES (?, 'f', 'l', 'e@x', 'c', 1, ?)");
    // Upper case before lower in code units, mixed here: 'apple' < 'Banana' < 'cherry' under NOCASE.
    // Seeded, so the key set is the same on every run.
    const next = prng(11);
    const letters = 'aAbBcCdDxXyYzZ_-';
    const seen = new Set<string>();
    db.exec('BEGIN');
    while (seen.size < 3000) {
      let key = '';
      for (let i = 0; i < 1 + Math.floor(next() * 6); i++)
        key += letters[Math.floor(next() * letters.length)];
      if (seen.has(key.toLowerCase())) continue;
      seen.add(key.toLowerCase());
      insert.run(key, `2024-01-01T00:00:0${seen.size % 5}Z`);
    }
    db.exec('COMMIT');
    db.close();
    const backfill = await pair.run({ stopAfterBackfill: true });
    expect(backfill.checkpoint.phase).toBe('incremental');
    expect(backfill.run.counters.read).toBe(3000);
    execSql(
      pair.sourcePath,
      "UPDATE contacts SET company = 'later', updated_at = '2024-06-01T00:00:00Z' WHERE rowid % 3 = 0",
    );
    const incremental = await pair.run();
    expect(incremental.more).toBe(false);
    expect(incremental.run.counters.written).toBe(1000);
    // The target's table has no NOCASE on its key, so compare the rows in one order of our own.
    expect(rowsOf(pair.targetPath)).toEqual(rowsOf(pair.sourcePath));
  });
});

function rowsOf(path: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db
      .prepare('SELECT * FROM contacts')
      .all()
      .map((r) => JSON.stringify(r))
      .sort();
  } finally {
    db.close();
  }
}
