import { describe, expect, it, onTestFinished } from 'vitest';
import type { BatchCommit, Checkpoint, Store } from '../../src/core/ports.ts';
import { type Counters, type Json, zeroCounters } from '../../src/core/types.ts';

/** Makes a fresh, empty store whose clock is `now`. */
export type StoreFactory = (options: { now: () => number }) => Promise<Store>;

const T0 = Date.parse('2024-05-01T10:00:00.000Z');

const HOLDER = 'elsewhere:1';

const counts = (c: Partial<Counters>): Counters => ({ ...zeroCounters(), ...c });

/** A checkpoint at `version` (1 for its first save). */
function checkpoint(sync: string, cursor: Json, at: number, read = 0, version = 1): Checkpoint {
  return {
    sync,
    phase: 'backfill',
    cursor,
    sweep: null,
    highWaterMark: { key: [1000], k: ['2024-05-01T10:00:00.123456Z', 1000] },
    totals: counts({ batches: read ? 1 : 0, read, written: read }),
    backfillDone: read,
    backfillEstimate: 1000,
    backfillEstimateExact: false,
    backfillStartedAt: new Date(T0).toISOString(),
    backfillEndedAt: null,
    updatedAt: new Date(at).toISOString(),
    version,
  };
}

/**
 * The behaviour every Store keeps, whatever its engine: run it against each implementation so
 * SQLite and PostgreSQL stay interchangeable behind one `store:` setting.
 */
