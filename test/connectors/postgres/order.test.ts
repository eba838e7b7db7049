import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { Workspace } from '../../../src/runtime/workspace.ts';
import { PostgresStore } from '../../../src/store/postgres/store.ts';
import { connect, freshDatabase } from '../../support/pg.ts';
import { prng } from '../../support/seed.ts';
import { tempDir } from '../../support/tmp.ts';
import { pgSync } from './helpers.ts';

/**
 * Every decision about order — where a page ends, whether the backfill is done, where a lookback
 * sweep stops — follows PostgreSQL's own order: a text key under a linguistic collation (en-US ICU,
 * the default of many managed services) sorts differently from JavaScript's code-unit order, and a
 * comparison made in JavaScript ended such a backfill after its first page (issue 10, finding 0).
 */

// Letters in both cases, punctuation ICU mostly ignores at first level, accents and digits: orders
// that byte order, JavaScript and ICU all disagree on.
const ALPHABET = ['a', 'A', 'b', 'B', 'z', 'Z', '-', '_', ' ', '.', 'é', 'É', 'ß', '0', '9', 'ø', '中', '😀'];

function textKeys(count: number, seed: number): string[] {
  const next = prng(seed);
  const keys = new Set<string>();
  while (keys.size < count) {
    const length = 1 + Math.floor(next() * 8);
    let key = '';
    for (let i = 0; i < length; i++) key += ALPHABET[Math.floor(next() * ALPHABET.length)];
    keys.add(key);
  }
  return [...keys];
}

type Case = {
  name: string;
  /** Column definitions of the key, and the key's field names. */
  columns: string;
  key: string[];
  /** One row's key values as SQL, for row `i` of `keys`. */
  values: (i: number, keys: string[]) => string;
};

const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;

const CASES: Case[] = [
  {
    name: 'text under en-US ICU collation',
    columns: 'id text COLLATE "en-US-x-icu" PRIMARY KEY',
    key: ['id'],
    values: (i, keys) => quote(keys[i]!),
  },
  {
    name: 'text under "C" collation',
    columns: 'id text COLLATE "C" PRIMARY KEY',
    key: ['id'],
    values: (i, keys) => quote(keys[i]!),
  },
  {
    name: 'uuid',
    columns: 'id uuid PRIMARY KEY',
    key: ['id'],
    values: (i) => `md5('${i}')::uuid`,
  },
  {
    name: 'numeric with mixed scales and signs',
    columns: 'id numeric PRIMARY KEY',
    key: ['id'],
    // Distinct integer parts, fraction scales 1 to 3, both signs: 9.5 < 10.05 as numbers, not as text.
    values: (i) => `${i % 2 ? '-' : ''}${i}.${'0'.repeat(i % 3)}5`,
  },
  {
    name: 'a composite key: ICU text, then an integer',
    columns: 'id text COLLATE "en-US-x-icu", n int, PRIMARY KEY (id, n)',
    key: ['id', 'n'],
    values: (i, keys) => `${quote(keys[Math.floor(i / 3)]!)}, ${i % 3}`,
  },
];

async function digestOf(client: pg.ClientBase): Promise<{ count: number; md5: string }> {
  const { rows } = await client.query(
    `SELECT count(*)::int AS count, coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE "C")), '') AS md5 FROM k t`,
  );
  return rows[0] as { count: number; md5: string };
}

/** Source and target databases with the table `k` keyed as `c` says, `count` rows in the source. */
async function tables(c: Case, count: number, seed: number, label: string) {
  const keys = textKeys(count, seed);
  const a = await freshDatabase(`${label}_src`);
  const b = await freshDatabase(`${label}_dst`);
  const src = await connect(a.url);
  const dst = await connect(b.url);
  const ddl = `CREATE TABLE k (${c.columns}, note text, updated_at timestamptz NOT NULL)`;
  await src.query(ddl);
  await dst.query(ddl);
  const rows = Array.from(
    { length: count },
    (_, i) =>
      `(${c.values(i, keys)}, 'v0', '2024-01-01T00:00:00Z'::timestamptz + ${i % 50} * interval '1 ms')`,
  );
  await src.query(`INSERT INTO k VALUES ${rows.join(', ')}`);
  return { a, b, src, dst };
}

