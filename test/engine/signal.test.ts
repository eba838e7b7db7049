import { describe, expect, it } from 'vitest';
import type { RunContext } from '../../src/core/ports.ts';
import { seedContacts } from '../support/contacts.ts';
import { sqlitePair } from '../support/harness.ts';
import { tempDir } from '../support/tmp.ts';

/**
 * A run past its deadline could go on in `map` after its lane moved on (issue 12, item 6): `map`
 * now gets `ctx.signal`, and the data store refuses the run's writes once it fires.
 */
describe('a run past its deadline', () => {
  it('aborts ctx.signal for map, and refuses its data store writes from then on', async () => {
    let seen: { aborted: boolean; refused: string | null } | null = null;
    const pair = sqlitePair(tempDir(), {
      batchSize: 10,
      maxRunDurationMs: 50,
      map: async (record, ctx: RunContext) => {
        if (record.id !== 1) return record;
        await ctx.data.set('before', 1);
        // A slow map that waits for the deadline, then tries to write anyway.
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener('abort', () => resolve(), { once: true }),
        );
        let refused: string | null = null;
        await ctx.data.set('after', 2).catch((err: Error) => {
          refused = err.name;
        });
        seen = { aborted: ctx.signal.aborted, refused };
        return record;
      },
    });
    seedContacts(pair.sourcePath, 20);
    await expect(pair.run({ graceMs: 50 })).rejects.toMatchObject({ code: 'RUN_TIMED_OUT' });
    expect(seen).toEqual({ aborted: true, refused: 'TimeoutError' });
    expect(await pair.store.data.get('before')).toBe(1);
    expect(await pair.store.data.get('after')).toBeUndefined();
    const [run] = await pair.store.listRuns({ sync: 'contacts' });
    expect(run?.status).toBe('timed_out');
  });
});
