import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { hubspotConnector } from '../../../src/connectors/hubspot/index.ts';
import type { Connector } from '../../../src/core/ports.ts';
import { HUBSPOT_TOKEN, type HubSpotEmulator, startHubSpotEmulator } from '../../emulators/hubspot.ts';
import { tempDir } from '../../support/tmp.ts';
import {
  openSource,
  openStore,
  openTarget,
  runToEnd,
  shapeOf,
  sqliteSource,
  sqliteTarget,
} from '../http/harness.ts';

const emulators: HubSpotEmulator[] = [];
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.server.close()));
});

async function emulator(contacts: number, options: object = {}): Promise<HubSpotEmulator> {
  const emu = await startHubSpotEmulator({ contacts, ...options });
  emulators.push(emu);
  return emu;
}

// Rate limits off on the client side unless a test sets them: the emulator decides.
const conn = (emu: HubSpotEmulator, extra: object = {}) => ({
  baseUrl: emu.url,
  accessToken: HUBSPOT_TOKEN,
  backoffMs: 5,
  maxBackoffMs: 50,
  rateLimit: null,
  searchRateLimit: null,
  ...extra,
});

async function hubspotSource(emu: HubSpotEmulator, dir: string, extra: object = {}, options: object = {}) {
  return openSource(
    hubspotConnector as Connector,
    conn(emu, extra),
    { properties: ['email', 'firstname', 'lastname'], searchLagMs: 0, ...options },
    shapeOf(['id'], 'lastmodifieddate', dir),
  );
}

/**
 * A time after the sync's high-water mark (where incremental starts), and that has passed: changes
 * stamped there are read by the next incremental run.
 */
async function afterHighWaterMark(store: ReturnType<typeof openStore>, ms = 1): Promise<number> {
  const hwm = (await store.getCheckpoint('s'))!.highWaterMark as { ts: number };
  const at = hwm.ts + ms;
  if (Date.now() <= at) await sleep(at - Date.now() + 1);
  return at;
}

