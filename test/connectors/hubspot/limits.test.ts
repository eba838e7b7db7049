/**
 * HubSpot's limits against a counting emulator: the emulator enforces the limit (rolling window, 429
 * without Retry-After, as documented) and records when every request arrived, so a test asserts the
 * busiest window the client ever caused — not how long it took.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { apiBudget } from '../../../src/connectors/http/connection.ts';
import { hubspotConnector } from '../../../src/connectors/hubspot/index.ts';
import type { Connector, Source } from '../../../src/core/ports.ts';
import type { Cursor } from '../../../src/core/types.ts';
import { HUBSPOT_TOKEN, type HubSpotEmulator, startHubSpotEmulator } from '../../emulators/hubspot.ts';
import { tempDir } from '../../support/tmp.ts';
import { openSource, openStore, openTarget, runOnce, runToEnd, shapeOf } from '../http/harness.ts';

const emulators: HubSpotEmulator[] = [];
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.server.close()));
});

async function emulator(contacts: number, options: object = {}): Promise<HubSpotEmulator> {
  const emu = await startHubSpotEmulator({ contacts, ...options });
  emulators.push(emu);
  return emu;
}

const conn = (emu: HubSpotEmulator, extra: object = {}) => ({
  baseUrl: emu.url,
  accessToken: HUBSPOT_TOKEN,
  ...extra,
});

const isSearch = (path: string) => path.endsWith('/search');

describe('HubSpot limits', () => {
  it('keeps a HubSpot → HubSpot sync on one connection to one window, from its first call, with no 429', async () => {
    const dir = tempDir();
    const emu = await emulator(1_500);
    const limit = { requests: 10, perMs: 1_000 };
    emu.server.faults.rateLimit = { requests: limit.requests, windowMs: limit.perMs };
    // Source and target open the connection each on their own, as two syncs would: they share it.
    const c = conn(emu, { rateLimit: limit, searchRateLimit: null });
    const source = await openSource(
      hubspotConnector as Connector,
      c,
      { properties: ['email', 'firstname'], searchLagMs: 60_000 },
      shapeOf(['id'], 'lastmodifieddate', dir),
    );
    const target = await openTarget(
      hubspotConnector as Connector,
      { ...c },
      { idProperty: 'email', omit: ['id', 'hs_object_id', 'createdate', 'lastmodifieddate'] },
      shapeOf(['id'], null, dir),
    );
    const store = openStore(dir);
    await runToEnd(store, source, target, { batchSize: 500 });
    // 15 list pages, 15 batch upserts, a count and an incremental search: three windows' worth.
    expect(emu.server.stats.requests).toBeGreaterThanOrEqual(31);
    expect(emu.server.busiest(limit.perMs)).toBeLessThanOrEqual(limit.requests);
    expect(emu.server.stats.rateLimited).toBe(0);
    expect((await store.getCheckpoint('s'))!.totals.written).toBe(1_500);
    await store.close();
  });

  it('reads a 10,000-change incremental at the search API’s documented 4 a second with 0 search 429s', async () => {
    const dir = tempDir();
    const emu = await emulator(10_000);
    // The documented search limit on both sides; the burst limit off, so only search is measured.
    emu.searchRateLimit = { requests: 4, windowMs: 1_000 };
    const source = await openSource(
      hubspotConnector as Connector,
      conn(emu, { rateLimit: null }),
      { properties: ['email', 'firstname'], searchPageSize: 200, searchLagMs: 0 },
      shapeOf(['id'], 'lastmodifieddate', dir),
    );
    const { target, count } = memoryTarget();
    const store = openStore(dir);
    await runToEnd(store, source, target, { batchSize: 2_000 });
    const hwm = (await store.getCheckpoint('s'))!.highWaterMark as { ts: number };
    while (Date.now() <= hwm.ts + 200) await sleep(50);
    const changed = Date.now();
    // 10,000 changes over 100 ms after the high-water mark, 100 to a millisecond.
    const groups = new Map<number, number[]>();
    for (const x of emu.contacts) groups.set(x.id % 100, [...(groups.get(x.id % 100) ?? []), x.id]);
    for (const [k, ids] of groups) emu.touch(ids, changed - k, { firstname: 'Changed' });
    const searchesBefore = emu.server.stats.byPath.get('/crm/v3/objects/contacts/search') ?? 0;
    await runToEnd(store, source, target, { batchSize: 2_000 });
    const searches = (emu.server.stats.byPath.get('/crm/v3/objects/contacts/search') ?? 0) - searchesBefore;
    expect(searches).toBeGreaterThanOrEqual(50);
    expect(emu.searchRateLimited).toBe(0);
    expect(emu.server.busiest(1_000, isSearch)).toBeLessThanOrEqual(4);
    expect(count()).toBe(20_000);
    await store.close();
  }, 120_000);

  it('spends a daily quota, then refuses with QUOTA_EXHAUSTED until midnight (UTC unless told)', async () => {
    const emu = await emulator(1_000);
    const options = hubspotConnector.connection.parse(
      conn(emu, { rateLimit: null, searchRateLimit: null, quota: { perDay: 5 } }),
    );
    const source = (await hubspotConnector.source!.open(
      options,
      hubspotConnector.source!.options.parse({}),
      shapeOf(['id'], 'lastmodifieddate', tempDir()),
    )) as Source;
    const signal = AbortSignal.timeout(20_000);
    let cursor: Cursor | null = null;
    const read = () =>
      source.read({ phase: 'backfill', cursor, limit: 100, highWaterMark: null, signal }).then((p) => {
        cursor = p.next;
        return p;
      });
    for (let i = 0; i < 5; i++) await read();
    const err = await read().catch((e: unknown) => e);
    const midnight = new Date();
    midnight.setUTCHours(24, 0, 0, 0);
    expect(err).toMatchObject({ code: 'QUOTA_EXHAUSTED', resetsAt: midnight.getTime() });
    expect((err as Error).message).toMatch(/spent its API budget \(5 of 5 calls\)/);
    expect(emu.server.stats.requests).toBe(5);
    expect(apiBudget(options)).toEqual({
      used: 5,
      limit: 5,
      left: 0,
      resetsAt: midnight.getTime(),
      window: 'day',
    });
  });
  it('a run that spends the budget ends succeeded with work left, resuming at the reset', async () => {
    const dir = tempDir();
    const emu = await emulator(1_000);
    const source = await openSource(
      hubspotConnector as Connector,
      conn(emu, { rateLimit: null, searchRateLimit: null, quota: { perDay: 6 } }),
      {},
      shapeOf(['id'], 'lastmodifieddate', dir),
    );
    const { target, count } = memoryTarget();
    const store = openStore(dir);
    const outcome = await runOnce(store, source, target, { batchSize: 100 });
    const midnight = new Date();
    midnight.setUTCHours(24, 0, 0, 0);
    // One count for the estimate, five list pages: the confirmed batches stand.
    expect(outcome.run.status).toBe('succeeded');
    expect(outcome.more).toBe(true);
    expect(outcome.resumeAt).toBe(midnight.getTime());
    expect(outcome.run.errorCode).toBe('QUOTA_EXHAUSTED');
    expect(count()).toBe(500);
    expect(outcome.checkpoint.backfillDone).toBe(500);
    expect(emu.server.stats.requests).toBe(6);
    await store.close();
  });
});

/** A target that keeps nothing but a count of what it was sent. */
function memoryTarget() {
  let n = 0;
  return {
    target: {
      write: async (records: unknown[]) => {
        n += records.length;
        return { written: records.length, rejected: [] };
      },
    },
    count: () => n,
  };
}
