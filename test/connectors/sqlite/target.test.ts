import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { SqliteTarget, type SqliteTargetOptions } from '../../../src/connectors/sqlite/target.ts';
import type { SyncShape } from '../../../src/core/ports.ts';
import type { Row } from '../../../src/core/types.ts';
import { tempDir } from '../../support/tmp.ts';

const signal = new AbortController().signal;
const options: SqliteTargetOptions = { table: 'contacts', mode: 'upsert', synchronous: 'NORMAL' };

function setup(key: string[] = ['id'], ddl?: string) {
  const path = join(tempDir('sqlite-target'), 'b.db');
  if (ddl) {
    const db = new DatabaseSync(path);
    db.exec(ddl);
    db.close();
  }
  const shape: SyncShape = { sync: 'contacts', key, cursorField: 'updated_at', baseDir: '.' };
  const open = (opts: Partial<SqliteTargetOptions> = {}) =>
    new SqliteTarget(path, { ...options, ...opts }, shape);
  const query = (sql: string) => {
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      return db
        .prepare(sql)
        .all()
        .map((r) => ({ ...r }));
    } finally {
      db.close();
    }
  };
  return { path, open, query };
}

const contacts = (n: number, from = 1): Row[] =>
  Array.from({ length: n }, (_, i) => ({
    id: from + i,
    name: `c${from + i}`,
    updated_at: '2024-01-01T00:00:00Z',
  }));

describe('SqliteTarget', () => {
  it('rejects the records the table refuses with SQLite’s reason and writes the rest of the batch', async () => {
    const { open, query } = setup(
      ['id'],
      'CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER CHECK (age >= 0), updated_at TEXT)',
    );
    const target = open();
    // More rows than one statement holds, so the failing statement's rows are retried one by one.
    const records: Row[] = contacts(1200).map((r) => ({ ...r, age: 30 }));
    records[10] = { ...records[10]!, name: null };
    records[700] = { ...records[700]!, age: -1 };
    records.push({ name: 'no key', age: 1 });
    const result = await target.write(records, { signal });
    await target.close();

    expect(result.written).toBe(1198);
    expect(result.rejected.map((r) => [r.record.id, r.reason])).toEqual([
      [undefined, 'key field "id" is missing'],
      [11, expect.stringMatching(/NOT NULL constraint failed: contacts\.name/)],
      [701, expect.stringMatching(/CHECK constraint failed/)],
    ]);
    expect(query('SELECT count(*) AS n FROM contacts')).toEqual([{ n: 1198 }]);
    expect(query('SELECT id FROM contacts WHERE id IN (11, 701)')).toEqual([]);
  });

  it('upserts by key: the same batch written twice leaves the table as if written once', async () => {
    const { open, query } = setup();
    const batch = contacts(1500);
    const target = open();
    await target.write(batch, { signal });
    const once = query('SELECT * FROM contacts ORDER BY id');
    await target.write(batch, { signal });
    expect(query('SELECT * FROM contacts ORDER BY id')).toEqual(once);
    await target.write([{ id: 2, name: 'changed', updated_at: '2024-02-01T00:00:00Z' }], { signal });
    await target.close();
    expect(query('SELECT count(*) AS n FROM contacts')).toEqual([{ n: 1500 }]);
    expect(query('SELECT * FROM contacts WHERE id = 2')).toEqual([
      { id: 2, name: 'changed', updated_at: '2024-02-01T00:00:00Z' },
    ]);
  });

  it('creates the table on first write and adds a column for a field it has not seen', async () => {
    const { open, query } = setup();
    const target = open();
    await target.write(contacts(2), { signal });
    await target.write([{ id: 3, name: 'c3', updated_at: 'x', email: 'c3@example.com' }], { signal });
    await target.close();
    expect(query("SELECT name FROM pragma_table_info('contacts') ORDER BY cid").map((r) => r.name)).toEqual([
      'id',
      'name',
      'updated_at',
      'email',
    ]);
    expect(query('SELECT id, email FROM contacts ORDER BY id')).toEqual([
      { id: 1, email: null },
      { id: 2, email: null },
      { id: 3, email: 'c3@example.com' },
    ]);
    // A reopened target sees the added column and writes it without altering the table again.
    const again = open();
    await again.write([{ id: 1, name: 'c1', updated_at: 'y', email: 'c1@example.com' }], { signal });
    await again.close();
    expect(query('SELECT email FROM contacts WHERE id = 1')).toEqual([{ email: 'c1@example.com' }]);
  });

  it('writes by a composite key', async () => {
    const { open, query } = setup(['tenant', 'id']);
    const target = open();
    await target.write(
      [
        { tenant: 'a', id: 1, name: 'a1' },
        { tenant: 'b', id: 1, name: 'b1' },
        { tenant: 'a', id: 2, name: 'a2' },
      ],
      { signal },
    );
    const result = await target.write(
      [
        { tenant: 'b', id: 1, name: 'b1 changed' },
        { tenant: 'b', name: 'no id' },
      ],
      { signal },
    );
    await target.close();
    expect(result.rejected.map((r) => r.reason)).toEqual(['key field "id" is missing']);
    expect(query('SELECT tenant, id, name FROM contacts ORDER BY tenant, id')).toEqual([
      { tenant: 'a', id: 1, name: 'a1' },
      { tenant: 'a', id: 2, name: 'a2' },
      { tenant: 'b', id: 1, name: 'b1 changed' },
    ]);
  });

  it('refuses a table with no unique index on the key', async () => {
    const { open } = setup(['id'], 'CREATE TABLE contacts (id INTEGER, name TEXT)');
    expect(() => open()).toThrow(/no PRIMARY KEY or UNIQUE index on \(id\)/);
  });

  it('insert mode leaves existing keys untouched', async () => {
    const { open, query } = setup();
    const target = open({ mode: 'insert' });
    await target.write([{ id: 1, name: 'first' }], { signal });
    await target.write([{ id: 1, name: 'second' }], { signal });
    await target.close();
    expect(query('SELECT id, name FROM contacts')).toEqual([{ id: 1, name: 'first' }]);
  });

  it('stores integers as INTEGER, other numbers as REAL, booleans as 0/1 and objects as JSON text', async () => {
    const { open, query } = setup();
    const target = open();
    await target.write(
      [
        {
          id: 1,
          int: 42,
          neg: -7,
          big: 2 ** 60,
          float: 0.1,
          flag: true,
          text: '42',
          when: new Date('2024-05-01T10:00:00Z'),
          nested: { a: [1, 2] },
          blob: new Uint8Array([1, 2]),
          none: null,
        },
      ],
      { signal },
    );
    await target.close();
    expect(
      query(
        'SELECT typeof(id) id, typeof(int) int, typeof(neg) neg, typeof(big) big, typeof(float) float, typeof(flag) flag, typeof(text) text, typeof(nested) nested, typeof(blob) blob, typeof(none) none FROM contacts',
      ),
    ).toEqual([
      {
        id: 'integer',
        int: 'integer',
        neg: 'integer',
        big: 'real',
        float: 'real',
        flag: 'integer',
        text: 'text',
        nested: 'text',
        blob: 'blob',
        none: 'null',
      },
    ]);
    expect(query('SELECT id, int, neg, float, flag, text, "when", nested FROM contacts')).toEqual([
      {
        id: 1,
        int: 42,
        neg: -7,
        float: 0.1,
        flag: 1,
        text: '42',
        when: '2024-05-01T10:00:00.000Z',
        nested: '{"a":[1,2]}',
      },
    ]);
  });
});

