import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { SqliteSource } from '../../../src/connectors/sqlite/source.ts';
import type { SyncShape } from '../../../src/core/ports.ts';
import { tempDir } from '../../support/tmp.ts';

const signal = new AbortController().signal;
const shape: SyncShape = { sync: 'contacts', key: ['id'], cursorField: 'updated_at', baseDir: '.' };

describe('SqliteSource', () => {
  it('reads records as plain objects with every column, in key order, and pages by keyset', async () => {
    const path = join(tempDir('sqlite-source'), 'a.db');
    const db = new DatabaseSync(path);
    db.exec(
      'CREATE TABLE contacts (id INTEGER PRIMARY KEY, "__proto__" TEXT, name TEXT, score REAL, data BLOB, updated_at TEXT)',
    );
    const insert = db.prepare('INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?)');
    for (let id = 1; id <= 5; id++)
      insert.run(
        id,
        `p${id}`,
        id === 3 ? null : `c${id}`,
        id / 2,
        new Uint8Array([id]),
        '2024-01-01T00:00:00Z',
      );
    db.close();

    const source = new SqliteSource(path, { table: 'contacts' }, shape);
    const first = await source.read({
      phase: 'backfill',
      cursor: null,
      limit: 3,
      highWaterMark: null,
      signal,
    });
    const rest = await source.read({
      phase: 'backfill',
      cursor: first.next,
      limit: 3,
      highWaterMark: null,
      signal,
    });
    await source.close();

    expect(first.next).toEqual({ key: [3] });
    expect(first.done).toBe(false);
    expect(rest.done).toBe(true);
    const records = [...first.records, ...rest.records];
    expect(records.map((r) => r.id)).toEqual([1, 2, 3, 4, 5]);
    const third = records[2]!;
    expect(Object.getPrototypeOf(third)).toBe(Object.prototype);
    expect(Object.keys(third)).toEqual(['id', '__proto__', 'name', 'score', 'data', 'updated_at']);
    expect(third.__proto__).toBe('p3');
    expect({ ...third, __proto__: undefined }).toMatchObject({
      id: 3,
      name: null,
      score: 1.5,
      updated_at: '2024-01-01T00:00:00Z',
    });
    expect(third.data).toEqual(new Uint8Array([3]));
  });
});
