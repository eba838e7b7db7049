import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/core/ports.ts';
import { LocalRuntime } from '../../src/runtime/local/runtime.ts';
import { PgBossRuntime } from '../../src/runtime/pgboss/runtime.ts';
import type { Runtime } from '../../src/runtime/port.ts';
import { Workspace } from '../../src/runtime/workspace.ts';
import { digest, seedContacts } from '../support/contacts.ts';
import { freshDatabase } from '../support/pg.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';

/**
 * In a runtime, each partition of a backfill is a request of its own: taken by whichever worker is
 * free, in a lane of its own (the partitions opt out of the bundle's one-at-a-time rule), while the
 * bundle's other syncs take their turns; once all are done, the sync goes incremental.
 */
function config(dir: string, store: string | undefined) {
  seedContacts(join(dir, 'big-a.db'), 12_000, { perSecond: 50 });
  seedContacts(join(dir, 'small-a.db'), 300, { perSecond: 50 });
  const sync = (name: string, extra: Record<string, unknown>) => ({
    source: { connection: `${name}A`, table: 'contacts' },
    target: { connection: `${name}B`, table: 'contacts' },
    key: 'id',
    cursor: 'updated_at',
    batch: { size: 200 },
    maxRunDuration: '40ms',
    map: (r: Record<string, unknown>) => r,
    ...extra,
  });
  return {
    ...(store ? { store } : {}),
    connections: {
      bigA: { type: 'sqlite', path: 'big-a.db' },
      bigB: { type: 'sqlite', path: 'big-b.db' },
      smallA: { type: 'sqlite', path: 'small-a.db' },
      smallB: { type: 'sqlite', path: 'small-b.db' },
    },
    syncs: {
      big: sync('big', { backfill: { partitions: 4 } }),
      small: sync('small', {}),
    },
    bundles: { crm: { syncs: ['big', 'small'] } },
    runtime: { concurrency: 4, grace: '2s', poll: '50ms' },
  };
}

const overlapping = (runs: RunRecord[]) =>
  runs.some((a) =>
    runs.some(
      (b) =>
        a.id !== b.id &&
        Date.parse(a.startedAt) < Date.parse(b.endedAt ?? b.startedAt) &&
        Date.parse(b.startedAt) < Date.parse(a.endedAt ?? a.startedAt),
    ),
  );

async function check(ws: Workspace, dir: string) {
  const runs = await ws.store.listRuns({ limit: 100_000 });
  const parts = runs.filter((r) => r.sync.startsWith('big#'));
  expect(new Set(parts.map((r) => r.sync)).size).toBe(4);
  // Each partition was a request of its own, in its own lane (the sync's runs moved none of them).
  expect(parts.every((r) => r.lane === `sync:${r.sync}`)).toBe(true);
  expect(
    runs.filter((r) => r.sync === 'big' && r.phase === 'backfill').every((r) => r.counters.read === 0),
  ).toBe(true);
  // The partitions moved at once.
  expect(overlapping(parts)).toBe(true);
  // The bundle's other sync ran while the partitions did, not after them all.
  const small = runs.filter((r) => r.sync === 'small').sort((a, b) => a.id - b.id);
  const lastPart = Math.max(...parts.map((r) => Date.parse(r.startedAt)));
  expect(Date.parse(small[0]!.startedAt)).toBeLessThan(lastPart);
  expect(digest(join(dir, 'big-b.db'))).toEqual(digest(join(dir, 'big-a.db')));
  expect(digest(join(dir, 'small-b.db'))).toEqual(digest(join(dir, 'small-a.db')));
  const [status] = await ws.status();
  expect(status).toMatchObject({ sync: 'big', phase: 'incremental', backfillDone: 12_000 });
  return parts;
}

const done = async (ws: Workspace) =>
  (await ws.store.getCheckpoint('big'))?.phase === 'incremental' &&
  (await ws.store.getCheckpoint('small'))?.phase === 'incremental' &&
  (await ws.store.listRuns({ limit: 50 })).every((r) => r.status !== 'running');

describe('a partitioned backfill in a runtime', () => {
  it('local runtime: each partition a request of its own, moved at once beside the bundle', async () => {
    const dir = tempDir('partitions-runtime');
    const ws = await Workspace.fromConfig(config(dir, undefined), dir);
    const runtime: Runtime = new LocalRuntime(ws);
    try {
      await runtime.start();
      await until('both syncs caught up', () => done(ws), 60_000);
      await check(ws, dir);
    } finally {
      await runtime.stop({ timeoutMs: 5_000 });
      await ws.close();
    }
  });

  it('pg-boss runtime: two workers on one PostgreSQL store share the partitions', async () => {
    const dir = tempDir('partitions-runtime');
    const db = await freshDatabase('partitions_runtime', { store: true });
    const [one, two] = [
      await Workspace.fromConfig(config(dir, db.url), dir),
      await Workspace.fromConfig({ ...config(tempDir('unused'), db.url) }, dir),
    ];
    const runtimes = [
      new PgBossRuntime(one, { holder: 'worker-1' }),
      new PgBossRuntime(two, { holder: 'worker-2' }),
    ];
    try {
      await Promise.all(runtimes.map((r) => r.start()));
      await until('both syncs caught up', () => done(one), 90_000);
      const parts = await check(one, dir);
      expect(parts.every((r) => r.status === 'succeeded')).toBe(true);
    } finally {
      await Promise.all(runtimes.map((r) => r.stop({ timeoutMs: 5_000 })));
      await one.close();
      await two.close();
    }
  }, 120_000);
});
