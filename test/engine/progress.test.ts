import { describe, expect, it } from 'vitest';
import { contactsDdl, seedContactsSql } from '../../bench/pg/contacts.ts';
import { postgresConnector } from '../../src/connectors/postgres/index.ts';
import type { Source } from '../../src/core/ports.ts';
import type { Progress } from '../../src/engine/progress.ts';
import { seedContacts } from '../support/contacts.ts';
import { bindAll, sqlitePair } from '../support/harness.ts';
import { connect, freshDatabase } from '../support/pg.ts';
import { tempDir } from '../support/tmp.ts';

/**
 * Progress never lies (issue 10, finding 7): on a table the planner misjudged, the bar read
 * `100.0% … ETA 0ms` from 20% on. An estimate is never below what is done, is asked again while it
 * is a guess, and is marked a guess until it is a count.
 */
describe('backfill progress', () => {
  it('never lets a guessed estimate fall below what is done, and says it is a guess', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 500, maxRunDurationMs: 0 });
    seedContacts(pair.sourcePath, 5000);
    // A planner that saw a tenth of the table, and never learns more.
    const guessing = (s: Source): Source => ({
      ...bindAll(s),
      estimate: async () => ({ records: 500, exact: false }),
    });
    const seen: Progress[] = [];
    for (let i = 0; i < 20; i++) {
      const outcome = await pair.run({
        wrapSource: guessing,
        stopAfterBackfill: true,
        onProgress: (p) => seen.push(p),
      });
      if (outcome.checkpoint.phase === 'incremental') break;
    }
    const inBackfill = seen.filter((p) => p.phase === 'backfill');
    expect(inBackfill.length).toBeGreaterThan(5);
    for (const p of inBackfill) {
      expect(p.backfillEstimate).toBeGreaterThan(p.backfillDone);
      expect(p.estimateExact).toBe(false);
    }
    const cp = await pair.store.getCheckpoint('contacts');
    expect(cp).toMatchObject({ backfillDone: 5000, backfillEstimate: 5000, backfillEstimateExact: true });
  });

  it('counts a freshly loaded PostgreSQL table the planner has never analysed', async () => {
    const db = await freshDatabase('estimate');
    const client = await connect(db.url);
    await client.query(contactsDdl('contacts'));
    await client.query('ALTER TABLE contacts SET (autovacuum_enabled = false)');
    await client.query(seedContactsSql('contacts'), [120_000]);
    const source = await postgresConnector.source!.open(
      { url: db.url },
      { table: 'contacts' },
      { sync: 'c', key: ['id'], cursorField: 'updated_at', baseDir: '.' },
    );
    try {
      const highWaterMark = await source.highWaterMark!();
      const estimate = await source.estimate!({ phase: 'backfill', cursor: null, highWaterMark });
      expect(estimate).toEqual({ records: 120_000, exact: true });
      const later = await source.estimate!({ phase: 'backfill', cursor: { key: [100_000] }, highWaterMark });
      expect(later).toEqual({ records: 20_000, exact: true });
    } finally {
      await source.close?.();
    }
  });
});
