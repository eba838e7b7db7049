import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { text } from 'node:stream/consumers';
import { to as copyTo } from 'pg-copy-streams';
import { describe, expect, it } from 'vitest';
import { Workspace } from '../../src/runtime/workspace.ts';
import { connect, freshDatabase } from '../support/pg.ts';
import { tempDir } from '../support/tmp.ts';
import {
  LITE_COLUMNS,
  LITE_DDL,
  LITE_ROWS,
  liteRowsSql,
  PG_COLUMNS,
  PG_LABELS,
  PG_ROWS,
  PG_TYPES,
  pgRowsSql,
  pgTableDdl,
} from './kinds.ts';
import {
  type Cell,
  cellOf,
  type Landing,
  lettersOf,
  markdown,
  runPath,
  textRows,
  unnamed,
} from './matrix.ts';

/** Each path: the syncs it runs in order, and the PostgreSQL table the values end in. */
const PATHS: Record<string, { syncs: string[]; table: string }> = {
  'PG → PG native': { syncs: ['native'], table: 'kinds_native' },
  'PG → PG map': { syncs: ['mapped'], table: 'kinds_map' },
  'PG → SQLite → PG': { syncs: ['to_sqlite', 'from_sqlite'], table: 'kinds_back' },
  'PG → JSON Lines → PG': { syncs: ['to_jsonl', 'from_jsonl'], table: 'kinds_jl' },
  'CSV → PG': { syncs: ['csv'], table: 'kinds_csv' },
};

const all = (values: Record<string, Cell>) => values;
const equalAll = (): Record<string, Cell> => Object.fromEntries(PG_COLUMNS.map(([c]) => [c, 'equal']));

/** What each path does with each family (the README's value table says the same). */
const EXPECTED: Record<string, Record<string, Cell>> = {
  'PG → PG native': equalAll(),
  'PG → PG map': equalAll(),
  'PG → SQLite → PG': all({ ...equalAll(), f8: 'dead letter: -0' }),
  'PG → JSON Lines → PG': all({
    ...equalAll(),
    f4: 'dead letter: NaN, -Infinity',
    f8: 'dead letter: NaN, Infinity',
    js: 'dead letter: JSON null, json as written',
    jb: 'dead letter: JSON null, jsonb 1.50',
    jbs: 'dead letter: JSON null in an array, array documents, jsonb 2.50',
  }),
  'CSV → PG': equalAll(),
};

const LITE_EXPECTED: Record<string, Cell> = {
  i: 'equal',
  r: 'equal',
  t: 'dead letter: NUL in text',
  b: 'equal',
  n: 'dead letter: text in NUMERIC',
  j: 'equal',
  flag: 'equal',
  tags: 'equal',
  u: 'dead letter: blob in an untyped column',
};