describe('PostgreSQL order: the database decides where a page ends', () => {
  it.each(CASES)('backfills, then sweeps a tie block incrementally, keyed by $name', async (c) => {
    const count = 3000;
    const { a, b, src, dst } = await tables(c, count, 7, 'order');
    const state = await freshDatabase('order_state', { store: true });
    const store = await PostgresStore.open(state.url);
    try {
      const sync = pgSync({
        sourceUrl: a.url,
        targetUrl: b.url,
        store,
        source: { table: 'k' },
        target: { table: 'k' },
        spec: { name: 'k', key: c.key, batchSize: 397, map: (r) => r, lookbackMs: 3_600_000 },
      });
      const backfill = await sync.run({ stopAfterBackfill: true });
      expect(backfill.checkpoint.phase).toBe('incremental');
      expect(backfill.run.counters.read).toBe(count);
      expect(await digestOf(dst)).toEqual(await digestOf(src));
      // 2,000 rows change in one instant: a tie block the incremental read and the sweep must page through.
      await src.query(
        `UPDATE k SET note = 'v1', updated_at = '2024-06-01T00:00:00Z' WHERE ctid IN (SELECT ctid FROM k ORDER BY note, ${c.key.join(', ')} LIMIT 2000)`,
      );
      const incremental = await sync.run();
      expect(incremental.more).toBe(false);
      expect(incremental.run.counters.written).toBe(2000);
      expect(await digestOf(dst)).toEqual(await digestOf(src));
      // Nothing changed since: the next run's sweep reads the window again and writes nothing.
      const idle = await sync.run();
      expect(idle.run.counters).toMatchObject({ written: 0, rejected: 0 });
      expect(idle.run.counters.unchanged).toBe(idle.run.counters.read);
    } finally {
      await store.close();
    }
  });
});

describe("PostgreSQL order: a partitioned backfill splits in the database's own order", () => {
  it.each(CASES)('moves every row once over 4 partitions, keyed by $name', async (c) => {
    const count = 3000;
    const { a, b, src, dst } = await tables(c, count, 11, 'split');
    const state = await freshDatabase('split_state', { store: true });
    const ws = await Workspace.fromConfig(
      {
        store: state.url,
        connections: { a: { type: 'postgres', url: a.url }, b: { type: 'postgres', url: b.url } },
        syncs: {
          k: {
            source: { connection: 'a', table: 'k' },
            target: { connection: 'b', table: 'k' },
            key: c.key,
            cursor: { field: 'updated_at', lookback: '1h' },
            batch: { size: 397 },
            map: (r: Record<string, unknown>) => r,
            backfill: { partitions: 4 },
          },
        },
      },
      tempDir('split'),
    );
    try {
      let runs = 0;
      while ((await ws.store.getCheckpoint('k'))?.phase !== 'incremental' && runs++ < 50)
        await ws.run('k', { trigger: 'backfill' });
      const parts = await Promise.all([1, 2, 3, 4].map((i) => ws.store.getCheckpoint(`k#${i}`)));
      expect(parts.map((p) => p?.backfillDone)).toEqual([750, 750, 750, 750]);
      expect(await digestOf(dst)).toEqual(await digestOf(src));
      // The incremental runs after the partitions see what changed since the split, and nothing twice:
      // the partitions' fingerprints are the sync's.
      await src.query(
        `UPDATE k SET note = 'v1', updated_at = '2024-06-01T00:00:00Z' WHERE ctid IN (SELECT ctid FROM k ORDER BY note, ${c.key.join(', ')} LIMIT 500)`,
      );
      const incremental = await ws.run('k', { trigger: 'api' });
      expect(incremental.run.counters.written).toBe(500);
      expect(await digestOf(dst)).toEqual(await digestOf(src));
      const idle = await ws.run('k', { trigger: 'api' });
      expect(idle.run.counters).toMatchObject({ written: 0, rejected: 0 });
    } finally {
      await ws.close();
    }
  });
});
