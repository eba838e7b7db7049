import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/core/ports.ts';
import type { Runtime } from '../../src/runtime/port.ts';
import { Workspace } from '../../src/runtime/workspace.ts';
import { faultyConnector } from '../support/connectors.ts';
import { digest, seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';

export type RuntimeFactory = (ws: Workspace) => Runtime;

/** Where an adapter keeps what it needs beyond the default SQLite store. */
export type ConformanceOptions = {
  /** A store location of its own for each test (a fresh PostgreSQL database); default: a SQLite file in the test's folder. */
  store?: () => Promise<string>;
  /** How many requests of a sync wait in the adapter's queue, read with the runtime stopped. */
  pending?: (ws: Workspace, sync: string) => Promise<number>;
};

let adapter: ConformanceOptions = {};

type SyncSpec = {
  rows: number;
  batch?: number;
  maxRunDuration?: string;
  rerun?: unknown;
  retries?: unknown;
  target?: Record<string, unknown>;
  webhook?: boolean;
};

/** A workspace of SQLite → SQLite contact syncs, one pair of files per sync, and its runtime. */
async function setUp(
  factory: RuntimeFactory,
  syncs: Record<string, SyncSpec>,
  bundles: Record<string, string[]> = {},
) {
  const dir = tempDir('runtime');
  const connections: Record<string, unknown> = {};
  const syncConfigs: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(syncs)) {
    seedContacts(join(dir, `${name}-a.db`), spec.rows, { perSecond: 50 });
    connections[`${name}A`] = { type: 'sqlite', path: `${name}-a.db` };
    connections[`${name}B`] = spec.target
      ? { type: 'faulty', path: `${name}-b.db` }
      : { type: 'sqlite', path: `${name}-b.db` };
    syncConfigs[name] = {
      source: { connection: `${name}A`, table: 'contacts' },
      target: { connection: `${name}B`, table: 'contacts', ...spec.target },
      key: 'id',
      cursor: 'updated_at',
      batch: { size: spec.batch ?? 100 },
      maxRunDuration: spec.maxRunDuration ?? '10m',
      ...(spec.rerun ? { rerun: spec.rerun } : {}),
      ...(spec.retries ? { retries: spec.retries } : {}),
      ...(spec.webhook ? { webhook: { tokens: ['t'] } } : {}),
    };
  }
  const config = {
    connections,
    syncs: syncConfigs,
    bundles: Object.fromEntries(Object.entries(bundles).map(([b, members]) => [b, { syncs: members }])),
    runtime: { concurrency: 4, grace: '2s', poll: '50ms' },
    ...(adapter.store ? { store: await adapter.store() } : {}),
  };
  const ws = await Workspace.fromConfig(config, dir, { connectors: [faultyConnector] });
  const runtime = factory(ws);
  const phase = async (sync: string) => (await ws.store.getCheckpoint(sync))?.phase;
  // Caught up and settled: the checkpoint reaches incremental before its run is recorded as ended.
  const done = async (sync: string) =>
    (await phase(sync)) === 'incremental' &&
    (await ws.store.listRuns({ sync, limit: 1 }))[0]?.status !== 'running';
  const runs = async (sync?: string): Promise<RunRecord[]> =>
    (await ws.store.listRuns({ ...(sync ? { sync } : {}), limit: 10_000 })).reverse();
  const close = async () => {
    await runtime.stop({ timeoutMs: 5_000 });
    await ws.close();
  };
  return {
    dir,
    ws,
    runtime,
    phase,
    done,
    runs,
    close,
    equal: (sync: string) =>
      expect(digest(join(dir, `${sync}-b.db`))).toEqual(digest(join(dir, `${sync}-a.db`))),
  };
}

const interval = (r: RunRecord) => [Date.parse(r.startedAt), Date.parse(r.endedAt ?? r.startedAt)] as const;

function assertNoOverlap(runs: RunRecord[]): void {
  const sorted = [...runs].sort((a, b) => interval(a)[0] - interval(b)[0]);
  for (let i = 1; i < sorted.length; i++) {
    const [, prevEnd] = interval(sorted[i - 1]!);
    const [start] = interval(sorted[i]!);
    expect(
      start,
      `run ${sorted[i]!.id} of ${sorted[i]!.sync} started before run ${sorted[i - 1]!.id} ended`,
    ).toBeGreaterThanOrEqual(prevEnd);
  }
}

