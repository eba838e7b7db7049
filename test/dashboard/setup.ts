import { join } from 'node:path';
import { LocalRuntime } from '../../src/runtime/local/runtime.ts';
import { Workspace } from '../../src/runtime/workspace.ts';
import { createApp } from '../../src/server/app.ts';
import { seedContacts } from '../support/contacts.ts';
import { listen } from '../support/server.ts';
import { tempDir } from '../support/tmp.ts';

export const TOKEN = 'dashboard-token-0123456789';

type Contact = { id: number };

/**
 * A served workspace for the dashboard: `big` (a backfill of `rows` contacts over many short runs,
 * its map slowed a little so a page can watch it) and `tick` (a small sync on a fast schedule) share
 * the bundle `crm`, so tick takes its turns between big's runs. Big's map refuses the ids in
 * `broken` (they become dead letters) until the test takes them out.
 */
export async function servedWorkspace(options: { rows?: number; tokens?: string[]; start?: boolean } = {}) {
  const dir = tempDir('dashboard');
  seedContacts(join(dir, 'big-a.db'), options.rows ?? 12_000);
  seedContacts(join(dir, 'tick-a.db'), 50);
  const broken = new Set<number>([7, 9]);
  const sync = (name: string, extra: object) => ({
    source: { connection: `${name}A`, table: 'contacts' },
    target: { connection: `${name}B`, table: 'contacts' },
    key: 'id',
    cursor: 'updated_at',
    batch: { size: 300 },
    ...extra,
  });
  const ws = await Workspace.fromConfig(
    {
      connections: {
        bigA: { type: 'sqlite', path: 'big-a.db' },
        bigB: { type: 'sqlite', path: 'big-b.db' },
        tickA: { type: 'sqlite', path: 'tick-a.db' },
        tickB: { type: 'sqlite', path: 'tick-b.db' },
      },
      syncs: {
        big: sync('big', {
          maxRunDuration: '400ms',
          rerun: { mode: 'triggered' },
          map: async (r: Contact) => {
            if (broken.has(r.id)) throw new Error(`contact ${r.id} has an invalid email`);
            // A pause every 50 records: the backfill takes a few seconds, not a few hundred ms.
            if (r.id % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 8));
            return r;
          },
        }),
        tick: sync('tick', {
          maxRunDuration: '400ms',
          rerun: { mode: 'scheduled', every: '150ms' },
          incremental: { every: '150ms' },
        }),
      },
      bundles: { crm: { syncs: ['big', 'tick'] } },
      server: { apiTokens: options.tokens ?? [TOKEN] },
      runtime: { poll: '20ms' },
    },
    dir,
  );
  const runtime = new LocalRuntime(ws);
  const url = await listen(createApp(ws, runtime));
  if (options.start) await runtime.start();
  const stop = async () => {
    await runtime.stop();
    await ws.close();
  };
  return { dir, ws, runtime, url, broken, stop };
}
