import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { SqliteSource } from '../../../src/connectors/sqlite/source.ts';
import { SqliteTarget } from '../../../src/connectors/sqlite/target.ts';
import type { SyncShape } from '../../../src/core/ports.ts';
import type { Row } from '../../../src/core/types.ts';
import { isJsonArray, jsonArray, jsonNull, jsonTextOf, readJson } from '../../../src/core/values.ts';
import { tempDir } from '../../support/tmp.ts';

const signal = new AbortController().signal;
const shape: SyncShape = { sync: 'v', key: ['id'], cursorField: null, baseDir: '.' };
const DDL = `CREATE TABLE v (id INTEGER PRIMARY KEY, r REAL, n NUMERIC, i INTEGER, t TEXT, u, flag BOOLEAN,
  doc JSON TEXT, reals REAL[], blobs BLOB[], docs JSON[], ints INTEGER[])`;

async function roundTrip(records: Row[]) {
  const path = join(tempDir('sqlite-values'), 'v.db');
  const db = new DatabaseSync(path);
  db.exec(DDL);
  db.close();
  const target = new SqliteTarget(path, { table: 'v', mode: 'upsert', synchronous: 'NORMAL' }, shape);
  const result = await target.write(records, { signal });
  await target.close();
  const source = new SqliteSource(path, { table: 'v' }, shape);
  const page = await source.read({
    phase: 'backfill',
    cursor: null,
    limit: 100,
    highWaterMark: null,
    signal,
  });
  const stored = new DatabaseSync(path, { readOnly: true });
  const classes = stored.prepare('SELECT id, typeof(r) r, typeof(n) n FROM v ORDER BY id').all();
  stored.close();
  await source.close();
  return { result, records: page.records, classes: classes.map((c) => ({ ...c })) };
}

describe('SQLite values', () => {
  it('keeps NaN, ±Infinity, booleans, JSON text and arrays, reading them back as they were written', async () => {
    const doc = readJson('{"b":1,  "a":2, "a": 3}', 'text');
    const { result, records } = await roundTrip([
      {
        id: 1,
        r: Number.NaN,
        flag: true,
        doc,
        reals: [1.5, Number.NaN, null, Number.NEGATIVE_INFINITY, -0],
        blobs: [Buffer.from([0, 255]), null],
        docs: [jsonNull, { a: 1 }, jsonArray([1, 2]), null],
        ints: [
          [9223372036854775807n, null],
          [-1n, 2],
        ],
      },
      { id: 2, r: Number.POSITIVE_INFINITY, flag: false, doc: jsonNull, n: '1.50' },
      { id: 3, i: -9223372036854775808n, n: '12345678901234567' },
    ]);
    expect(result).toEqual({ written: 3, rejected: [] });
    const [one, two, three] = records;
    expect(one!.r).toBeNaN();
    expect(one!.flag).toBe(true);
    expect(jsonTextOf(one!.doc)).toBe('{"b":1,  "a":2, "a": 3}');
    expect(one!.reals).toEqual([1.5, Number.NaN, null, Number.NEGATIVE_INFINITY, -0]);
    expect(Object.is((one!.reals as number[])[4], -0)).toBe(true);
    expect(one!.blobs).toEqual([Buffer.from([0, 255]), null]);
    expect(one!.docs).toEqual([jsonNull, { a: 1 }, [1, 2], null]);
    expect(isJsonArray((one!.docs as unknown[])[2])).toBe(true);
    expect(one!.ints).toEqual([
      [9223372036854775807n, null],
      [-1, 2],
    ]);
    expect(two).toMatchObject({ r: Number.POSITIVE_INFINITY, flag: false, doc: jsonNull, n: 1.5 });
    // -2^63, which node:sqlite alone would read as a double, arrives exact.
    expect(three).toMatchObject({ i: -9223372036854775808n, n: 12345678901234567n });
  });

  it('refuses, naming the field, what SQLite would store changed', async () => {
    const { result, records } = await roundTrip([
      { id: 1, u: Number.NaN },
      { id: 2, r: -0 },
      { id: 3, i: 2n ** 63n },
      { id: 4, n: '0.1000000000000000055511151231257827' },
      { id: 5, n: '99999999999999999999' },
      { id: 6, t: 'lone \ud800' },
      { id: 7, doc: { a: Number.POSITIVE_INFINITY } },
      { id: 8, ints: [jsonNull] },
      { id: 9, u: -0, n: '1e2', t: 'a\u0000b' },
    ]);
    expect(result.rejected.map((r) => [r.record.id, r.reason])).toEqual([
      [1, `field "u": SQLite stores NaN as NULL; only a column of REAL affinity keeps it (as 'NaN')`],
      [2, 'field "r": SQLite stores -0 as 0 in a column of REAL affinity'],
      [3, `field "i": 9223372036854775808 is beyond SQLite's 64-bit integers`],
      [
        4,
        'field "n": SQLite would store "0.1000000000000000055511151231257827" as the number 0.1 in a column of NUMERIC affinity',
      ],
      [
        5,
        'field "n": SQLite would store "99999999999999999999" as the number 100000000000000000000 in a column of NUMERIC affinity',
      ],
      [6, 'field "t": text that is not valid Unicode (a lone surrogate)'],
      [7, 'field "doc": Infinity is not a JSON number'],
      [8, 'field "ints": JSON null in an array of another type'],
    ]);
    // An untyped column keeps -0; a NUMERIC one takes `1e2` as the number it is; TEXT keeps a NUL.
    expect(records).toHaveLength(1);
    expect(Object.is(records[0]!.u, -0)).toBe(true);
    expect(records[0]).toMatchObject({ id: 9, n: 100, t: 'a\u0000b' });
  });
});
