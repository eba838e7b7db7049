import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalRuntime } from '../../src/runtime/local/runtime.ts';
import { Workspace } from '../../src/runtime/workspace.ts';
import { digest, seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';
import { runtimeConformance } from './conformance.ts';

runtimeConformance('local', (ws) => new LocalRuntime(ws));

describe('local runtime: slots', () => {
  it('hands a freed slot to the oldest due request of any lane, so one slot serves two backfills in turn', async () => {
    const dir = tempDir('runtime-slots');
    const names = ['first', 'second'];
    for (const name of names) seedContacts(join(dir, `${name}-a.db`), 3000, { perSecond: 50 });
    const ws = await Workspace.fromConfig(
      {
        connections: Object.fromEntries(
          names.flatMap((n) => [
            [`${n}A`, { type: 'sqlite', path: `${n}-a.db` }],
            [`${n}B`, { type: 'sqlite', path: `${n}-b.db` }],
          ]),
        ),
        syncs: Object.fromEntries(
          names.map((n) => [
            n,
            {
              source: { connection: `${n}A`, table: 'contacts' },
              target: { connection: `${n}B`, table: 'contacts' },
              key: 'id',
              cursor: 'updated_at',
              batch: { size: 100 },
              maxRunDuration: '1ms',
            },
          ]),
        ),
        runtime: { concurrency: 1, poll: '10s' },
      },
      dir,
    );
    const runtime = new LocalRuntime(ws);
    try {
      await runtime.start();
      for (const name of names) await runtime.request(name, { trigger: 'backfill' });
      const phase = async (n: string) => (await ws.store.getCheckpoint(n))?.phase;
      // The poll is 10 s: only the hand-over at each run's end can move both backfills this soon.
      await until(
        'both backfills done',
        async () => (await phase('first')) === 'incremental' && (await phase('second')) === 'incremental',
        8_000,
      );
      const runs = (await ws.store.listRuns({ limit: 10_000 })).reverse();
      const order = runs.map((r) => r.sync);
      expect(order.filter((s) => s === 'first').length).toBeGreaterThan(5);
      // Taking turns: neither backfill ran through while the other waited for the slot.
      const switches = order.filter((s, i) => i > 0 && s !== order[i - 1]).length;
      expect(switches).toBeGreaterThan(order.length / 3);
      for (const name of names)
        expect(digest(join(dir, `${name}-b.db`))).toEqual(digest(join(dir, `${name}-a.db`)));
    } finally {
      await runtime.stop({ timeoutMs: 5_000 });
      await ws.close();
    }
  });
});
