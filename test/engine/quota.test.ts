import { describe, expect, it } from 'vitest';
import { QuotaExhaustedError } from '../../src/core/errors.ts';
import type { Target } from '../../src/core/ports.ts';
import { digest, seedContacts } from '../support/contacts.ts';
import { sqlitePair } from '../support/harness.ts';
import { tempDir } from '../support/tmp.ts';

/**
 * A connection's daily API budget that runs out mid-run is not a failure (issue 13): the run keeps
 * what was confirmed, ends `succeeded` with work left, and says when the sync may go on.
 */
describe('a spent API budget', () => {
  it('ends the run succeeded with work left at the last confirmed batch, and says when to go on', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 100, map: (r) => r });
    seedContacts(pair.sourcePath, 1000);
    const resetsAt = Date.UTC(2030, 0, 1);
    let calls = 0;
    const budget = (t: Target): Target => ({
      write: (records, req) => {
        calls += 1;
        if (calls > 3) throw new QuotaExhaustedError('crm', 3, 3, resetsAt);
        return t.write(records, req);
      },
    });
    const first = await pair.run({ wrapTarget: budget, stopAfterBackfill: true });
    expect(first).toMatchObject({ more: true, resumeAt: resetsAt });
    expect(first.run).toMatchObject({ status: 'succeeded', errorCode: 'QUOTA_EXHAUSTED' });
    expect(first.run.counters).toMatchObject({ batches: 3, written: 300 });
    expect(first.checkpoint).toMatchObject({ phase: 'backfill', backfillDone: 300, cursor: { key: [300] } });
    // Once the budget is back, the sync goes on from there and loses nothing.
    await pair.backfill();
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));
  });
});
