import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { sqliteConnector } from '../../../src/connectors/sqlite/index.ts';
import type { SyncShape } from '../../../src/core/ports.ts';
import { digest, execSql, iso, seedContacts } from '../../support/contacts.ts';
import { sqlitePair } from '../../support/harness.ts';
import { tempDir } from '../../support/tmp.ts';

const signal = new AbortController().signal;

describe('SQLite → SQLite native copy', () => {
  it('copies exactly the page the source bounds, and nothing past it', async () => {
    const dir = tempDir();
    seedContacts(join(dir, 'a.db'), 1000);
    const shape: SyncShape = { sync: 'c', key: ['id'], cursorField: 'updated_at', baseDir: dir };
    const source = await sqliteConnector.source!.open(
      { path: 'a.db' },
      { table: 'contacts', where: 'id % 10 <> 0' },
      shape,
    );
    const target = await sqliteConnector.target!.open(
      { path: 'b.db' },
      { table: 'contacts', mode: 'upsert', synchronous: 'NORMAL' },
      shape,
    );
    const hwm = await source.highWaterMark!();
    const first = await source.bounds!({
      phase: 'backfill',
      cursor: null,
      limit: 300,
      highWaterMark: hwm,
      signal,
    });
    expect(first).toMatchObject({ count: 300, done: false, next: { key: [333] } });
    expect(await target.copyFrom!(source.location!(), first.range, { signal })).toEqual({
      written: 300,
      rejected: [],
    });
    const second = await source.bounds!({
      phase: 'backfill',
      cursor: first.next,
      limit: 300,
      highWaterMark: hwm,
      signal,
    });
    await target.copyFrom!(source.location!(), second.range, { signal });
    await target.close!();
    await source.close!();
    const db = new DatabaseSync(join(dir, 'b.db'), { readOnly: true });
    const ids = db
      .prepare('SELECT min(id) AS lo, max(id) AS hi, count(*) AS n, sum(id % 10 = 0) AS tens FROM contacts')
      .get();
    db.close();
    expect({ ...ids }).toEqual({ lo: 1, hi: 666, n: 600, tens: 0 });
  });

  it('declines a page with a row the table refuses, so the engine dead-letters that row and writes the rest', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 100 });
    seedContacts(pair.sourcePath, 300);
    execSql(pair.sourcePath, 'UPDATE contacts SET email = NULL WHERE id = 150');
    execSql(
      pair.targetPath,
      'CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT NOT NULL, company TEXT, score REAL, updated_at TEXT)',
    );
    const outcome = await pair.run({ stopAfterBackfill: true });
    expect(outcome.run.counters).toMatchObject({ batches: 3, read: 300, written: 299, rejected: 1 });
    const [letter] = await pair.store.listDeadLetters({ sync: 'contacts' });
    expect(letter).toMatchObject({ key: [150], reason: expect.stringMatching(/NOT NULL constraint failed/) });
  });

  it('keeps ties whole in the incremental phase: 10,000 rows changed in one second, batches of 3,000', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 3000 });
    seedContacts(pair.sourcePath, 12_000, { perSecond: 500 });
    await pair.backfill();
    execSql(
      pair.sourcePath,
      `UPDATE contacts SET company = 'Changed', updated_at = '${iso(Date.UTC(2025, 0, 1))}' WHERE id > 2000`,
    );
    const outcome = await pair.run();
    // Every row of the high-water second changed too, so the run reads the 10,000 exactly once.
    expect(outcome.run.counters.read).toBe(10_000);
    expect(outcome.run.counters.batches).toBe(4);
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));
  });
});

describe('SQLite native copy within one file', () => {
  it('copies one table into another of the same database without locking against itself', async () => {
    const dir = tempDir();
    seedContacts(join(dir, 'one.db'), 7000);
    const shape: SyncShape = { sync: 'copy', key: ['id'], cursorField: 'updated_at', baseDir: dir };
    const source = await sqliteConnector.source!.open({ path: 'one.db' }, { table: 'contacts' }, shape);
    const target = await sqliteConnector.target!.open(
      { path: 'one.db' },
      { table: 'contacts_copy', mode: 'upsert', synchronous: 'NORMAL' },
      shape,
    );
    const hwm = await source.highWaterMark!();
    let cursor = null;
    let written = 0;
    for (let done = false; !done; ) {
      const bounds = await source.bounds!({
        phase: 'backfill',
        cursor,
        limit: 3000,
        highWaterMark: hwm,
        signal,
      });
      const result = await target.copyFrom!(source.location!(), bounds.range, { signal });
      expect(result).not.toBeNull();
      written += result!.written;
      cursor = bounds.next;
      done = bounds.done;
    }
    await target.close!();
    await source.close!();
    expect(written).toBe(7000);
    expect(digest(join(dir, 'one.db'), 'contacts_copy')).toEqual(digest(join(dir, 'one.db'), 'contacts'));
  });
});
