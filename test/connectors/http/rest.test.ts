import { afterEach, describe, expect, it } from 'vitest';
import { httpConnector } from '../../../src/connectors/http/index.ts';
import type { Connector } from '../../../src/core/ports.ts';
import { REST_CLIENT, REST_TOKEN, type RestEmulator, startRestEmulator } from '../../emulators/rest.ts';
import { tempDir } from '../../support/tmp.ts';
import {
  openSource,
  openStore,
  openTarget,
  runOnce,
  runToEnd,
  shapeOf,
  sqliteSource,
  sqliteTarget,
} from './harness.ts';

const emulators: RestEmulator[] = [];
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.server.close()));
});

async function emulator(records: number, tokenTtlMs?: number): Promise<RestEmulator> {
  const emu = await startRestEmulator({ records, ...(tokenTtlMs ? { tokenTtlMs } : {}) });
  emulators.push(emu);
  return emu;
}

const fast = { retries: 5, backoffMs: 5, maxBackoffMs: 50 };
const conn = (emu: RestEmulator, extra: object = {}) => ({
  baseUrl: emu.url,
  auth: { type: 'bearer', token: REST_TOKEN },
  ...fast,
  ...extra,
});

const styles = {
  cursor: { path: '/cursor/items', recordsPath: 'data', paging: { style: 'cursor' } },
  offset: { path: '/offset/items', recordsPath: 'items', paging: { style: 'offset' } },
  page: { path: '/page/items', recordsPath: 'results', paging: { style: 'page' } },
  link: { path: '/link/items', recordsPath: '', paging: { style: 'link' } },
} as const;

const sourceOpts = (style: keyof typeof styles, extra: object = {}) => ({
  ...styles[style],
  pageSize: 50,
  incremental: { param: 'updated_since' },
  ...extra,
});

describe('generic REST source', () => {
  for (const style of Object.keys(styles) as (keyof typeof styles)[]) {
    it(`backfills then follows changes with ${style} paging`, async () => {
      const dir = tempDir();
      const emu = await emulator(1_030);
      const source = await openSource(
        httpConnector as Connector,
        conn(emu),
        sourceOpts(style),
        shapeOf(['id'], 'updated_at', dir),
      );
      const { target, rows } = await sqliteTarget(dir, ['id']);
      const store = openStore(dir);
      const first = await runToEnd(store, source, target, { batchSize: 200 });
      expect(first.checkpoint.totals.read).toBeGreaterThanOrEqual(1_030);
      expect(new Set(rows().map((r) => r.id)).size).toBe(1_030);

      // Changes after the backfill: an edit and a new record, both stamped now (after the high-water mark).
      const now = new Date(Date.now() + 1000).toISOString();
      emu.put({ ...emu.get(7)!, name: 'Edited', updated_at: now });
      emu.put({ id: 5_000, email: 'new@example.com', name: 'New', updated_at: now });
      await runToEnd(store, source, target, { batchSize: 200 });
      const after = rows();
      expect(after).toHaveLength(1_031);
      expect(after.find((r) => r.id === 7)?.name).toBe('Edited');
      await store.close();
    });
  }

  it('a lookback sweep lists from its start and stops at until (the API bounds below only)', async () => {
    const emu = await emulator(300);
    const source = await openSource(
      httpConnector as Connector,
      conn(emu),
      sourceOpts('cursor'),
      shapeOf(['id'], 'updated_at', tempDir()),
    );
    const at = (i: number) => new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString();
    const position = (since: string) => ({ since, token: null, seen: 0, max: null, size: null });
    const page = await source.read({
      phase: 'incremental',
      cursor: position(at(100)),
      until: position(at(150)),
      highWaterMark: null,
      limit: 1_000,
      signal: AbortSignal.timeout(10_000),
    });
    expect(page.records.map((r) => r.id)).toEqual(Array.from({ length: 51 }, (_, i) => 100 + i));
    expect(page.done).toBe(true);
    expect(source.timeOf!(position(at(100)))).toBe(Date.UTC(2024, 0, 1) + 100_000);
  });

  it('slows down on 429 with Retry-After and loses nothing', async () => {
    const dir = tempDir();
    const emu = await emulator(400);
    emu.server.faults.rateLimit = { requests: 3, windowMs: 1_000, retryAfterS: 1 };
    const source = await openSource(
      httpConnector as Connector,
      conn(emu),
      sourceOpts('offset'),
      shapeOf(['id'], 'updated_at', dir),
    );
    const { target, rows } = await sqliteTarget(dir, ['id']);
    const store = openStore(dir);
    const t0 = Date.now();
    await runToEnd(store, source, target, { batchSize: 100 });
    expect(emu.server.stats.rateLimited).toBeGreaterThan(0);
    // 9+ requests at 3 per second cannot finish in under two seconds.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2_000);
    expect(new Set(rows().map((r) => r.id)).size).toBe(400);
    await store.close();
  });

  it('retries a burst of 5xx', async () => {
    const dir = tempDir();
    const emu = await emulator(300);
    emu.server.faults.failNext = 4;
    const source = await openSource(
      httpConnector as Connector,
      conn(emu),
      sourceOpts('cursor'),
      shapeOf(['id'], 'updated_at', dir),
    );
    const { target, rows } = await sqliteTarget(dir, ['id']);
    const store = openStore(dir);
    await runToEnd(store, source, target);
    expect(emu.server.stats.failed).toBe(4);
    expect(rows()).toHaveLength(300);
    await store.close();
  });

  it('opens the circuit when the service keeps failing, probes it, and gives up naming the cause', async () => {
    const dir = tempDir();
    const emu = await emulator(10);
    emu.server.faults.failRate = 1;
    const c = conn(emu, {
      retries: 20,
      retryWindowMs: 1_500,
      circuitBreaker: { failures: 3, halfOpenAfterMs: 300 },
    });
    const source = await openSource(
      httpConnector as Connector,
      c,
      sourceOpts('page'),
      shapeOf(['id'], 'updated_at', dir),
    );
    const { target } = await sqliteTarget(dir, ['id']);
    const store = openStore(dir);
    const err = await runOnce(store, source, target).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'HTTP_CIRCUIT_OPEN' });
    // The message names what kept failing, not just that the circuit was open.
    expect((err as Error).message).toMatch(/keeps failing \(GET .* failed \(503\)/);
    // 3 failures open it; then one probe per interval (300, 600 ms…), never every caller's retries.
    expect(emu.server.stats.failed).toBeGreaterThanOrEqual(4);
    expect(emu.server.stats.failed).toBeLessThanOrEqual(6);
    await store.close();
  });

  it('refreshes an expired OAuth token once and replays the request', async () => {
    const dir = tempDir();
    const emu = await emulator(120);
    const auth = {
      type: 'oauth2',
      grant: 'refresh_token',
      tokenUrl: `${emu.url}/oauth/token`,
      clientId: REST_CLIENT.id,
      clientSecret: REST_CLIENT.secret,
      refreshToken: REST_CLIENT.refreshToken,
    };
    const source = await openSource(
      httpConnector as Connector,
      conn(emu, { auth }),
      sourceOpts('link'),
      shapeOf(['id'], 'updated_at', dir),
    );
    const { target, rows } = await sqliteTarget(dir, ['id']);
    const store = openStore(dir);
    await runToEnd(store, source, target);
    expect(emu.server.stats.tokens).toBe(1);
    emu.server.expireTokens();
    emu.put({
      id: 999,
      email: 'late@example.com',
      name: 'Late',
      updated_at: new Date(Date.now() + 1000).toISOString(),
    });
    await runToEnd(store, source, target);
    expect(emu.server.stats.tokens).toBe(2);
    expect(emu.server.stats.byPath.get('/oauth/token')).toBe(2);
    expect(rows()).toHaveLength(121);
    await store.close();
  });

  it('times out on a hung server, fails the run, and a later run replays the batch', async () => {
    const dir = tempDir();
    const emu = await emulator(250);
    const source = await openSource(
      httpConnector as Connector,
      conn(emu, { timeoutMs: 150, retries: 1 }),
      sourceOpts('offset'),
      shapeOf(['id'], 'updated_at', dir),
    );
    const { target, rows } = await sqliteTarget(dir, ['id']);
    const store = openStore(dir);
    await runOnce(store, source, target, { batchSize: 100, maxRunDurationMs: 1 }); // one batch, then stop
    emu.server.faults.hang = true;
    await expect(runOnce(store, source, target, { batchSize: 100 })).rejects.toMatchObject({
      code: 'HTTP_TIMEOUT',
    });
    // The attempt and its one retry (plus any read-ahead the first run left in flight).
    expect(emu.server.stats.hung).toBeGreaterThanOrEqual(2);
    const cp = await store.getCheckpoint('s');
    expect(cp?.backfillDone).toBe(100);
    emu.server.releaseHung();
    await runToEnd(store, source, target, { batchSize: 100 });
    expect(new Set(rows().map((r) => r.id)).size).toBe(250);
    const runs = await store.listRuns({ sync: 's' });
    expect(runs.some((r) => r.status === 'failed' && r.errorCode === 'HTTP_TIMEOUT')).toBe(true);
    await store.close();
  });
});

