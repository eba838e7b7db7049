import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { Workspace } from '../../../src/runtime/workspace.ts';
import { connect, freshDatabase } from '../../support/pg.ts';
import { tempDir } from '../../support/tmp.ts';

const columnsOf = async (client: { query: (sql: string) => Promise<{ rows: unknown[] }> }, table: string) =>
  (
    await client.query(
      `SELECT attname || ' ' || format_type(atttypid, atttypmod) AS c FROM pg_attribute
       WHERE attrelid = '${table}'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    )
  ).rows.map((r) => (r as { c: string }).c);

const primaryKey = async (client: { query: (sql: string) => Promise<{ rows: unknown[] }> }, table: string) =>
  (
    await client.query(
      `SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = '${table}'::regclass AND contype = 'p'`,
    )
  ).rows.map((r) => (r as { def: string }).def);

describe('PostgreSQL target: a missing table', () => {
  it("is created from a PostgreSQL source's full types, modifiers, domains and enums included, its key the primary key", async () => {
    const db = await freshDatabase('create_pg');
    const client = await connect(db.url);
    await client.query(`CREATE TYPE mood AS ENUM ('sad', 'ok');
      CREATE DOMAIN positive AS numeric(12,3) CHECK (VALUE > 0);
      CREATE TABLE "Source Table" (id bigint, region text, amount numeric(38,10), name varchar(40), at timestamptz(3),
        tags text[], feel mood, pos positive, doc jsonb, PRIMARY KEY (region, id));
      INSERT INTO "Source Table" VALUES (1, 'eu', 1.5, 'a', '2024-05-01 10:00:00.123+00', '{x,NULL}', 'ok', 2.5, '{"a": 1}')`);
    const dir = tempDir('create');
    const ws = await Workspace.fromConfig(
      {
        connections: { pg: { type: 'postgres', url: db.url } },
        syncs: {
          copy: {
            source: { connection: 'pg', table: 'Source Table' },
            target: { connection: 'pg', table: 'copied' },
            key: ['region', 'id'],
          },
        },
      },
      dir,
    );
    try {
      const outcome = await ws.run('copy', { trigger: 'run', stopAfterBackfill: true });
      expect(outcome.run.counters).toMatchObject({ read: 1, written: 1, rejected: 0 });
      expect(await columnsOf(client, 'copied')).toEqual([
        'id bigint',
        'region text',
        'amount numeric(38,10)',
        'name character varying(40)',
        'at timestamp(3) with time zone',
        'tags text[]',
        'feel mood',
        'pos positive',
        'doc jsonb',
      ]);
      expect(await primaryKey(client, 'copied')).toEqual(['PRIMARY KEY (region, id)']);
      const { rows } = await client.query(
        `SELECT (SELECT row_to_json(s)::text FROM "Source Table" s) AS a, (SELECT row_to_json(c)::text FROM copied c) AS b`,
      );
      expect(rows[0].b).toBe(rows[0].a);
    } finally {
      await ws.close();
    }
  });

  it('is created from a CSV file’s header as text columns, each field its column’s input text', async () => {
    const db = await freshDatabase('create_csv');
    const client = await connect(db.url);
    const dir = tempDir('create');
    writeFileSync(join(dir, 'people.csv'), 'id,name,doc\n1,"Ann",{}\n2,,"{""a"": 1}"\n');
    const ws = await Workspace.fromConfig(
      {
        connections: { pg: { type: 'postgres', url: db.url }, files: { type: 'files', dir: '.' } },
        syncs: {
          people: {
            source: { connection: 'files', path: 'people.csv' },
            target: { connection: 'pg', table: 'people' },
            key: 'id',
          },
        },
      },
      dir,
    );
    try {
      await ws.run('people', { trigger: 'run', stopAfterBackfill: true });
      expect(await columnsOf(client, 'people')).toEqual(['id text', 'name text', 'doc text']);
      const { rows } = await client.query('SELECT id, name, doc FROM people ORDER BY id');
      expect(rows).toEqual([
        { id: '1', name: 'Ann', doc: '{}' },
        { id: '2', name: null, doc: '{"a": 1}' },
      ]);
    } finally {
      await ws.close();
    }
  });

  it('is refused with TABLE_MISSING under create: false, and where the source declares no columns', async () => {
    const db = await freshDatabase('create_refused');
    const client = await connect(db.url);
    await client.query('CREATE TABLE src (id int PRIMARY KEY)');
    const dir = tempDir('create');
    writeFileSync(join(dir, 'a.jsonl'), '{"id": 1}\n');
    const lite = new DatabaseSync(join(dir, 'a.db'));
    lite.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
    lite.close();
    const ws = await Workspace.fromConfig(
      {
        connections: {
          pg: { type: 'postgres', url: db.url },
          files: { type: 'files', dir: '.' },
          lite: { type: 'sqlite', path: 'b.db' },
        },
        syncs: {
          refused: {
            source: { connection: 'pg', table: 'src' },
            target: { connection: 'pg', table: 'dst', create: false },
            key: 'id',
          },
          undeclared: {
            source: { connection: 'files', path: 'a.jsonl' },
            target: { connection: 'pg', table: 'dst' },
            key: 'id',
          },
          refusedLite: {
            source: { connection: 'pg', table: 'src' },
            target: { connection: 'lite', table: 'dst', create: false },
            key: 'id',
          },
        },
      },
      dir,
    );
    try {
      await expect(ws.run('refused', { trigger: 'run' })).rejects.toMatchObject({
        code: 'TABLE_MISSING',
        message: expect.stringMatching(/public\.dst does not exist \(create: false\)/),
      });
      await expect(ws.run('undeclared', { trigger: 'run' })).rejects.toMatchObject({
        code: 'TABLE_MISSING',
        message: expect.stringMatching(/the source declares no columns to create it from/),
      });
      await expect(ws.run('refusedLite', { trigger: 'run' })).rejects.toMatchObject({
        code: 'TABLE_MISSING',
        message: expect.stringMatching(/"dst" does not exist \(create: false\)/),
      });
      expect((await client.query("SELECT to_regclass('dst') AS t")).rows[0].t).toBeNull();
    } finally {
      await ws.close();
    }
  });
});
