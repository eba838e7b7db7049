import { describe, expect, it } from 'vitest';
import type { Store, Target } from '../../src/core/ports.ts';
import { digest, execSql, seedContacts } from '../support/contacts.ts';
import { recordingSource, sqlitePair } from '../support/harness.ts';
import { tempDir } from '../support/tmp.ts';

/** A store whose checkpoint commit fails once, on the given batch: the process "dies" there. */
function crashingOnCommit(store: Store, batch: number): Store {
  let seen = 0;
  return new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'commitBatch') {
        return async (...args: Parameters<Store['commitBatch']>) => {
          seen += 1;
          if (seen === batch) throw new Error('simulated crash between write and checkpoint');
          return target.commitBatch(...args);
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('crash recovery', () => {
  it('replays the batch written but not checkpointed, leaving no duplicate', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 500 });
    seedContacts(pair.sourcePath, 2_000);
    await expect(pair.run({ wrapStore: (s) => crashingOnCommit(s, 3) })).rejects.toThrow(/simulated crash/);
    // The third batch reached the target, but its checkpoint did not: the target is ahead.
    expect(digest(pair.targetPath).count).toBe(1500);
    expect((await pair.store.getCheckpoint('contacts'))?.cursor).toEqual({ key: [1000] });
    const [failed] = await pair.store.listRuns({ sync: 'contacts' });
    expect(failed).toMatchObject({ status: 'failed', errorCode: 'INTERNAL' });

    const pages: { cursor: unknown; ids: unknown[] }[] = [];
    await pair.run({ stopAfterBackfill: true, wrapSource: (s) => recordingSource(s, pages) });
    expect(pages[0]?.cursor).toEqual({ key: [1000] });
    expect(pages[0]?.ids[0]).toBe(1001);
    const target = digest(pair.targetPath);
    expect(target.count).toBe(2000);
    expect(target.keys).toBe(2000);
    expect(target).toEqual(digest(pair.sourcePath));
  });

  it('stops a run at its budget and resumes exactly where it stopped', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 100, maxRunDurationMs: 2500 });
    seedContacts(pair.sourcePath, 1_000);
    // A clock that advances one second per batch written, so the budget is spent after three batches.
    let clock = 0;
    const now = () => clock;
    const written: unknown[][] = [];
    const tick = (t: Target): Target => ({
      write: async (records, req) => {
        clock += 1000;
        written.push(records.map((r) => r.id));
        return t.write(records, req);
      },
    });
    const reads: { cursor: unknown; ids: unknown[] }[] = [];
    const first = await pair.run({ now, wrapTarget: tick, stopAfterBackfill: true });
    expect(first.more).toBe(true);
    expect(first.run.counters.batches).toBe(3);
    expect(first.checkpoint.cursor).toEqual({ key: [300] });
    expect(written.flat()).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));

    const second = await pair.run({
      now,
      wrapTarget: tick,
      wrapSource: (s) => recordingSource(s, reads),
      stopAfterBackfill: true,
    });
    expect(reads[0]?.cursor).toEqual({ key: [300] });
    expect(second.run.counters.read).toBe(300);
    while ((await pair.store.getCheckpoint('contacts'))?.phase !== 'incremental') {
      await pair.run({ now, wrapTarget: tick, stopAfterBackfill: true });
    }
    // Every record written exactly once across the runs, in key order: nothing skipped, nothing repeated.
    expect(written.flat()).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));
  });
});

describe('changes during a backfill', () => {
  it('brings records updated and inserted while the backfill runs through the incremental phase', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 1000 });
    seedContacts(pair.sourcePath, 5_000, { perSecond: 100 });
    let batches = 0;
    const meddle = (s: Parameters<typeof recordingSource>[0]) => ({
      ...recordingSource(s, []),
      read: async (req: Parameters<typeof s.read>[0]) => {
        batches += 1;
        if (batches === 3) {
          // Already copied rows change, and new rows arrive past the backfill's high-water mark.
          execSql(
            pair.sourcePath,
            "UPDATE contacts SET company = 'Updated', updated_at = '2030-01-01T00:00:00Z' WHERE id IN (10, 20, 1500)",
          );
          seedContacts(pair.sourcePath, 3, { firstId: 9_000, start: Date.UTC(2030, 0, 1) });
        }
        return s.read(req);
      },
    });
    const backfill = await pair.run({ stopAfterBackfill: true, wrapSource: meddle });
    expect(backfill.checkpoint.phase).toBe('incremental');
    // The backfill stopped at its high-water mark: the new rows are not in it.
    expect(digest(pair.targetPath).count).toBe(5_000);
    await pair.run();
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));
    expect(digest(pair.targetPath).count).toBe(5_003);
  });
});