describe('fidelity matrix: every value arrives as it left, or is a dead letter naming its field', () => {
  it('moves every PostgreSQL type family and every SQLite storage class through every path', async () => {
    const db = await freshDatabase('fidelity');
    const client = await connect(db.url);
    await client.query(PG_TYPES);
    for (const table of ['kinds', ...Object.values(PATHS).map((p) => p.table)])
      await client.query(pgTableDdl(table));
    await client.query(pgRowsSql('kinds'));

    const dir = tempDir('fidelity');
    // The CSV is PostgreSQL's own (NULL an unquoted empty field), and one record that is not UTF-8.
    const csv = await text(client.query(copyTo('COPY kinds TO STDOUT (FORMAT csv, HEADER)')));
    const notUtf8 = Buffer.from(`99,${PG_COLUMNS.map(([c]) => (c === 'txt' ? 'a\u0000b' : '')).join(',')}\n`);
    notUtf8[notUtf8.indexOf(0)] = 0xff;
    writeFileSync(join(dir, 'kinds.csv'), Buffer.concat([Buffer.from(csv), notUtf8]));
    const lite = new DatabaseSync(join(dir, 'lite.db'));
    lite.exec(`${LITE_DDL}; ${liteRowsSql()}`);
    lite.close();

    const pgTo = (table: string) => ({ connection: 'pg', table });
    const sync = (source: object, target: object, more: object = {}) => ({
      source,
      target,
      key: 'id',
      batch: { size: 3 },
      ...more,
    });
    const ws = await Workspace.fromConfig(
      {
        connections: {
          pg: { type: 'postgres', url: db.url },
          lite: { type: 'sqlite', path: 'lite.db' },
          mid: { type: 'sqlite', path: 'mid.db' },
          files: { type: 'files', dir: '.' },
        },
        syncs: {
          native: sync(pgTo('kinds'), pgTo('kinds_native')),
          mapped: sync(pgTo('kinds'), pgTo('kinds_map'), { map: (r: object) => ({ ...r }) }),
          to_sqlite: sync(pgTo('kinds'), { connection: 'mid', table: 'kinds' }),
          from_sqlite: sync({ connection: 'mid', table: 'kinds' }, pgTo('kinds_back')),
          to_jsonl: sync(pgTo('kinds'), { connection: 'files', path: 'kinds.jsonl' }),
          from_jsonl: sync({ connection: 'files', path: 'kinds.jsonl' }, pgTo('kinds_jl')),
          csv: sync({ connection: 'files', path: 'kinds.csv' }, pgTo('kinds_csv')),
          sqlite: sync({ connection: 'lite', table: 'lite' }, pgTo('lite')),
        },
      },
      dir,
    );
    try {
      const columns = PG_COLUMNS.map(([c]) => c);
      const source = await textRows(client, 'kinds', columns);
      const matrix: Record<string, Record<string, Cell>> = {};
      const unaccounted: string[] = [];
      for (const [path, { syncs, table }] of Object.entries(PATHS)) {
        const failed = await runPath(ws, syncs);
        const landing: Landing = {
          failed,
          rows: failed ? new Map() : await textRows(client, table, columns),
          letters: await lettersOf(ws, syncs),
        };
        matrix[path] = Object.fromEntries(
          columns.map((c) => [
            c,
            cellOf(
              c,
              PG_ROWS.map((r) => ({ id: r.id, label: r.label, expected: source.get(r.id)![c] ?? null })),
              landing,
            ),
          ]),
        );
        for (const reason of unnamed(landing, PG_LABELS))
          unaccounted.push(`${path}: dead letter naming no field: ${reason}`);
        // Every record arrived or is a dead letter, the record that is not UTF-8 included.
        for (const { id } of PG_ROWS)
          if (!failed && !landing.rows.has(id) && !landing.letters.has(id))
            unaccounted.push(`${path}: ${PG_LABELS.get(id)}`);
        const csvLetters = path === 'CSV → PG' ? await ws.store.listDeadLetters({ sync: 'csv' }) : [];
        if (path === 'CSV → PG' && !csvLetters.some((l) => l.reason === 'malformed record: invalid UTF-8'))
          unaccounted.push(`${path}: the record that is not UTF-8`);
      }

      const liteFailed = await runPath(ws, ['sqlite']);
      const liteLanding: Landing = {
        failed: liteFailed,
        rows: liteFailed ? new Map() : await textRows(client, 'lite', LITE_COLUMNS),
        letters: await lettersOf(ws, ['sqlite']),
      };
      const liteCells = Object.fromEntries(
        LITE_COLUMNS.map((c) => [
          c,
          cellOf(
            c,
            LITE_ROWS.filter((r) => !('refused' in r.pg) || r.pg.refused === c).map((r) => ({
              id: r.id,
              label: r.label,
              expected: 'refused' in r.pg ? 'refused' : (r.pg[c] ?? null),
            })),
            liteLanding,
          ),
        ]),
      );

      for (const reason of unnamed(liteLanding, new Map(LITE_ROWS.map((r) => [r.id, r.label]))))
        unaccounted.push(`SQLite → PG: dead letter naming no field: ${reason}`);
      const table = `${markdown(matrix)}\n\nSQLite → PG: ${JSON.stringify(liteCells, null, 1)}\n\n${unaccounted.join('\n')}`;
      expect({ matrix, lite: liteCells, unaccounted }, table).toEqual({
        matrix: EXPECTED,
        lite: LITE_EXPECTED,
        unaccounted: [],
      });
      // The SQLite → PostgreSQL target created its table, each declared type mapped to one that holds its values.
      const { rows } = await client.query(
        `SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute
         WHERE attrelid = 'lite'::regclass AND attnum > 0 ORDER BY attnum`,
      );
      expect(rows.map((r) => `${r.name} ${r.type}`)).toEqual([
        'id bigint',
        'i bigint',
        'r double precision',
        't text',
        'b bytea',
        'n numeric',
        'j jsonb',
        'flag boolean',
        'tags text[]',
        'u text',
      ]);
    } finally {
      await ws.close();
    }
  });
});
