import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { sqliteConnector } from '../../src/connectors/sqlite/index.ts';
import type { Connector, RunRecord, Source } from '../../src/core/ports.ts';
import { LocalRuntime } from '../../src/runtime/local/runtime.ts';
import { Workspace } from '../../src/runtime/workspace.ts';
import { seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';

/*
 * Issue 12, item 9: "A scheduled sync whose high-water query fails (a bad `where`) retried forever,
 * in pairs 3 ms apart: failures before the first batch must follow the same backoff and attempt
 * limit as any other, and end in a visible `failed`."
 *
 * What core/policy.ts `afterRun` promises for a failed run:
 * - scheduled: the failure waits for the next tick of the schedule (no backoff: the schedule is the
 *   pace), attempt after attempt; at `retries.attempts` the batch at the checkpoint is set aside
 *   (dead-lettered) and the sync moves past it. A failure before the first batch has no batch to set
 *   aside, so the only ending the issue allows is a stop: `attempts` failed runs, then nothing.
 * - triggered: the successor waits `retryDelay` (at least `backoff.initial`, at most `backoff.max`);
 *   at `retries.attempts` the chain is broken and the sync is failed until restarted.
 * Every attempt must leave a failed run with the reason, and status must say the sync failed and why.
 */

const EVERY_MS = 150;
const ATTEMPTS = 3;
/** Ticks watched after the last allowed attempt: a runtime that goes on retrying shows it within these. */
const QUIET_TICKS = 8;

/**
 * The SQLite source with a guessed estimate (so every run of a backfill asks for it again), whose
 * estimate of what is left fails once the backfill is under way: as a table dropped or renamed
 * after the first run, or a count that times out, makes it fail.
 */
const estimateFails: Connector<{ path: string }, { table: string }, never> = {
  type: 'estimate-fails',
  connection: z.strictObject({ path: z.string() }),
  source: {
    options: z.strictObject({ table: z.string() }),
    async open(conn, options, shape) {
      const real = await sqliteConnector.source!.open(conn, options, shape);
      const source: Source = {
        read: (req) => real.read(req),
        readsSynchronously: real.readsSynchronously ?? false,
        highWaterMark: () => real.highWaterMark!(),
        async estimate(req) {
          if (req.cursor !== null) throw new Error(`no such table: ${options.table} (the estimate query)`);
          const estimate = await real.estimate!(req);
          return estimate && { ...estimate, exact: false };
        },
        close: () => real.close?.() ?? Promise.resolve(),
      };
      if (real.schema) source.schema = () => real.schema!();
      return source;
    },
  },
};

type Case = {
  name: string;
  /** The sync's source; `a.db` holds 1,000 contacts. */
  source: Record<string, unknown>;
  /** Runs that succeed before the failures start. */
  succeeded: number;
  reason: RegExp;
};

const CASES: Case[] = [
  {
    name: 'a bad `where`: the SQLite source’s high-water query fails on the first run',
    source: { connection: 'a', table: 'contacts', where: 'no_such_column > 0' },
    succeeded: 0,
    reason: /no such column: no_such_column/,
  },
  {
    name: 'the estimate query fails once the backfill is under way',
    source: { connection: 'flaky', table: 'contacts' },
    succeeded: 1,
    reason: /no such table: contacts \(the estimate query\)/,
  },
];

async function setUp(source: Record<string, unknown>, rerun: unknown, retries: unknown) {
  const dir = tempDir('prebatch');
  seedContacts(join(dir, 'a.db'), 1000, { perSecond: 50 });
  const ws = await Workspace.fromConfig(
    {
      connections: {
        a: { type: 'sqlite', path: 'a.db' },
        flaky: { type: 'estimate-fails', path: 'a.db' },
        b: { type: 'sqlite', path: 'b.db' },
      },
      syncs: {
        s: {
          source,
          target: { connection: 'b', table: 'contacts' },
          key: 'id',
          cursor: 'updated_at',
          batch: { size: 100 },
          // One batch a run: the backfill needs many runs, so the one after the first fails.
          maxRunDuration: '1ms',
          rerun,
          retries,
        },
      },
      runtime: { poll: '50ms', grace: '2s' },
    },
    dir,
    { connectors: [estimateFails] },
  );
  const runtime = new LocalRuntime(ws);
  const broken: string[] = [];
  runtime.on('chain:broken', (e) => broken.push(e.reason));
  const runs = async (): Promise<RunRecord[]> =>
    (await ws.store.listRuns({ sync: 's', limit: 1000 })).reverse();
  const failed = async () => (await runs()).filter((r) => r.status === 'failed');
  const close = async () => {
    await runtime.stop({ timeoutMs: 5_000 });
    await ws.close();
  };
  return { dir, ws, runtime, broken, runs, failed, close };
}

const startGaps = (runs: RunRecord[]): number[] =>
  runs.slice(1).map((r, i) => Date.parse(r.startedAt) - Date.parse(runs[i]!.startedAt));

describe('a scheduled sync that fails before its first batch', () => {
  for (const c of CASES) {
    describe(c.name, () => {
      const scheduled = () =>
        setUp(
          c.source,
          { mode: 'scheduled', every: `${EVERY_MS}ms` },
          // A backoff shorter than the tick: the schedule is the pace either way.
          { attempts: ATTEMPTS, backoff: { initial: '100ms', max: '1s' } },
        );

      it('leaves a failed run with the reason for every attempt, and status says failed and why', async () => {
        const t = await scheduled();
        try {
          await t.runtime.start();
          await until('the attempts to fail', async () => (await t.failed()).length >= ATTEMPTS);
          const runs = await t.runs();
          expect(runs.slice(0, c.succeeded).map((r) => r.status)).toEqual(
            Array(c.succeeded).fill('succeeded'),
          );
          const failed = runs.slice(c.succeeded, c.succeeded + ATTEMPTS);
          expect(failed.map((r) => r.status)).toEqual(Array(ATTEMPTS).fill('failed'));
          for (const run of failed) expect(run.errorMessage).toMatch(c.reason);
          // The first attempt is the schedule's; the later ones are retries of it.
          expect(failed.slice(1).every((r) => r.trigger === 'retry')).toBe(true);
          // Nothing was read, so nothing was dead-lettered in its place.
          expect(await t.ws.store.countOpenDeadLetters('s')).toBe(0);
          const [status] = await t.ws.status();
          expect(status?.lastRun?.status).toBe('failed');
          expect(status?.error).toMatch(c.reason);
        } finally {
          await t.close();
        }
      });

      // Failed before the fix: at the last attempt the policy answered `skip-batch` though no batch
      // was read, the set-aside run failed the same way milliseconds later, and the ticks retried
      // forever (attempts 2, 3, set-aside, 2, 3…). Now a failure is marked when it is met on a
      // batch's records (core/errors `markAtBatch`); one that is not ends the sync `failed`.
      it(`tries ${ATTEMPTS} times, a tick apart, then stops, failed with the reason`, async () => {
        const t = await scheduled();
        try {
          await t.runtime.start();
          await until('the attempts to fail', async () => (await t.failed()).length >= ATTEMPTS);
          await sleep(QUIET_TICKS * EVERY_MS);
          const runs = await t.runs();
          const failed = runs.slice(c.succeeded);
          const gaps = startGaps(failed);
          // One attempt per tick at most: never two attempts closer than half a tick.
          // Soft: a failure shows both what was tried and how far apart.
          expect
            .soft(
              gaps.filter((g) => g < EVERY_MS / 2),
              `gaps between attempts (ms): ${gaps.join(', ')}`,
            )
            .toEqual([]);
          expect(
            failed.map((r) => `${r.trigger} ${r.status}`),
            `${QUIET_TICKS} ticks after the last allowed attempt`,
          ).toEqual(Array.from({ length: ATTEMPTS }, (_, i) => `${i === 0 ? 'schedule' : 'retry'} failed`));
          expect(await t.ws.store.queue!.pending('s')).toEqual([]);
          const [status] = await t.ws.status();
          expect(status).toMatchObject({ state: 'failed' });
          expect(status?.error).toMatch(c.reason);
        } finally {
          await t.close();
        }
      });
    });
  }
});

describe('a triggered sync that fails before its first batch', () => {
  const BACKOFF = { initial: 200, max: 1000 };

  it('retries after the backoff (never sooner than initial), then breaks the chain, failed with the reason', async () => {
    const t = await setUp(
      CASES[0]!.source,
      { mode: 'triggered' },
      { attempts: ATTEMPTS, backoff: { initial: `${BACKOFF.initial}ms`, max: `${BACKOFF.max}ms` } },
    );
    try {
      await t.runtime.start();
      await until('the chain to break', () => t.broken.length > 0);
      // Long enough for one more attempt at the longest backoff, were there one.
      await sleep(BACKOFF.max + 300);
      const runs = await t.runs();
      expect(runs.map((r) => `${r.trigger} ${r.status}`)).toEqual([
        'backfill failed',
        ...Array(ATTEMPTS - 1).fill('retry failed'),
      ]);
      for (const run of runs) expect(run.errorMessage).toMatch(CASES[0]!.reason);
      // Each retry waited its backoff from the end of the attempt before it.
      const waits = runs.slice(1).map((r, i) => Date.parse(r.startedAt) - Date.parse(runs[i]!.endedAt!));
      for (const wait of waits) {
        expect(wait, `waits between attempts: ${waits.join(', ')} ms`).toBeGreaterThanOrEqual(
          BACKOFF.initial,
        );
        // A busy machine may start a due run late, never early: the bound above is the one that matters.
        expect(wait, `waits between attempts: ${waits.join(', ')} ms`).toBeLessThan(BACKOFF.max + 1_000);
      }
      expect(t.broken).toEqual([expect.stringMatching(/^failed 3 times: no such column: no_such_column/)]);
      expect(await t.ws.store.queue!.pending('s')).toEqual([]);
      const [status] = await t.ws.status();
      expect(status).toMatchObject({ state: 'failed' });
      expect(status?.error).toMatch(CASES[0]!.reason);
    } finally {
      await t.close();
    }
  });
});
