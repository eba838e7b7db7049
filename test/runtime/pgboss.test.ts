import pg from 'pg';
import { PgBossRuntime } from '../../src/runtime/pgboss/runtime.ts';
import { freshDatabase } from '../support/pg.ts';
import { runtimeConformance } from './conformance.ts';

// The same contract as the local runtime, on a fresh PostgreSQL database per test: the store and
// pg-boss's queue in it.
runtimeConformance('pg-boss', (ws) => new PgBossRuntime(ws), {
  store: async () => (await freshDatabase('pgboss_runtime')).url,
  pending: async (ws, sync) => {
    const client = new pg.Client({ connectionString: ws.config.config.store });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM sluice_pgboss.job WHERE name = 'sluice-runs' AND data->>'sync' = $1
           AND state IN ('created', 'retry')`,
        [sync],
      );
      return Number(rows[0]!.n);
    } finally {
      await client.end();
    }
  },
});
