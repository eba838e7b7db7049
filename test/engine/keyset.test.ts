import { describe, expect, it } from 'vitest';
import type { Target } from '../../src/core/ports.ts';
import { digest, execSql, iso, seedContacts } from '../support/contacts.ts';
import { recordingSource, sqlitePair } from '../support/harness.ts';
import { tempDir } from '../support/tmp.ts';

describe('keyset cursors across batch boundaries', () => {
  it('backfills 10,000 records sharing one updated_at with none skipped and none repeated', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 3000 });
    seedContacts(pair.sourcePath, 10_000, { perSecond: 10_000 });
    const pages: { cursor: unknown; ids: unknown[] }[] = [];
    const outcome = await pair.run({ stopAfterBackfill: true, wrapSource: (s) => recordingSource(s, pages) });
    const ids = pages.flatMap((p) => p.ids);
    expect(ids).toHaveLength(10_000);
    expect(new Set(ids).size).toBe(10_000);
    expect(outcome.checkpoint.phase).toBe('incremental');
    expect(pages.length).toBeGreaterThanOrEqual(4);
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));
  });

  it('reads 10,000 records updated in the same second exactly once in the incremental phase', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 3000 });
    seedContacts(pair.sourcePath, 12_000, { perSecond: 500 });
    await pair.backfill();
    // After the backfill: 10,000 rows change within one second, later than the high-water mark.
    execSql(
      pair.sourcePath,
      `UPDATE contacts SET company = 'Changed', updated_at = '${iso(Date.UTC(2025, 0, 1))}' WHERE id > 2000`,
    );
    const pages: { cursor: unknown; ids: unknown[] }[] = [];
    // The first incremental run starts at the high-water mark, which re-reads its own second once.
    await pair.run({ wrapSource: (s) => recordingSource(s, pages) });
    const ids = pages.flatMap((p) => p.ids).filter((id) => Number(id) > 2000);
    expect(ids).toHaveLength(10_000);
    expect(new Set(ids).size).toBe(10_000);
    expect(pages.some((p) => p.ids.length === 3000)).toBe(true);
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));

    const again: { cursor: unknown; ids: unknown[] }[] = [];
    await pair.run({ wrapSource: (s) => recordingSource(s, again) });
    expect(again.flatMap((p) => p.ids)).toEqual([]);
  });

  it('sweeps a lookback window that holds more than one run can read across runs, then moves on', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 100, maxRunDurationMs: 2500, lookbackMs: 60_000 });
    // 1,000 rows share the high-water second, all inside the window every caught-up run re-reads.
    seedContacts(pair.sourcePath, 2000, { perSecond: 1000 });
    await pair.backfill();
    execSql(
      pair.sourcePath,
      `UPDATE contacts SET company = 'later', updated_at = '${iso(Date.UTC(2025, 0, 1))}' WHERE id <= 50`,
    );
    // A clock that advances one second per batch written: three batches a run.
    let clock = 0;
    const tick = (t: Target): Target => ({
      write: (records, req) => {
        clock += 1000;
        return t.write(records, req);
      },
    });
    const outcomes = [];
    let read = 0;
    for (let i = 0; i < 12; i++) {
      const outcome = await pair.run({ now: () => clock, wrapTarget: tick });
      outcomes.push(outcome.more);
      read += outcome.run.counters.read;
      if (!outcome.more) break;
    }
    // The window holds the 1,950 unchanged rows: its sweep takes 20 batches over 7 runs, each going
    // on where the last stopped (never starting the window over), and only then the 50 changed
    // rows; only the run that read them all says it caught up. Every row is read once.
    expect(outcomes).toEqual([true, true, true, true, true, true, false]);
    expect(read).toBe(2000);
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));
  });

  it('re-reads the lookback window to catch a row committed late with an older updated_at', async () => {
    const pair = sqlitePair(tempDir(), { lookbackMs: 60_000 });
    seedContacts(pair.sourcePath, 100, { perSecond: 10 });
    await pair.backfill();
    execSql(
      pair.sourcePath,
      `UPDATE contacts SET updated_at = '${iso(Date.UTC(2025, 0, 1, 0, 0, 30))}', company = 'first' WHERE id = 1`,
    );
    await pair.run();
    // A transaction that began earlier commits now, stamped 20 s before the row already synced.
    execSql(
      pair.sourcePath,
      `UPDATE contacts SET updated_at = '${iso(Date.UTC(2025, 0, 1, 0, 0, 10))}', company = 'late' WHERE id = 2`,
    );
    await pair.run();
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));
    const cp = await pair.store.getCheckpoint('contacts');
    // The saved cursor never moved back behind the newest row seen.
    expect(cp?.cursor).toMatchObject({ k: [iso(Date.UTC(2025, 0, 1, 0, 0, 30)), 1] });
  });
});
