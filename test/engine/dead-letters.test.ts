import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { retryDeadLetters } from '../../src/engine/retry.ts';
import { execSql, seedContacts } from '../support/contacts.ts';
import { sqlitePair } from '../support/harness.ts';
import { tempDir } from '../support/tmp.ts';

describe('dead letters', () => {
  it('sends a record the target rejects to the dead letters with its reason; the batch goes on', async () => {
    // A lookback window over the whole table: the first incremental run sweeps every record again.
    const pair = sqlitePair(tempDir(), { batchSize: 50, lookbackMs: 10 * 365 * 86_400_000 });
    seedContacts(pair.sourcePath, 200);
    execSql(pair.sourcePath, "UPDATE contacts SET email = 'not-an-email' WHERE id IN (7, 120)");
    execSql(
      pair.targetPath,
      "CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT CHECK (email LIKE '%@%'), company TEXT, score REAL, updated_at TEXT)",
    );
    const outcome = await pair.run({ stopAfterBackfill: true });
    expect(outcome.run.counters).toMatchObject({ read: 200, written: 198, rejected: 2 });
    const letters = await pair.store.listDeadLetters({ sync: 'contacts' });
    expect(letters.map((l) => (l.record as { id: number }).id)).toEqual([7, 120]);
    expect(letters[0]).toMatchObject({ key: [7], attempts: 1 });
    expect(letters[0]?.reason).toMatch(/CHECK constraint failed/);
    expect(letters[0]?.cursorFrom).toBeNull();
    expect(letters[0]?.cursorTo).toEqual({ key: [50] });
    const db = new DatabaseSync(pair.targetPath);
    expect(db.prepare('SELECT count(*) AS n FROM contacts').get()).toEqual({ n: 198 });
    db.close();

    // The lookback sweep reads every record again: the same records fail again, and their open
    // letters count the attempt rather than piling up; the others are not rejected again.
    const again = await pair.run();
    expect(again.run.counters).toMatchObject({ read: 200, rejected: 2 });
    expect(again.run.counters.written + again.run.counters.unchanged).toBe(198);
    const after = await pair.store.listDeadLetters({ sync: 'contacts' });
    expect(after.map((l) => [l.key, l.attempts])).toEqual([
      [[7], 2],
      [[120], 2],
    ]);
  });

  it('dead-letters a record whose map throws, keeping the source record', async () => {
    const pair = sqlitePair(tempDir(), {
      map: (r) => {
        if (r.id === 3) throw new Error('no company for 3');
        return { ...r, company: String(r.company).toUpperCase() };
      },
    });
    seedContacts(pair.sourcePath, 10);
    await pair.run();
    const [letter] = await pair.store.listDeadLetters({ sync: 'contacts' });
    expect(letter?.reason).toBe('map failed: no company for 3');
    expect(letter?.record).toMatchObject({ id: 3, company: 'Company 3' });
  });

  it('retries dead letters once the cause is fixed, and lists again those that fail again', async () => {
    const pair = sqlitePair(tempDir());
    seedContacts(pair.sourcePath, 20);
    execSql(pair.sourcePath, "UPDATE contacts SET email = 'bad' WHERE id IN (4, 5)");
    execSql(
      pair.targetPath,
      "CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT CHECK (email <> 'bad'), company TEXT, score REAL, updated_at TEXT)",
    );
    await pair.run();
    expect(await pair.store.listDeadLetters({ sync: 'contacts' })).toHaveLength(2);
    const fixing = {
      ...pair.spec,
      map: (r: Record<string, unknown>) => (r.id === 4 ? { ...r, email: 'four@example.com' } : r),
    };
    const source = await pair.openSource();
    const target = await pair.openTarget();
    const outcome = await retryDeadLetters({
      spec: fixing,
      source,
      target,
      store: pair.store,
      holder: 'test:1',
    });
    await target.close?.();
    await source.close?.();
    expect(outcome).toMatchObject({ retried: 2, written: 1, rejectedAgain: 1, gone: 0 });
    const open = await pair.store.listDeadLetters({ sync: 'contacts' });
    expect(open.map((l) => [(l.record as { id: number }).id, l.attempts])).toEqual([[5, 2]]);
    expect(await pair.store.listDeadLetters({ sync: 'contacts', includeClosed: true })).toHaveLength(2);
  });
});
