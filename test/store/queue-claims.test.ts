import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Checkpoint, claimOf, type RunRequest } from '../../src/core/ports.ts';
import { zeroCounters } from '../../src/core/types.ts';
import { SqliteStore } from '../../src/store/sqlite/store.ts';
import { tempDir } from '../support/tmp.ts';

const HOLDER = `${process.pid}@queue-test`;
const start = (request: RunRequest) => ({
  sync: request.sync,
  trigger: request.trigger,
  holder: HOLDER,
  leaseMs: 60_000,
  lane: request.lane,
});

describe('SqliteStore.queue claims that start runs', () => {
  it("records each claimed request's run in the claim, in the checkpoint's phase, holding the request's lane", async () => {
    const store = SqliteStore.open(join(tempDir('queue-claims'), 'state.db'));
    try {
      await store.saveCheckpoint(incremental('b'));
      for (const sync of ['a', 'b'])
        await store.queue.enqueue({ sync, lane: `sync:${sync}`, trigger: 'api' });
      const claimed = await store.queue.claim({ holder: HOLDER, leaseMs: 60_000, limit: 5, start });
      expect(
        claimed.map((c) => [c.request.sync, c.run?.sync, c.run?.phase, c.run?.lane, c.run?.status]),
      ).toEqual([
        ['a', 'a', 'backfill', 'sync:a', 'running'],
        ['b', 'b', 'incremental', 'sync:b', 'running'],
      ]);
      // The runs are the store's runs: the lane is held against any other start.
      await expect(
        store.startRun({
          sync: 'c',
          trigger: 'api',
          phase: 'backfill',
          holder: HOLDER,
          leaseMs: 1000,
          lane: 'sync:a',
        }),
      ).rejects.toMatchObject({ code: 'LANE_BUSY' });
    } finally {
      await store.close();
    }
  });

  it('claims a request whose sync a run outside the queue holds without a run, and says why', async () => {
    const store = SqliteStore.open(join(tempDir('queue-claims'), 'state.db'));
    try {
      // A `sluice retry` or a run on a store without turns: held in the runs, not in the queue.
      await store.startRun({
        sync: 'a',
        trigger: 'backfill',
        phase: 'backfill',
        holder: HOLDER,
        leaseMs: 60_000,
      });
      await store.queue.enqueue({ sync: 'a', lane: 'sync:a', trigger: 'api' });
      const [claimed] = await store.queue.claim({ holder: HOLDER, leaseMs: 60_000, limit: 1, start });
      expect(claimed?.run).toBeNull();
      expect(claimed?.refused?.code).toBe('SYNC_BUSY');
      expect(claimed?.request.status).toBe('running');
    } finally {
      await store.close();
    }
  });

  it('ends a request, queues its successor and claims the oldest due request of any free lane in one step, or nothing once the claim is lost', async () => {
    const store = SqliteStore.open(join(tempDir('queue-claims'), 'state.db'));
    try {
      const first = await store.queue.enqueue({ sync: 'a', lane: 'bundle:x', trigger: 'api' });
      const other = await store.queue.enqueue({ sync: 'c', lane: 'sync:c', trigger: 'api' });
      const [running] = await store.queue.claim({ holder: HOLDER, leaseMs: 60_000, limit: 1, start });
      expect(running?.request.id).toBe(first.id);
      const settled = await store.queue.finish(
        claimOf(running!.request),
        { status: 'done', runId: running!.run!.id },
        {
          next: { sync: 'b', lane: 'bundle:x', trigger: 'rerun' },
          claim: { holder: HOLDER, leaseMs: 60_000, limit: 1, start },
        },
      );
      expect(settled.ended?.status).toBe('done');
      // The request waiting longest goes first, not the successor of the lane that just freed.
      expect(settled.claimed.map((c) => c.request.id)).toEqual([other.id]);
      expect((await store.queue.pending('b')).map((r) => r.status)).toEqual(['queued']);
      const again = await store.queue.finish(
        claimOf(running!.request),
        { status: 'done' },
        {
          next: { sync: 'b', lane: 'bundle:x', trigger: 'rerun' },
          claim: { holder: HOLDER, leaseMs: 60_000, limit: 5 },
        },
      );
      expect(again).toEqual({ ended: null, claimed: [] });
      expect(await store.queue.pending('b')).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it("records a run's end with its request's, and leaves the request as it is when the run was fenced off", async () => {
    const store = SqliteStore.open(join(tempDir('queue-claims'), 'state.db'));
    try {
      await store.queue.enqueue({ sync: 'a', lane: 'sync:a', trigger: 'api' });
      await store.queue.enqueue({ sync: 'b', lane: 'sync:b', trigger: 'api' });
      const [a, b] = await store.queue.claim({ holder: HOLDER, leaseMs: 60_000, limit: 2, start });
      const end = { holder: HOLDER, status: 'succeeded' as const, more: false };
      const settled = await store.queue.finish(
        claimOf(a!.request),
        { status: 'done', runId: a!.run!.id },
        { run: { id: a!.run!.id, end }, next: { sync: 'a', lane: 'sync:a', trigger: 'rerun' } },
      );
      expect(settled.run?.status).toBe('succeeded');
      expect(settled.ended?.status).toBe('done');
      expect((await store.getRun(a!.run!.id))?.status).toBe('succeeded');
      // b's run timed out meanwhile (its deadline recorded it): its late end changes nothing.
      await store.finishRun(b!.run!.id, { holder: HOLDER, status: 'timed_out', more: true });
      const fenced = await store.queue.finish(
        claimOf(b!.request),
        { status: 'done', runId: b!.run!.id },
        { run: { id: b!.run!.id, end }, next: { sync: 'b', lane: 'sync:b', trigger: 'rerun' } },
      );
      expect(fenced).toEqual({
        ended: null,
        claimed: [],
        run: expect.objectContaining({ status: 'timed_out' }),
      });
      expect((await store.queue.pending('b')).map((r) => [r.id, r.status])).toEqual([
        [b!.request.id, 'running'],
      ]);
    } finally {
      await store.close();
    }
  });
});

function incremental(sync: string): Checkpoint {
  const at = new Date().toISOString();
  return {
    sync,
    phase: 'incremental',
    cursor: null,
    sweep: null,
    highWaterMark: null,
    totals: zeroCounters(),
    backfillDone: 0,
    backfillEstimate: 0,
    backfillEstimateExact: true,
    backfillStartedAt: at,
    backfillEndedAt: at,
    updatedAt: at,
    version: 1,
  };
}
