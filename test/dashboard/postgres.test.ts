import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/runtime/create.ts';
import { Workspace } from '../../src/runtime/workspace.ts';
import { createApp } from '../../src/server/app.ts';
import type { Snapshot } from '../../src/server/dashboard/views.ts';
import { seedContacts } from '../support/contacts.ts';
import { freshDatabase } from '../support/pg.ts';
import { listen } from '../support/server.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';

const TOKEN = 'pg-dashboard-token';

describe('the dashboard on the PostgreSQL store (pg-boss runtime)', () => {
  it('shows the syncs, runs a sync on request and lists its turns in the lane', async () => {
    const dir = tempDir('dashboard-pg');
    seedContacts(join(dir, 'a.db'), 300);
    const db = await freshDatabase('dashboard', { store: true });
    const ws = await Workspace.fromConfig(
      {
        store: db.url,
        connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' } },
        syncs: {
          contacts: {
            source: { connection: 'a', table: 'contacts' },
            target: { connection: 'b', table: 'contacts' },
            key: 'id',
            cursor: 'updated_at',
            rerun: { mode: 'scheduled', every: '1h' },
          },
        },
        bundles: { crm: { syncs: ['contacts'] } },
        server: { apiTokens: [TOKEN] },
        runtime: { poll: '50ms' },
      },
      dir,
    );
    const runtime = await createRuntime(ws);
    try {
      const url = await listen(createApp(ws, runtime));
      const signIn = await fetch(`${url}/ui/session`, {
        method: 'POST',
        headers: { origin: url, 'content-type': 'application/json' },
        body: JSON.stringify({ token: TOKEN }),
      });
      expect(signIn.status).toBe(200);
      const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
      const snapshot = async () =>
        (await (await fetch(`${url}/ui/snapshot`, { headers: { cookie } })).json()) as Snapshot;
      expect((await snapshot()).syncs).toMatchObject([{ sync: 'contacts', phase: 'new', bundle: 'crm' }]);

      await (runtime as { start(): Promise<void> }).start();
      const requested = await fetch(`${url}/ui/syncs/contacts/runs`, {
        method: 'POST',
        headers: { cookie, 'x-sluice-dashboard': '1' },
      });
      expect(requested.status).toBe(202);
      const done = await until(
        'the requested run on the dashboard',
        async () => {
          const s = await snapshot();
          return s.syncs[0]?.phase === 'incremental' && s.syncs[0].state !== 'running' ? s : null;
        },
        60_000,
      );
      expect(done!.syncs[0]).toMatchObject({ backfillDone: 300, progress: 1 });
      const lane = done!.lanes.find((l) => l.lane === 'bundle:crm')!;
      expect(lane.turns.map((t) => t.sync)).toContain('contacts');
      const runs = (await (await fetch(`${url}/ui/runs?sync=contacts`, { headers: { cookie } })).json()) as {
        trigger: string;
        status: string;
      }[];
      expect(runs[0]).toMatchObject({ trigger: 'api', status: 'succeeded' });
    } finally {
      await runtime.stop();
      await ws.close();
    }
  });
});