describe('HubSpot contacts source', () => {
  it('backfills in id order, then reads changes through the search API', async () => {
    const dir = tempDir();
    const emu = await emulator(1_234);
    const source = await hubspotSource(emu, dir);
    const { target, rows } = await sqliteTarget(dir, ['id']);
    const store = openStore(dir);
    await runToEnd(store, source, target, { batchSize: 500 });
    expect(rows()).toHaveLength(1_234);

    const later = await afterHighWaterMark(store, 10);
    for (const id of [5, 600, 1_200]) emu.get(id)!.firstname = `Edited${id}`;
    emu.touch([5, 600, 1_200], later);
    emu.create(7, (i) => later - i);
    await runToEnd(store, source, target, { batchSize: 500 });
    const all = rows();
    expect(all).toHaveLength(1_241);
    expect(all.find((r) => r.id === '600')?.firstname).toBe('Edited600');
    expect(emu.server.stats.byPath.get('/crm/v3/objects/contacts/search')).toBeGreaterThan(0);
    await store.close();
  });

  it('loses none of 25,000 contacts modified in one second, past the 10,000-result search cap', async () => {
    const dir = tempDir();
    const emu = await emulator(25_000);
    const source = await hubspotSource(emu, dir);
    const { target, rows } = await sqliteTarget(dir, ['id']);
    const store = openStore(dir);
    await runToEnd(store, source, target, { batchSize: 2_000 });
    expect(rows()).toHaveLength(25_000);

    // 12,000 share one exact millisecond, the other 13,000 spread over the same second.
    const second = await afterHighWaterMark(store, 1_000);
    for (const c of emu.contacts) {
      c.firstname = `Changed${c.id}`;
      // Uneven groups per millisecond, so pages cut through them.
      c.modified = c.id % 25 < 12 ? second - 500 : second - ((c.id * 7) % 997);
    }
    const before = (await store.getCheckpoint('s'))!.totals.read;
    await runToEnd(store, source, target, { batchSize: 2_000 });
    const read = (await store.getCheckpoint('s'))!.totals.read - before;
    expect(read).toBeGreaterThanOrEqual(25_000);
    const changed = rows().filter((r) => r.firstname === `Changed${r.id}`);
    expect(changed).toHaveLength(25_000);
    await store.close();
  });

  it('waits out 429s and the rate-limit headers, and loses nothing', async () => {
    const dir = tempDir();
    const emu = await emulator(600);
    emu.server.faults.rateLimit = { requests: 4, windowMs: 1_000, retryAfterS: 1 };
    const source = await hubspotSource(emu, dir);
    const { target, rows } = await sqliteTarget(dir, ['id']);
    const store = openStore(dir);
    const t0 = Date.now();
    await runToEnd(store, source, target, { batchSize: 300 });
    // 6 list pages + the search calls at 4 a second: two windows at least.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_000);
    expect(rows()).toHaveLength(600);
    await store.close();
  });

  it('the emulator refuses to page a search past 10,000 results, as HubSpot does', async () => {
    const emu = await emulator(10_050);
    const res = await fetch(`${emu.url}/crm/v3/objects/contacts/search`, {
      method: 'POST',
      headers: { authorization: `Bearer ${HUBSPOT_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ filterGroups: [], sorts: [], limit: 100, after: '9950' }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { category: string }).category).toBe('VALIDATION_ERROR');
  });
});

describe('HubSpot contacts target', () => {
  const people = (n: number, bad: number[]) =>
    Array.from({ length: n }, (_, i) => ({
      key: i + 1,
      email: bad.includes(i + 1) ? `broken-${i + 1}.example.com` : `person${i + 1}@example.com`,
      firstname: `Person${i + 1}`,
      updated_at: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString(),
    }));

  it('upserts by email in batches of 100; invalid emails go to the dead letters with HubSpot’s message', async () => {
    const dir = tempDir();
    const emu = await emulator(0);
    emu.server.faults.failNext = 2; // and a 5xx burst on the way, retried
    const source = await sqliteSource(dir, people(250, [2, 101, 250, 251]), ['key'], 'updated_at');
    const target = await openTarget(
      hubspotConnector as Connector,
      conn(emu),
      { idProperty: 'email', omit: ['key', 'updated_at'] },
      shapeOf(['key'], null, dir),
    );
    const store = openStore(dir);
    await runToEnd(store, source, target, { batchSize: 250, key: ['key'] });
    expect(emu.contacts).toHaveLength(247);
    expect(emu.findBy('email', 'person3@example.com')?.firstname).toBe('Person3');
    const dead = await store.listDeadLetters({ sync: 's' });
    expect(dead.map((d) => (d.record as { key: number }).key).sort((a, b) => a - b)).toEqual([2, 101, 250]);
    expect(dead[0]!.reason).toContain('Email address broken-');
    expect(dead[0]!.reason).toContain('is invalid');
    expect(emu.server.stats.failed).toBe(2);
    // Replaying the sync from scratch updates rather than duplicates.
    await store.resetSync('s');
    await runToEnd(store, source, target, { batchSize: 250, key: ['key'] });
    expect(emu.contacts).toHaveLength(247);
    await store.close();
  });

  it('upserts by a custom unique property, updating rather than duplicating', async () => {
    const dir = tempDir();
    const emu = await emulator(0, { uniqueProperties: ['external_id'] });
    const rows = Array.from({ length: 30 }, (_, i) => ({
      external_id: `x-${i}`,
      email: `x${i}@example.com`,
      firstname: `X${i}`,
      updated_at: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString(),
    }));
    const source = await sqliteSource(dir, rows, ['external_id'], 'updated_at');
    const target = await openTarget(
      hubspotConnector as Connector,
      conn(emu),
      { idProperty: 'external_id', omit: ['updated_at'] },
      shapeOf(['external_id'], null, dir),
    );
    const store = openStore(dir);
    await runToEnd(store, source, target, { batchSize: 25, key: ['external_id'] });
    expect(emu.contacts).toHaveLength(30);
    await store.resetSync('s');
    await runToEnd(store, source, target, { batchSize: 25, key: ['external_id'] });
    expect(emu.contacts).toHaveLength(30);
    expect(emu.findBy('external_id', 'x-7')?.firstname).toBe('X7');
    await store.close();
  });
});