export function storeConformance(name: string, factory: StoreFactory): void {
  describe(`Store conformance: ${name}`, () => {
    async function open(): Promise<{ store: Store; clock: { t: number } }> {
      const clock = { t: T0 };
      const store = await factory({ now: () => clock.t });
      onTestFinished(() => store.close());
      return { store, clock };
    }

    async function started(store: Store, sync = 's1') {
      return store.startRun({
        sync,
        trigger: 'run',
        phase: 'backfill',
        holder: HOLDER,
        leaseMs: 1000,
      });
    }

    const end = { holder: HOLDER, status: 'succeeded', more: false } as const;

    function commitOf(runId: number, cp: Checkpoint, extra: Partial<BatchCommit> = {}): BatchCommit {
      return {
        sync: cp.sync,
        runId,
        holder: HOLDER,
        batch: 1,
        cursorFrom: null,
        checkpoint: cp,
        counters: counts({ batches: 1, read: 3, written: 2, unchanged: 4, rejected: 1 }),
        deadLetters: [
          { key: [7], record: { id: 7, name: 'x\u0000y' }, reason: 'null value in column "email"' },
        ],
        leaseMs: 1000,
        ...extra,
      };
    }

    it('saves, overwrites and lists checkpoints, keeping integers beyond 2^53 exact', async () => {
      const { store } = await open();
      expect(await store.getCheckpoint('a')).toBeNull();
      const first = checkpoint('b', { key: [9007199254740993n, '9007199254740993'] }, T0);
      await store.saveCheckpoint(first);
      await store.saveCheckpoint(checkpoint('a', null, T0));
      expect(await store.getCheckpoint('b')).toEqual(first);
      const second = {
        ...checkpoint('b', { k: ['2024-05-01T10:00:00.123456Z', 5] }, T0 + 1, 10, 2),
        phase: 'incremental' as const,
        sweep: { k: ['2024-05-01T09:59:00.000Z'] },
        backfillEstimateExact: true,
      };
      await store.saveCheckpoint(second);
      expect(await store.getCheckpoint('b')).toEqual(second);
      expect((await store.listCheckpoints()).map((c) => c.sync)).toEqual(['a', 'b']);
    });

    it('never moves a checkpoint backwards: a save must follow the saved version', async () => {
      const { store } = await open();
      await store.saveCheckpoint(checkpoint('s1', { key: [1] }, T0));
      const v2 = checkpoint('s1', { key: [5] }, T0 + 1, 5, 2);
      await store.saveCheckpoint(v2);
      // A stale writer: it read version 1 and saves its own version 2 (an older position).
      await expect(store.saveCheckpoint(checkpoint('s1', { key: [3] }, T0 + 2, 3, 2))).rejects.toMatchObject({
        code: 'CHECKPOINT_CONFLICT',
      });
      // A first save of a checkpoint that exists is refused too (a reset raced by an old run, say).
      await expect(store.saveCheckpoint(checkpoint('s1', { key: [2] }, T0 + 2, 2, 1))).rejects.toMatchObject({
        code: 'CHECKPOINT_CONFLICT',
      });
      const run = await started(store);
      await expect(
        store.commitBatch(commitOf(run.id, checkpoint('s1', { key: [4] }, T0 + 3, 4, 2))),
      ).rejects.toMatchObject({ code: 'CHECKPOINT_CONFLICT' });
      expect(await store.getCheckpoint('s1')).toEqual(v2);
      expect((await store.getRun(run.id))?.counters.batches).toBe(0);
      expect(await store.listDeadLetters({ sync: 's1' })).toEqual([]);
    });

    it('refuses every write of a run that no longer holds its sync: ended, or held by another', async () => {
      const { store, clock } = await open();
      const run = await started(store);
      await store.saveCheckpoint(checkpoint('s1', { key: [1] }, T0));
      // Another holder's commit for this run is refused, and saves nothing.
      await expect(
        store.commitBatch({
          ...commitOf(run.id, checkpoint('s1', { key: [3] }, T0, 3, 2)),
          holder: 'thief:2',
        }),
      ).rejects.toMatchObject({ code: 'RUN_FENCED' });
      await expect(store.finishRun(run.id, { ...end, holder: 'thief:2' })).resolves.toMatchObject({
        status: 'running',
      });
      // The run times out (its lane is given away); its late batch and its late end change nothing.
      await store.finishRun(run.id, {
        holder: HOLDER,
        status: 'timed_out',
        more: true,
        errorCode: 'RUN_TIMED_OUT',
        errorMessage: 'lane released',
      });
      clock.t += 10;
      await expect(
        store.commitBatch(commitOf(run.id, checkpoint('s1', { key: [3] }, T0, 3, 2))),
      ).rejects.toMatchObject({ code: 'RUN_FENCED' });
      expect(await store.getCheckpoint('s1')).toMatchObject({ cursor: { key: [1] }, version: 1 });
      expect(await store.getRun(run.id)).toMatchObject({ status: 'timed_out', counters: zeroCounters() });
      expect(await store.listDeadLetters({ sync: 's1' })).toEqual([]);
    });

    it('commits a batch: checkpoint, run counters, lease and dead letters together', async () => {
      const { store } = await open();
      const run = await started(store);
      const cp = checkpoint('s1', { key: [3] }, T0, 3);
      await store.commitBatch(commitOf(run.id, cp, { cursorFrom: { key: [0] } }));
      expect(await store.getCheckpoint('s1')).toEqual(cp);
      expect((await store.getRun(run.id))?.counters).toEqual(
        counts({ batches: 1, read: 3, written: 2, unchanged: 4, rejected: 1 }),
      );
      const [dl, ...rest] = await store.listDeadLetters({ sync: 's1' });
      expect(rest).toEqual([]);
      expect(dl).toMatchObject({
        sync: 's1',
        runId: run.id,
        batch: 1,
        cursorFrom: { key: [0] },
        cursorTo: { key: [3] },
        key: [7],
        record: { id: 7, name: 'x\u0000y' },
        reason: 'null value in column "email"',
        attempts: 1,
        createdAt: new Date(T0).toISOString(),
        lastFailedAt: new Date(T0).toISOString(),
        closedAt: null,
        closedByRun: null,
        resolution: null,
      });
    });

    it('commits nothing of a batch that fails part-way', async () => {
      const { store } = await open();
      const run = await started(store);
      const before = checkpoint('s1', { key: [3] }, T0, 3);
      await store.commitBatch(commitOf(run.id, before));
      // The second dead letter cannot be stored (a cycle is not JSON): the checkpoint written before it must go too.
      const cyclic: Record<string, unknown> = { id: 10 };
      cyclic.self = cyclic;
      const bad = commitOf(run.id, checkpoint('s1', { key: [6] }, T0 + 1, 6, 2), {
        batch: 2,
        fingerprints: [{ key: '[8]', hash: 'h8', cursorMs: 1 }],
        deadLetters: [
          { key: [8], record: { id: 8 }, reason: 'first' },
          { key: [10], record: cyclic as unknown as Json, reason: 'second' },
        ],
      });
      await expect(store.commitBatch(bad)).rejects.toThrow();
      expect(await store.getCheckpoint('s1')).toEqual(before);
      expect((await store.getRun(run.id))?.counters.batches).toBe(1);
      expect(await store.listDeadLetters({ sync: 's1' })).toHaveLength(1);
      expect(await store.fingerprints('s1', ['[8]'])).toEqual(new Map());
    });

    it('joins a store transaction where it offers one, and rolls back with it', async (ctx) => {
      const { store } = await open();
      // A store names its database exactly when a target there can join its transaction: one
      // without the other would let the engine believe a batch and its checkpoint commit together.
      expect(store.transaction === undefined, 'transaction offered iff database named').toBe(
        store.database === undefined,
      );
      // A store with neither (SQLite: targets never share its file) shows this case as skipped.
      if (!store.transaction) return ctx.skip(`${name} offers no transaction for a target to join`);
      const run = await started(store);
      const cp = checkpoint('s1', { key: [3] }, T0, 3);
      await expect(
        store.transaction(async (tx) => {
          await store.commitBatch(commitOf(run.id, cp), tx);
          throw new Error('the target failed after the store wrote');
        }),
      ).rejects.toThrow('the target failed');
      expect(await store.getCheckpoint('s1')).toBeNull();
      expect(await store.listDeadLetters({})).toEqual([]);
      expect((await store.getRun(run.id))?.counters.batches).toBe(0);
      await store.transaction((tx) => store.commitBatch(commitOf(run.id, cp), tx));
      expect(await store.getCheckpoint('s1')).toEqual(cp);
    });

    it('refuses a second live run, and opens one once the first finished', async () => {
      const { store } = await open();
      const run = await started(store);
      expect(run).toMatchObject({
        sync: 's1',
        status: 'running',
        phase: 'backfill',
        holder: 'elsewhere:1',
        endedAt: null,
      });
      await expect(started(store)).rejects.toMatchObject({ code: 'SYNC_BUSY' });
      // Another sync is not blocked.
      await started(store, 's2');
      const done = await store.finishRun(run.id, end);
      expect(done).toMatchObject({ status: 'succeeded', more: false, errorCode: null });
      const next = await started(store);
      expect(next.id).not.toBe(run.id);
    });

    it('holds a lane: another sync of the bundle is refused until the run ends; other lanes go on', async () => {
      const { store } = await open();
      const start = (sync: string, lane: string | null) =>
        store.startRun({
          sync,
          trigger: 'run',
          phase: 'backfill',
          holder: HOLDER,
          leaseMs: 60_000,
          lane,
        });
      const a = await start('a', 'bundle:crm');
      expect(a.lane).toBe('bundle:crm');
      await expect(start('b', 'bundle:crm')).rejects.toMatchObject({ code: 'LANE_BUSY' });
      await expect(start('b', 'webhook:b')).resolves.toMatchObject({ sync: 'b', lane: 'webhook:b' });
      await expect(start('c', null)).resolves.toMatchObject({ sync: 'c', lane: null });
      await store.finishRun(a.id, end);
      await expect(start('d', 'bundle:crm')).resolves.toMatchObject({ sync: 'd' });
    });

    it('keeps the first end of a run: a late end does not overwrite timed_out', async () => {
      const { store } = await open();
      const run = await started(store);
      await store.finishRun(run.id, {
        holder: HOLDER,
        status: 'timed_out',
        more: true,
        errorCode: 'RUN_TIMED_OUT',
        errorMessage: 'lane released',
      });
      const late = await store.finishRun(run.id, end);
      expect(late).toMatchObject({ status: 'timed_out', errorCode: 'RUN_TIMED_OUT' });
    });

    it('abandons a run whose lease expired, moving the clock rather than waiting', async () => {
      const { store, clock } = await open();
      const run = await started(store);
      clock.t += 500;
      // A confirmed batch extends the lease from now.
      const cp = checkpoint('s1', { key: [3] }, clock.t, 3);
      await store.commitBatch(commitOf(run.id, cp, { deadLetters: [], leaseMs: 2000 }));
      const lastSign = clock.t;
      clock.t += 1200;
      await expect(started(store)).rejects.toMatchObject({ code: 'SYNC_BUSY' });
      clock.t += 1000;
      const next = await started(store);
      const old = await store.getRun(run.id);
      // It ends at its last sign of life (the batch), not when it was found dead: the time it could write.
      expect(old).toMatchObject({
        status: 'abandoned',
        errorCode: 'HOLDER_GONE',
        endedAt: new Date(lastSign).toISOString(),
      });
      expect(old?.errorMessage).toContain('elsewhere:1');
      expect(next.status).toBe('running');
    });

    it('renews the lease of a run only for its holder while it runs: a heartbeat', async () => {
      const { store, clock } = await open();
      const run = await started(store);
      clock.t += 800;
      expect(await store.renewRun(run.id, HOLDER, 1000)).toBe(true);
      expect(await store.renewRun(run.id, 'thief:2', 60_000)).toBe(false);
      clock.t += 900;
      // Still held: the heartbeat moved the lease to 1,800 ms from the start.
      await expect(started(store)).rejects.toMatchObject({ code: 'SYNC_BUSY' });
      clock.t += 200;
      await started(store);
      expect(await store.getRun(run.id)).toMatchObject({
        status: 'abandoned',
        endedAt: new Date(T0 + 800).toISOString(),
      });
      expect(await store.renewRun(run.id, HOLDER, 1000)).toBe(false);
    });

    it('records how a run ended and lists runs newest first', async () => {
      const { store } = await open();
      const a = await started(store);
      await store.finishRun(a.id, {
        holder: HOLDER,
        status: 'failed',
        more: true,
        errorCode: 'PG_57P01',
        errorMessage: 'terminated',
      });
      const b = await started(store);
      const c = await started(store, 'other');
      expect(await store.getRun(a.id)).toMatchObject({
        status: 'failed',
        more: true,
        errorCode: 'PG_57P01',
        errorMessage: 'terminated',
      });
      expect(await store.getRun(999_999)).toBeNull();
      expect((await store.listRuns({})).map((r) => r.id)).toEqual([c.id, b.id, a.id]);
      expect((await store.listRuns({ sync: 's1' })).map((r) => r.id)).toEqual([b.id, a.id]);
      expect((await store.listRuns({ limit: 1 })).map((r) => r.id)).toEqual([c.id]);
    });

    it('keeps data by key, and lists by a prefix where % and _ mean themselves', async () => {
      const { store, clock } = await open();
      const { data } = store;
      expect(await data.get('missing')).toBeUndefined();
      await data.set('a%b', { n: 1 });
      await data.set('aXb', [1, 'two', null]);
      await data.set('a_1', 'text');
      await data.set('ab_', true);
      await data.set('a%c', 0);
      clock.t += 1000;
      await data.set('a%b', { n: 2, nested: { z: 1, a: 2 } });
      expect(await data.get('a%b')).toEqual({ n: 2, nested: { z: 1, a: 2 } });
      expect(await data.get('aXb')).toEqual([1, 'two', null]);
      expect((await data.list('a%')).map((e) => e.key)).toEqual(['a%b', 'a%c']);
      expect((await data.list('a_')).map((e) => e.key)).toEqual(['a_1']);
      expect((await data.list()).map((e) => e.key)).toEqual(['a%b', 'a%c', 'aXb', 'a_1', 'ab_']);
      const [first] = await data.list('a%b');
      expect(first).toEqual({
        key: 'a%b',
        value: { n: 2, nested: { z: 1, a: 2 } },
        updatedAt: new Date(clock.t).toISOString(),
      });
      expect(await data.del('a%b')).toBe(true);
      expect(await data.del('a%b')).toBe(false);
      expect(await data.get('a%b')).toBeUndefined();
    });

    it('lists dead letters by sync, and closes them by key or id with the run and the reason', async () => {
      const { store, clock } = await open();
      const r1 = await started(store, 's1');
      const r2 = await started(store, 's2');
      await store.commitBatch(
        commitOf(r1.id, checkpoint('s1', { key: [1] }, T0, 1), {
          deadLetters: [
            { key: [7], record: { id: 7 }, reason: 'bad email' },
            { key: [8], record: { id: 8 }, reason: 'bad email' },
          ],
        }),
      );
      await store.commitBatch(commitOf(r2.id, checkpoint('s2', { key: [1] }, T0, 1)));
      const all = await store.listDeadLetters({});
      expect(all.map((d) => d.sync)).toEqual(['s1', 's1', 's2']);
      expect(await store.countOpenDeadLetters('s1')).toBe(2);
      clock.t += 1000;
      await store.commitBatch(
        commitOf(r1.id, checkpoint('s1', { key: [2] }, T0, 2, 2), {
          deadLetters: [],
          // Key [7] of s2 is another sync's: untouched.
          resolved: [
            { keys: ['[7]'], resolution: `written by run ${r1.id}` },
            { ids: [all[2]!.id], resolution: 'not this sync' },
          ],
        }),
      );
      expect((await store.listDeadLetters({})).map((d) => [d.sync, d.key])).toEqual([
        ['s1', [8]],
        ['s2', [7]],
      ]);
      expect(await store.countOpenDeadLetters('s1')).toBe(1);
      const closed = await store.listDeadLetters({ includeClosed: true, sync: 's1' });
      expect(closed[0]).toMatchObject({
        key: [7],
        closedAt: new Date(clock.t).toISOString(),
        closedByRun: r1.id,
        resolution: `written by run ${r1.id}`,
      });
      expect(await store.listDeadLetters({ limit: 1, includeClosed: true })).toHaveLength(1);
    });

    it('keeps fingerprints by key: looked up, replaced, pruned behind a time, forgotten on reset', async () => {
      const { store } = await open();
      const run = await started(store);
      const big = '[9007199254740993]';
      await store.commitBatch(
        commitOf(run.id, checkpoint('s1', { key: [1] }, T0, 1), {
          deadLetters: [],
          fingerprints: [
            { key: '[1]', hash: 'a', cursorMs: 1000 },
            { key: '["x"]', hash: 'b', cursorMs: null },
            { key: big, hash: 'c', cursorMs: 5000 },
          ],
        }),
      );
      await store.commitBatch(
        commitOf(run.id, checkpoint('s1', { key: [2] }, T0, 2, 2), {
          deadLetters: [],
          fingerprints: [{ key: '[1]', hash: 'a2', cursorMs: 6000 }],
        }),
      );
      expect(await store.fingerprints('s1', ['[1]', '["x"]', big, '[404]'])).toEqual(
        new Map([
          ['[1]', 'a2'],
          ['["x"]', 'b'],
          [big, 'c'],
        ]),
      );
      expect(await store.fingerprints('other', ['[1]'])).toEqual(new Map());
      await store.pruneFingerprints('s1', 5500);
      // Behind the time: gone; with no time: kept (it cannot be told to be behind any window).
      expect([...(await store.fingerprints('s1', ['[1]', '["x"]', big])).keys()].sort()).toEqual([
        '["x"]',
        '[1]',
      ]);
      await store.resetSync('s1');
      expect(await store.fingerprints('s1', ['[1]', '["x"]'])).toEqual(new Map());
    });

    it('adds to the totals without touching the checkpoint where a commit carries none', async () => {
      const { store } = await open();
      const run = await started(store);
      const cp = checkpoint('s1', { key: [3] }, T0, 3);
      await store.commitBatch(commitOf(run.id, cp));
      await store.commitBatch(
        commitOf(run.id, cp, {
          checkpoint: null,
          deadLetters: [],
          totals: counts({ written: 2, rejected: -1 }),
        }),
      );
      expect(await store.getCheckpoint('s1')).toEqual({
        ...cp,
        totals: { ...cp.totals, written: cp.totals.written + 2, rejected: 0 },
      });
    });

    it('updates the open letter of a record that fails again; cursor-range letters never merge', async () => {
      const { store, clock } = await open();
      const run = await started(store);
      const range = { key: null, record: null, reason: 'batch failed' };
      await store.commitBatch(
        commitOf(run.id, checkpoint('s1', { key: [1] }, T0, 1), {
          deadLetters: [{ key: [7], record: { id: 7 }, reason: 'first' }, range],
        }),
      );
      clock.t += 1000;
      await store.commitBatch(
        commitOf(run.id, checkpoint('s1', { key: [2] }, T0, 2, 2), {
          batch: 2,
          deadLetters: [
            { key: [7], record: { id: 7, v: 2 }, reason: 'again' },
            { key: [7], record: { id: 7, v: 3 }, reason: 'and again' },
            range,
          ],
        }),
      );
      const letters = await store.listDeadLetters({ sync: 's1' });
      expect(letters.map((l) => [l.key, l.attempts, l.reason, l.batch])).toEqual([
        [[7], 3, 'and again', 2],
        [null, 1, 'batch failed', 1],
        [null, 1, 'batch failed', 2],
      ]);
      expect(letters[0]).toMatchObject({
        record: { id: 7, v: 3 },
        createdAt: new Date(T0).toISOString(),
        lastFailedAt: new Date(clock.t).toISOString(),
      });
      // Once closed, a new failure opens a new letter.
      await store.commitBatch(
        commitOf(run.id, checkpoint('s1', { key: [3] }, T0, 3, 3), {
          batch: 3,
          resolved: [{ ids: [letters[0]!.id], resolution: 'retried' }],
          deadLetters: [{ key: [7], record: { id: 7 }, reason: 'after retry' }],
        }),
      );
      const open7 = (await store.listDeadLetters({ sync: 's1' })).filter(
        (l) => JSON.stringify(l.key) === '[7]',
      );
      expect(open7.map((l) => [l.attempts, l.reason])).toEqual([[1, 'after retry']]);
    });

    it('prunes history older than a time: ended runs (each sync keeps its newest), closed letters; never open ones', async () => {
      const { store, clock } = await open();
      const ended: number[] = [];
      for (let i = 0; i < 4; i++) {
        const run = await started(store);
        await store.finishRun(run.id, end);
        ended.push(run.id);
        clock.t += 1000;
      }
      const other = await started(store, 's2');
      await store.finishRun(other.id, end);
      const live = await started(store);
      await store.commitBatch(
        commitOf(live.id, checkpoint('s1', { key: [1] }, clock.t, 1), {
          deadLetters: [
            { key: [1], record: { id: 1 }, reason: 'closed soon' },
            { key: [2], record: { id: 2 }, reason: 'stays open' },
          ],
        }),
      );
      await store.commitBatch(
        commitOf(live.id, checkpoint('s1', { key: [2] }, clock.t, 2, 2), {
          deadLetters: [],
          resolved: [{ keys: ['[1]'], resolution: 'written' }],
        }),
      );
      clock.t += 10_000;
      await store.prune(clock.t - 1, 2);
      // s1 keeps its two newest runs (the running one among them); s2 its only one.
      expect((await store.listRuns({ sync: 's1' })).map((r) => r.id)).toEqual([live.id, ended[3]]);
      expect((await store.listRuns({ sync: 's2' })).map((r) => r.id)).toEqual([other.id]);
      const letters = await store.listDeadLetters({ sync: 's1', includeClosed: true });
      expect(letters.map((l) => l.key)).toEqual([[2]]);
    });

    it('resets a sync: checkpoint, dead letters and fingerprints go, run history stays', async () => {
      const { store } = await open();
      const run = await started(store);
      const other = await started(store, 'keep');
      await store.commitBatch(commitOf(run.id, checkpoint('s1', { key: [3] }, T0, 3)));
      await store.commitBatch(commitOf(other.id, checkpoint('keep', { key: [3] }, T0, 3)));
      await store.resetSync('s1');
      expect(await store.getCheckpoint('s1')).toBeNull();
      expect(await store.listDeadLetters({ sync: 's1' })).toEqual([]);
      expect(await store.getRun(run.id)).not.toBeNull();
      expect(await store.getCheckpoint('keep')).not.toBeNull();
      expect(await store.listDeadLetters({ sync: 'keep' })).toHaveLength(1);
    });
  });
}