/** The runtime contract: every adapter must pass these. */
export function runtimeConformance(
  name: string,
  factory: RuntimeFactory,
  options: ConformanceOptions = {},
): void {
  describe(`runtime conformance: ${name}`, () => {
    beforeEach(() => {
      adapter = options;
    });
    it('never overlaps two runs of one bundle, and lets a second sync run between two runs of a backfill', async () => {
      const t = await setUp(
        factory,
        {
          big: { rows: 6000, maxRunDuration: '20ms', target: { delayMs: 2 } },
          small: { rows: 300, maxRunDuration: '20ms' },
        },
        { crm: ['big', 'small'] },
      );
      try {
        await t.runtime.start();
        await until('both backfills done', async () => (await t.done('big')) && (await t.done('small')));
        const runs = await t.runs();
        assertNoOverlap(runs);
        const big = runs.filter((r) => r.sync === 'big');
        const small = runs.filter((r) => r.sync === 'small');
        expect(big.length).toBeGreaterThan(3);
        // The small sync's first run came between two of the backfill's runs, not after all of them.
        expect(Date.parse(small[0]!.startedAt)).toBeLessThan(Date.parse(big.at(-1)!.startedAt));
        t.equal('big');
        t.equal('small');
      } finally {
        await t.close();
      }
    });

    it('lets a scheduled sync take turns with a triggered backfill whose connectors never block', async () => {
      // SQLite connectors resolve at once: the runtime must still let timers fire between batches.
      const t = await setUp(
        factory,
        {
          big: { rows: 20_000, maxRunDuration: '20ms' },
          ticker: { rows: 20_000, maxRunDuration: '20ms', rerun: { mode: 'scheduled', every: '25ms' } },
        },
        { crm: ['big', 'ticker'] },
      );
      try {
        await t.runtime.start();
        await until(
          'both backfills done',
          async () => (await t.done('big')) && (await t.done('ticker')),
          60_000,
        );
        const runs = await t.runs();
        assertNoOverlap(runs);
        const big = runs.filter((r) => r.sync === 'big');
        const ticker = runs.filter((r) => r.sync === 'ticker');
        expect(ticker.length).toBeGreaterThan(1);
        expect(Date.parse(ticker[0]!.startedAt)).toBeLessThan(Date.parse(big.at(-1)!.startedAt));
        t.equal('big');
        t.equal('ticker');
      } finally {
        await t.close();
      }
    });

    it('finishes a webhook-triggered run while a backfill in its bundle is mid-way', async () => {
      const t = await setUp(
        factory,
        {
          big: { rows: 4000, maxRunDuration: '30ms', target: { delayMs: 10 } },
          hooked: { rows: 50, webhook: true },
        },
        { crm: ['big', 'hooked'] },
      );
      try {
        await t.runtime.start();
        await until('the backfill to be under way', async () => (await t.runs('big')).length >= 2);
        // Make sure `hooked` is done with its own first backfill before the webhook arrives.
        await until('hooked caught up', () => t.done('hooked'));
        const request = await t.runtime.request('hooked', { trigger: 'webhook', payload: { contact: 7 } });
        expect(request.lane).toBe('webhook:hooked');
        const hookRun = await until('the webhook run', async () =>
          (await t.runs('hooked')).find((r) => r.trigger === 'webhook' && r.endedAt),
        );
        expect(await t.phase('big')).toBe('backfill');
        await until('the backfill to finish', () => t.done('big'), 60_000);
        const lastBig = (await t.runs('big')).at(-1)!;
        expect(Date.parse(hookRun!.endedAt!)).toBeLessThan(Date.parse(lastBig.startedAt));
        t.equal('big');
      } finally {
        await t.close();
      }
    });

    it('chains triggered runs through a backfill by waking each successor, not by polling for it', async () => {
      // Writes take 3 ms a batch, so each 15 ms run moves a few batches and the backfill takes many runs.
      const t = await setUp(factory, {
        big: { rows: 6000, batch: 100, maxRunDuration: '15ms', target: { delayMs: 3 } },
      });
      // The queue is polled once an hour: a successor found only by polling waits an hour, so the chain
      // ends within the bound only if each run's end wakes its successor. The bound is generous for a
      // loaded machine (the chain takes about a second); the idle gap figures are in bench/runtime.ts.
      t.ws.config.config.runtime.poll = 3_600_000;
      const runtime = factory(t.ws);
      try {
        await runtime.start();
        await until('the backfill to finish with the queue polled once an hour', () => t.done('big'), 45_000);
        const runs = (await t.runs('big')).filter((r) => r.phase === 'backfill');
        expect(runs.length).toBeGreaterThan(5);
        expect(runs.slice(1).every((r) => r.trigger === 'rerun')).toBe(true);
        t.equal('big');
      } finally {
        await runtime.stop({ timeoutMs: 5_000 });
        await t.close();
      }
    });

    it('retries a failing batch of a scheduled sync N times, then dead-letters it and goes on', async () => {
      const t = await setUp(factory, {
        sched: {
          rows: 1000,
          batch: 100,
          maxRunDuration: '1h',
          rerun: { mode: 'scheduled', every: '60ms' },
          retries: { attempts: 3 },
          target: { failKeys: [301, 301] },
        },
      });
      try {
        await t.runtime.start();
        await until('backfill done', () => t.done('sched'));
        const runs = await t.runs('sched');
        expect(runs.filter((r) => r.status === 'failed')).toHaveLength(3);
        const letters = await t.ws.store.listDeadLetters({ sync: 'sched' });
        expect(letters.map((l) => (l.record as { id: number }).id)).toEqual(
          Array.from({ length: 100 }, (_, i) => 301 + i),
        );
        expect(letters[0]?.reason).toMatch(/^failed 3 times: .*503 Service Unavailable/);
        expect(letters[0]?.cursorFrom).toEqual({ key: [300] });
        const target = digest(join(t.dir, 'sched-b.db'));
        expect(target.count).toBe(900);
      } finally {
        await t.close();
      }
    });

    it('gives every failing batch of a scheduled sync exactly its attempts, the one after a set-aside batch too', async () => {
      // Batches 301–400 and 401–500 both fail. The run that sets the first aside goes on into the
      // second and fails there: that is the second batch's first attempt, not a free one.
      const t = await setUp(factory, {
        sched: {
          rows: 1000,
          batch: 100,
          maxRunDuration: '1h',
          rerun: { mode: 'scheduled', every: '60ms' },
          retries: { attempts: 3 },
          target: { failKeys: [301, 401] },
        },
      });
      try {
        await t.runtime.start();
        await until('backfill done', () => t.done('sched'));
        const failed = (await t.runs('sched')).filter((r) => r.status === 'failed');
        expect(failed).toHaveLength(6);
        const letters = await t.ws.store.listDeadLetters({ sync: 'sched', limit: 1000 });
        expect(letters).toHaveLength(200);
        expect(letters.every((l) => /^failed 3 times: /.test(l.reason))).toBe(true);
        expect(digest(join(t.dir, 'sched-b.db')).count).toBe(800);
      } finally {
        await t.close();
      }
    });

    it('records every attempt that fails before its first batch, so runs and status say why', async () => {
      // The target cannot even be opened: each attempt must still leave a failed run with the reason.
      const t = await setUp(factory, {
        down: {
          rows: 10,
          target: { failOpen: true },
          retries: { attempts: 2, backoff: { initial: '10ms', max: '20ms' } },
        },
      });
      const broken: string[] = [];
      t.runtime.on('chain:broken', (e) => broken.push(e.reason));
      try {
        await t.runtime.start();
        await until('the chain to stop', () => broken.length > 0);
        const runs = await t.runs('down');
        expect(runs.map((r) => r.status)).toEqual(['failed', 'failed']);
        for (const run of runs)
          expect(run.errorMessage).toMatch(/cannot open its target: connect ECONNREFUSED/);
        const [status] = await t.ws.status();
        expect(status).toMatchObject({ sync: 'down', state: 'failed' });
        expect(status?.error).toMatch(/cannot open its target/);
      } finally {
        await t.close();
      }
    });

    it('stops a triggered chain after its retries, and a watchdog restarts it from the checkpoint', async () => {
      const t = await setUp(factory, {
        chain: {
          rows: 1000,
          batch: 100,
          maxRunDuration: '10ms',
          rerun: { mode: 'triggered', watchdog: { every: '300ms' } },
          retries: { attempts: 2, backoff: { initial: '10ms', max: '20ms' } },
          target: { failKeys: [501, 501], failTimes: 2 },
        },
      });
      const broken: string[] = [];
      t.runtime.on('chain:broken', (e) => broken.push(e.reason));
      try {
        await t.runtime.start();
        await until('backfill done', () => t.done('chain'));
        expect(broken).toHaveLength(1);
        expect(broken[0]).toMatch(/failed 2 times/);
        const runs = await t.runs('chain');
        const failed = runs.filter((r) => r.status === 'failed');
        expect(failed).toHaveLength(2);
        expect(failed[1]?.trigger).toBe('retry');
        expect(runs.some((r) => r.trigger === 'watchdog' && r.status === 'succeeded')).toBe(true);
        t.equal('chain');
      } finally {
        await t.close();
      }
    });

    it('aborts a run that overruns its budget plus grace and releases its lane', async () => {
      const t = await setUp(
        factory,
        { stuck: { rows: 100, maxRunDuration: '100ms', target: { hang: true } }, next: { rows: 100 } },
        { crm: ['stuck', 'next'] },
      );
      try {
        await t.runtime.start();
        await until(
          'the stuck run recorded as timed out',
          async () => (await t.runs('stuck')).find((r) => r.status === 'timed_out'),
          15_000,
        );
        await until('the other sync of the bundle to run', () => t.done('next'), 15_000);
        t.equal('next');
      } finally {
        await t.close();
      }
    });

    it('keeps requested runs across a restart and resumes from the checkpoint', async () => {
      const t = await setUp(factory, { big: { rows: 3000, maxRunDuration: '20ms', target: { delayMs: 5 } } });
      try {
        await t.runtime.start();
        await until('the backfill to be under way', async () => (await t.runs('big')).length >= 2);
        await t.runtime.stop({ timeoutMs: 5_000 });
        const stoppedAt = (await t.ws.store.getCheckpoint('big'))!;
        expect(stoppedAt.phase).toBe('backfill');
        const pending = options.pending
          ? await options.pending(t.ws, 'big')
          : (await t.ws.store.queue!.pending('big')).length;
        expect(pending).toBeGreaterThan(0);
        const again = factory(t.ws);
        await again.start();
        try {
          await until('backfill done after the restart', () => t.done('big'));
        } finally {
          await again.stop();
        }
        const runs = await t.runs('big');
        expect(runs.filter((r) => r.status === 'running')).toEqual([]);
        t.equal('big');
      } finally {
        await t.close();
      }
    });
  });
}
