import { describe, expect, it } from 'vitest';
import type { Target } from '../../src/core/ports.ts';
import { PostgresStore } from '../../src/store/postgres/store.ts';
import { pgSync } from '../connectors/postgres/helpers.ts';
import { connect, freshDatabase } from '../support/pg.ts';

describe('native copy between columns whose full types differ', () => {
  it('declines numeric(38,10) into numeric(10,2) and timestamptz into timestamptz(3); the ordinary path refuses what would round', async () => {
    const a = await freshDatabase('declines_src');
    const b = await freshDatabase('declines_dst');
    const state = await freshDatabase('declines_state', { store: true });
    const src = await connect(a.url);
    const dst = await connect(b.url);
    await dst.query("SET TimeZone = 'UTC'");
    await src.query('CREATE TABLE t (id int PRIMARY KEY, amount numeric(38,10), at timestamptz)');
    await dst.query('CREATE TABLE t (id int PRIMARY KEY, amount numeric(10,2), at timestamptz(3))');
    await src.query(`INSERT INTO t VALUES
      (1, 1.1234567890, NULL),
      (2, 1.5000000000, '2024-05-01 10:00:00.123+00'),
      (3, 12345678.1200000000, NULL),
      (4, NULL, '2024-05-01 10:00:00.123456+00')`);
    const store = await PostgresStore.open(state.url);
    try {
      const sync = pgSync({
        sourceUrl: a.url,
        targetUrl: b.url,
        store,
        source: { table: 't' },
        target: { table: 't' },
        cursorField: null,
      });
      const copies: unknown[] = [];
      const outcome = await sync.run({
        stopAfterBackfill: true,
        wrapTarget: (t: Target) => ({
          database: t.database,
          write: t.write.bind(t),
          copyFrom: async (...args: Parameters<NonNullable<Target['copyFrom']>>) => {
            const result = await t.copyFrom!(...args);
            copies.push(result);
            return result;
          },
        }),
      });
      // Copied COPY to COPY, numeric(10,2) and timestamptz(3) would have rounded rows 1 and 4 without a word.
      expect(copies).toEqual([null]);
      expect(outcome.run.counters).toMatchObject({ read: 4, written: 2, rejected: 2 });
      const letters = await store.listDeadLetters({ sync: 'contacts' });
      expect(letters.map((l) => [l.key, l.reason])).toEqual([
        [[1], 'field "amount": 1.1234567890 has more decimal places than numeric(10,2) keeps'],
        [
          [4],
          'field "at": 2024-05-01T10:00:00.123456Z has more fractional digits of a second than timestamptz(3) keeps',
        ],
      ]);
      const { rows } = await dst.query('SELECT id, amount::text, at::text FROM t ORDER BY id');
      expect(rows).toEqual([
        { id: 2, amount: '1.50', at: '2024-05-01 10:00:00.123+00' },
        { id: 3, amount: '12345678.12', at: null },
      ]);
    } finally {
      await store.close();
    }
  });
});
