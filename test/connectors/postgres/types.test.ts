import { describe, expect, it } from 'vitest';
import { PostgresStore } from '../../../src/store/postgres/store.ts';
import { connect, freshDatabase } from '../../support/pg.ts';
import { pgSync, tableDigest } from './helpers.ts';

const DDL = `CREATE TABLE kinds (
  id bigint PRIMARY KEY,
  ts timestamptz,
  plain_ts timestamp,
  day date,
  amount numeric,
  big bigint,
  small int,
  ratio float8,
  flag boolean,
  doc jsonb,
  raw json,
  words text[],
  nums int[],
  decimals numeric[],
  stamps timestamptz[],
  blob bytea,
  span interval,
  note text,
  ident uuid,
  updated_at timestamptz NOT NULL
)`;

const ROWS = `INSERT INTO kinds VALUES
  (1, '2024-05-01 10:00:00.123456+00', '2024-05-01 10:00:00.654321', '2024-02-29', 12345678901234567890.123456789,
   9223372036854775807, -2147483648, 0.1, true, '{"a": [1, 2.5, null], "b": {"c": "ü \\" \\\\ \\t"}, "big": 12345678901234567890}',
   '{"kept":  "as written",  "a": 1}', ARRAY['a,b', 'c "d"', NULL, '', 'e\\f', E'tab\\tnew\\nline', '{}'], ARRAY[1, NULL, -3],
   ARRAY[0.1, 12345678901234567890.5], ARRAY['2024-05-01 10:00:00.000001+00'::timestamptz, NULL],
   '\\x00ff10', '1 year 2 mons 3 days 04:05:06.789', E'multi\\nline\\ttab \\\\ backslash ''quote''',
   'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2024-05-01 10:00:00.000001+00'),
  (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   '2024-05-01 10:00:00.000002+00'),
  (3, 'infinity', '-infinity', '0044-03-15 BC', 'NaN', -9223372036854775808, 0, 'NaN', false, '"just a string"', '[]',
   '{}', '{}', '{}', '{}', '\\x', '-1 day', '', '00000000-0000-0000-0000-000000000000', '2024-05-01 10:00:00.000002+00')`;

describe('PostgreSQL types', () => {
  it.each([
    ['records through Sluice', false],
    ['a native COPY to COPY', true],
  ])('round-trips every common type exactly, NULLs and edge values included, by %s', async (_, native) => {
    const a = await freshDatabase('types_src');
    const b = await freshDatabase('types_dst');
    const state = await freshDatabase('types_state', { store: true });
    const src = await connect(a.url);
    const dst = await connect(b.url);
    await src.query(DDL);
    await src.query(ROWS);
    await dst.query(DDL);
    const store = await PostgresStore.open(state.url);
    try {
      // Batches of one: every cursor is carried through the store between reads.
      const sync = pgSync({
        sourceUrl: a.url,
        targetUrl: b.url,
        store,
        source: { table: 'kinds' },
        target: { table: 'kinds' },
        spec: { batchSize: 1 },
      });
      // Without copyFrom the engine reads and writes records; with it, the target copies each page.
      const outcome = await sync.run({
        wrapTarget: (t) =>
          native ? t : { database: t.database, write: t.write.bind(t), writeIn: t.writeIn!.bind(t) },
      });
      // 3 rows in backfill; incremental goes on strictly after the high-water mark (updated_at, id),
      // so nothing is read twice, though two rows share the newest updated_at.
      expect(outcome.run.counters).toMatchObject({ read: 3, written: 3, rejected: 0 });
      // Every value as the source holds it, \`json\` text included (whitespace, key order).
      expect(await tableDigest(dst, 'kinds')).toEqual(await tableDigest(src, 'kinds'));
      const { rows } = await dst.query(
        'SELECT ts::text, doc::text, raw::text, amount::text FROM kinds WHERE id = 1',
      );
      expect(rows[0]).toEqual({
        ts: '2024-05-01 10:00:00.123456+00',
        doc: '{"a": [1, 2.5, null], "b": {"c": "ü \\" \\\\ \\t"}, "big": 12345678901234567890}',
        // Copied natively (COPY to COPY) or as records, \`json\` keeps the source's text exactly, spaces
        // and all (deliberate change, issue 11: records carried only its value).
        raw: '{"kept":  "as written",  "a": 1}',
        amount: '12345678901234567890.123456789',
      });
      // Records carry exact values: microseconds, bigint as a bigint (a string before issue 11), numeric as a string.
      const source = await sync.openSource();
      const page = await source.read({
        phase: 'backfill',
        cursor: null,
        limit: 1,
        highWaterMark: null,
        signal: AbortSignal.timeout(5000),
      });
      await source.close?.();
      expect(page.records[0]).toMatchObject({
        ts: '2024-05-01T10:00:00.123456Z',
        big: 9223372036854775807n,
        amount: '12345678901234567890.123456789',
      });
      expect(page.next).toEqual({ key: [1n] });
    } finally {
      await store.close();
    }
  });

  it('keeps microsecond cursors exact: rows a microsecond apart are neither skipped nor repeated', async () => {
    const a = await freshDatabase('micros_src');
    const src = await connect(a.url);
    await src.query('CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL)');
    await src.query(
      "INSERT INTO t SELECT g, '2024-05-01T10:00:00Z'::timestamptz + (g / 3) * interval '1 microsecond' FROM generate_series(1, 30) g",
    );
    const state = await freshDatabase('micros_state', { store: true });
    const store = await PostgresStore.open(state.url);
    try {
      const sync = pgSync({ sourceUrl: a.url, targetUrl: a.url, store, source: { table: 't' } });
      const source = await sync.openSource();
      const seen: number[] = [];
      let cursor = { k: ['2024-05-01T10:00:00.000001Z'] } as import('../../../src/core/types.ts').Cursor;
      for (let i = 0; i < 20; i++) {
        const page = await source.read({
          phase: 'incremental',
          cursor,
          limit: 4,
          highWaterMark: null,
          signal: AbortSignal.timeout(5000),
        });
        seen.push(...page.records.map((r) => Number(r.id)));
        cursor = page.next;
        if (page.done) break;
      }
      await source.close?.();
      expect(seen).toEqual(Array.from({ length: 28 }, (_, i) => i + 3));
    } finally {
      await store.close();
    }
  });
});
