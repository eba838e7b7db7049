import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { partitionName } from '../../src/core/partitions.ts';
import { Workspace } from '../../src/runtime/workspace.ts';
import { Random } from '../chaos/random.ts';
import { digest, execSql, seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';

/** A SQLite → SQLite contacts sync whose backfill is split into `partitions` ranges. */
async function setUp(options: {
  rows: number;
  partitions: number;
  parallel?: boolean;
  batch?: number;
  /** A folder set up before (its files and store kept); default: a new one. */
  dir?: string;
}) {
  const dir = options.dir ?? tempDir('partitions');
  if (!options.dir) seedContacts(join(dir, 'a.db'), options.rows, { perSecond: 50 });
  const ws = await Workspace.fromConfig(
    {
      connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' } },
      syncs: {
        contacts: {
          source: { connection: 'a', table: 'contacts' },
          target: { connection: 'b', table: 'contacts' },
          key: 'id',
          cursor: 'updated_at',
          batch: { size: options.batch ?? 200 },
          maxRunDuration: '30ms',
          backfill: { partitions: options.partitions, parallel: options.parallel ?? true },
        },
      },
    },
    dir,
  );
  /** Runs the sync until its backfill is done; returns how many runs of the sync it took. */
  const backfill = async (limit = 500) => {
    for (let runs = 1; runs <= limit; runs++) {
      const outcome = await ws.run('contacts', { trigger: runs === 1 ? 'backfill' : 'rerun' });
      if (outcome.checkpoint.phase === 'incremental') return runs;
    }
    throw new Error(`the backfill was not done after ${limit} runs`);
  };
  const equal = () => expect(digest(join(dir, 'b.db'))).toEqual(digest(join(dir, 'a.db')));
  return { dir, ws, backfill, equal, close: () => ws.close() };
}

describe('a partitioned backfill', () => {
  for (const parallel of [true, false]) {
    it(`moves every record once over its partitions (${parallel ? 'at once' : 'one after another'}), then goes incremental from the split's high-water mark`, async () => {
      const t = await setUp({ rows: 10_000, partitions: 4, parallel });
      try {
        const runs = await t.backfill();
        expect(runs).toBeGreaterThan(1);
        t.equal();
        const parts = await Promise.all(
          [1, 2, 3, 4].map((i) => t.ws.store.getCheckpoint(partitionName('contacts', i))),
        );
        // About a quarter each, every record read once over all of them.
        for (const cp of parts) {
          expect(cp?.phase).toBe('incremental');
          expect(cp?.backfillDone).toBeGreaterThan(2000);
          expect(cp?.backfillDone).toBeLessThan(3000);
        }
        expect(parts.reduce((n, cp) => n + cp!.backfillDone, 0)).toBe(10_000);
        const cp = await t.ws.store.getCheckpoint('contacts');
        expect(cp).toMatchObject({ phase: 'incremental', backfillDone: 10_000, backfillEstimate: 10_000 });
        expect(cp?.totals.written).toBe(10_000);
        // Each partition's runs are recorded under its own name; the sync's runs count what they moved.
        const allRuns = await t.ws.store.listRuns({ limit: 10_000 });
        const names = new Set(allRuns.map((r) => r.sync));
        const ownRuns = allRuns.filter((r) => r.sync === 'contacts' && r.phase === 'backfill');
        expect(ownRuns.reduce((n, r) => n + r.counters.read, 0)).toBe(10_000);
        expect([...names].sort()).toEqual([
          'contacts',
          'contacts#1',
          'contacts#2',
          'contacts#3',
          'contacts#4',
        ]);

        // What changed since the split is read by the sync's own incremental runs.
        execSql(
          join(t.dir, 'a.db'),
          "UPDATE contacts SET email = 'changed', updated_at = '2030-01-01T00:00:00Z' WHERE id % 7 = 0",
        );
        seedContacts(join(t.dir, 'a.db'), 300, { firstId: 10_001, start: Date.UTC(2030, 0, 2) });
        for (let i = 0; i < 50; i++) if (!(await t.ws.run('contacts', { trigger: 'api' })).more) break;
        t.equal();
        const [status] = await t.ws.status();
        expect(status).toMatchObject({ phase: 'incremental', progress: 1, backfillDone: 10_000 });
      } finally {
        await t.close();
      }
    });
  }

  it('shows the progress of its partitions in status while they move', async () => {
    const t = await setUp({ rows: 6000, partitions: 3, batch: 100 });
    try {
      await t.ws.run('contacts', { trigger: 'backfill' });
      const [status] = await t.ws.status();
      expect(status?.phase).toBe('backfill');
      expect(status?.backfillEstimate).toBe(6000);
      expect(status?.backfillDone).toBeGreaterThan(0);
      expect(status?.backfillDone).toBeLessThan(6000);
      expect(status?.totals?.read).toBe(status?.backfillDone);
    } finally {
      await t.close();
    }
  });

  it('splits a table smaller than its partitions into the ranges there are', async () => {
    const t = await setUp({ rows: 2, partitions: 5 });
    try {
      await t.backfill();
      t.equal();
      const cp = await t.ws.store.getCheckpoint('contacts');
      expect(cp?.backfillDone).toBe(2);
    } finally {
      await t.close();
    }
  });

  it('splits again from scratch after a split cut short (partitions saved, the sync not)', async () => {
    const t = await setUp({ rows: 3000, partitions: 3 });
    try {
      // A split that died after saving one partition, with a range that no longer fits.
      await t.ws.store.saveCheckpoint({
        sync: partitionName('contacts', 1),
        phase: 'backfill',
        cursor: null,
        sweep: null,
        highWaterMark: { key: [10] },
        totals: { batches: 0, read: 0, written: 0, unchanged: 0, rejected: 0 },
        backfillDone: 0,
        backfillEstimate: 10,
        backfillEstimateExact: true,
        backfillStartedAt: null,
        backfillEndedAt: null,
        updatedAt: new Date().toISOString(),
        version: 1,
      });
      await t.backfill();
      t.equal();
      expect((await t.ws.store.getCheckpoint('contacts'))?.backfillDone).toBe(3000);
    } finally {
      await t.close();
    }
  });

  for (const now of [2, 1]) {
    it(`keeps the split it made when backfill.partitions changes to ${now} mid-way: nothing lost`, async () => {
      const t = await setUp({ rows: 8000, partitions: 4, batch: 100 });
      await t.ws.run('contacts', { trigger: 'backfill' });
      await t.close();
      // The same store, the sync now configured with fewer partitions.
      const again = await setUp({ rows: 0, partitions: now, batch: 100, dir: t.dir });
      try {
        await again.backfill();
        again.equal();
        expect((await again.ws.store.getCheckpoint('contacts'))?.backfillDone).toBe(8000);
      } finally {
        await again.close();
      }
    });
  }

  it('forgets its partitions on reset, and splits anew', async () => {
    const t = await setUp({ rows: 2000, partitions: 2 });
    try {
      await t.ws.run('contacts', { trigger: 'backfill' });
      await t.ws.store.resetSync('contacts');
      const left = (await t.ws.store.listCheckpoints()).map((cp) => cp.sync);
      expect(left).toEqual([]);
      await t.backfill();
      t.equal();
    } finally {
      await t.close();
    }
  });

  it('refuses a source that cannot split its keys, saying so', async () => {
    const dir = tempDir('partitions');
    writeFileSync(join(dir, 'rows.jsonl'), '{"id":1}\n{"id":2}\n');
    const ws = await Workspace.fromConfig(
      {
        connections: { f: { type: 'files' }, b: { type: 'sqlite', path: 'b.db' } },
        syncs: {
          rows: {
            source: { connection: 'f', path: 'rows.jsonl' },
            target: { connection: 'b', table: 'rows' },
            key: 'id',
            backfill: { partitions: 2 },
          },
        },
      },
      dir,
    );
    try {
      await expect(ws.run('rows', { trigger: 'backfill' })).rejects.toThrow(/cannot split its keys/);
    } finally {
      await ws.close();
    }
  });

  // Seeded: random sizes, partition counts, batches and budgets; the target must equal the source.
  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: random sizes, partitions, batches and budgets end with target equal to source`, async () => {
      const random = new Random(seed);
      const t = await setUp({
        rows: random.int(1, 5000),
        partitions: random.int(1, 8),
        parallel: random.int(0, 1) === 1,
        batch: random.int(1, 400),
      });
      try {
        await t.backfill(5000);
        t.equal();
      } finally {
        await t.close();
      }
    });
  }
});

/** The ids of the records a JSON Lines file holds, a line each. */
const idsIn = (path: string): number[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => (JSON.parse(line) as { id: number }).id);

describe('a partitioned backfill into a JSON Lines file', () => {
  const config = (parallel: boolean) => ({
    connections: { a: { type: 'sqlite', path: 'a.db' }, out: { type: 'files' } },
    syncs: {
      contacts: {
        source: { connection: 'a', table: 'contacts' },
        target: { connection: 'out', path: 'contacts.jsonl' },
        key: 'id',
        cursor: 'updated_at',
        batch: { size: 100 },
        maxRunDuration: '30ms',
        backfill: { partitions: 4, parallel },
      },
    },
  });

  it('appends every record once, partitions one after another, and keeps them all when the file is opened again', async () => {
    const dir = tempDir('partitions-jsonl');
    seedContacts(join(dir, 'a.db'), 6_000, { perSecond: 50 });
    const ws = await Workspace.fromConfig(config(false), dir);
    try {
      for (let runs = 1; ; runs++) {
        const outcome = await ws.run('contacts', { trigger: runs === 1 ? 'backfill' : 'rerun' });
        if (outcome.checkpoint.phase === 'incremental') break;
        if (runs > 500) throw new Error('the backfill was not done after 500 runs');
      }
      // An incremental run opens the file again: what it finds confirmed is what it keeps.
      await ws.run('contacts', { trigger: 'rerun' });
      const ids = idsIn(join(dir, 'contacts.jsonl'));
      expect(ids.length).toBe(6_000);
      expect(new Set(ids).size).toBe(6_000);
    } finally {
      await ws.close();
    }
  });

  it('goes on with a split made before one after another when the config no longer splits (found by the CLI chaos test, seed 4)', async () => {
    const dir = tempDir('partitions-jsonl');
    seedContacts(join(dir, 'a.db'), 3_000, { perSecond: 50 });
    const split = await Workspace.fromConfig(config(false), dir);
    try {
      // One run of the split backfill: its partitions have their checkpoints, most still to move.
      await split.run('contacts', { trigger: 'backfill' });
    } finally {
      await split.close();
    }
    // `backfill` left out: partitions 1, parallel true by default, and the split stands.
    const unsplit = config(false);
    delete (unsplit.syncs.contacts as { backfill?: unknown }).backfill;
    const ws = await Workspace.fromConfig(unsplit, dir);
    try {
      for (let runs = 1; ; runs++) {
        const outcome = await ws.run('contacts', { trigger: 'rerun' });
        if (outcome.checkpoint.phase === 'incremental') break;
        if (runs > 500) throw new Error('the backfill was not done after 500 runs');
      }
      const ids = idsIn(join(dir, 'contacts.jsonl'));
      expect(new Set(ids).size).toBe(3_000);
      expect(ids.length).toBe(3_000);
    } finally {
      await ws.close();
    }
  });

  // Moving at once, the partitions' targets appended to one file, each after the length it had
  // confirmed itself, and cut what the others had confirmed when the file was opened again.
  it('is refused with partitions moving at once, naming the field', async () => {
    const dir = tempDir('partitions-jsonl');
    await expect(Workspace.fromConfig(config(true), dir)).rejects.toThrow(
      /syncs\.contacts\.backfill\.parallel: a files target has one writer at a time/,
    );
  });
});