describe('generic REST target', () => {
  const people = (n: number, bad: number[]) =>
    Array.from({ length: n }, (_, i) => ({
      id: i + 1,
      email: bad.includes(i + 1) ? `not-an-email-${i + 1}` : `p${i + 1}@example.com`,
      name: `P ${i + 1}`,
      updated_at: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString(),
    }));

  it('writes batches and dead-letters the records the API rejects, with its message', async () => {
    const dir = tempDir();
    const emu = await emulator(0);
    const source = await sqliteSource(dir, people(250, [3, 120, 249]), ['id'], 'updated_at');
    const target = await openTarget(
      httpConnector as Connector,
      conn(emu),
      {
        path: '/items/batch',
        bodyKey: 'records',
        resultsPath: 'results',
        errorPath: 'error',
        batchSize: 100,
      },
      shapeOf(['id'], null, dir),
    );
    const store = openStore(dir);
    await runToEnd(store, source, target, { batchSize: 100 });
    expect(emu.items).toHaveLength(247);
    const dead = await store.listDeadLetters({ sync: 's' });
    expect(dead.map((d) => (d.record as { id: number }).id).sort((a, b) => a - b)).toEqual([3, 120, 249]);
    expect(dead[0]!.reason).toMatch(/is not a valid address/);
    await store.close();
  });

  it('writes one record per call and dead-letters 422s', async () => {
    const dir = tempDir();
    const emu = await emulator(0);
    const source = await sqliteSource(dir, people(40, [9]), ['id'], 'updated_at');
    const target = await openTarget(
      httpConnector as Connector,
      conn(emu, { idempotencyHeader: 'Idempotency-Key' }),
      { mode: 'record', method: 'PUT', path: '/items/{id}' },
      shapeOf(['id'], null, dir),
    );
    const store = openStore(dir);
    await runToEnd(store, source, target, { batchSize: 25 });
    expect(emu.items).toHaveLength(39);
    const dead = await store.listDeadLetters({ sync: 's' });
    expect(dead).toHaveLength(1);
    expect(dead[0]!.reason).toBe('email "not-an-email-9" is not a valid address');
    await store.close();
  });
});