describe('SQLite target: the table it creates', () => {
  const withSchema = (dialect: string) => {
    const path = join(tempDir('sqlite-target'), 'b.db');
    const shape: SyncShape = {
      sync: 'contacts',
      key: ['id'],
      cursorField: 'updated_at',
      baseDir: '.',
      sourceSchema: {
        dialect,
        columns: [
          { name: 'id', type: 'INTEGER' },
          { name: 'name', type: 'VARCHAR(40)' },
          { name: 'updated_at', type: 'TEXT; DROP TABLE x' },
        ],
      },
    };
    return { path, target: new SqliteTarget(path, options, shape) };
  };

  it("keeps a SQLite source's declared types, with a single integer key as the rowid", async () => {
    const { path, target } = withSchema('sqlite');
    await target.write(
      [
        { id: 1, name: 'a', updated_at: 't' },
        { id: '2', name: 'b', updated_at: 't' },
      ],
      { signal },
    );
    await target.close();
    const db = new DatabaseSync(path, { readOnly: true });
    const sql = String(db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'contacts'").get()?.sql);
    const rows = db.prepare('SELECT _rowid_ AS r, id, typeof(id) AS t FROM contacts ORDER BY id').all();
    const indexes = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'index'").get();
    db.close();
    // A declared type that does not read as a type name is not pasted into the DDL.
    expect(sql).toBe('CREATE TABLE "contacts" ("id" INTEGER PRIMARY KEY, "name" VARCHAR(40), "updated_at")');
    expect(rows.map((r) => ({ ...r }))).toEqual([
      { r: 1, id: 1, t: 'integer' },
      { r: 2, id: 2, t: 'integer' },
    ]);
    expect(indexes).toEqual({ n: 0 });
  });

  it('declares types that keep a PostgreSQL source’s values, by family, never pasting its type names', async () => {
    // Deliberate change (issue 11): columns of another dialect were left untyped; now they declare
    // a type that keeps the value model's values and tells the SQLite source how to read them back.
    const path = join(tempDir('sqlite-target'), 'b.db');
    const columns = [
      ['id', 'bigint'],
      ['small', 'integer'],
      ['ratio', 'double precision'],
      ['amount', 'numeric(38,10)'],
      ['flag', 'boolean'],
      ['name', 'character varying(40)'],
      ['blob', 'bytea'],
      ['doc', 'jsonb'],
      ['tags', 'text[]'],
      ['amounts', 'numeric[]'],
      ['docs', 'json[]'],
      ['at', 'timestamp with time zone'],
      ['evil', 'text; DROP TABLE x'],
    ];
    const target = new SqliteTarget(path, options, {
      sync: 'contacts',
      key: ['id'],
      cursorField: null,
      baseDir: '.',
      sourceSchema: {
        dialect: 'postgres',
        columns: columns.map(([name, type]) => ({ name: name!, type: type! })),
      },
    });
    const record: Row = Object.fromEntries(columns.map(([name]) => [name!, null]));
    await target.write([{ ...record, id: 1 }], { signal });
    await target.close();
    const db = new DatabaseSync(path, { readOnly: true });
    const sql = String(db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'contacts'").get()?.sql);
    db.close();
    expect(sql).toBe(
      'CREATE TABLE "contacts" ("id" INTEGER PRIMARY KEY, "small" INTEGER, "ratio" REAL, "amount" NUMERIC TEXT, ' +
        '"flag" BOOLEAN, "name" TEXT, "blob" BLOB, "doc" JSON TEXT, "tags" TEXT[], "amounts" NUMERIC[], ' +
        '"docs" JSON[], "at" TEXT, "evil" TEXT)',
    );
  });
});
