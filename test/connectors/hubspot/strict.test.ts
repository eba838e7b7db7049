/**
 * The HubSpot emulator as strict as the documented API, each point once against the emulator itself
 * and once through the connector: what HubSpot refuses, the emulator refuses, and Sluice does what it
 * must about it (fail fast on a config mistake, de-duplicate as the service would, read what the
 * lagging search index has not taken in yet on a later run).
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { hubspotConnector } from '../../../src/connectors/hubspot/index.ts';
import type { Connector } from '../../../src/core/ports.ts';
import {
  HUBSPOT_TOKEN,
  type HubSpotEmulator,
  type HubSpotEmulatorOptions,
  startHubSpotEmulator,
} from '../../emulators/hubspot.ts';
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
} from '../http/harness.ts';

const emulators: HubSpotEmulator[] = [];
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.server.close()));
});

async function emulator(options: HubSpotEmulatorOptions = {}): Promise<HubSpotEmulator> {
  const emu = await startHubSpotEmulator(options);
  emulators.push(emu);
  return emu;
}

const conn = (emu: HubSpotEmulator) => ({
  baseUrl: emu.url,
  accessToken: HUBSPOT_TOKEN,
  backoffMs: 5,
  maxBackoffMs: 50,
  rateLimit: null,
  searchRateLimit: null,
});

async function call(emu: HubSpotEmulator, method: string, path: string, body?: unknown) {
  const res = await fetch(`${emu.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${HUBSPOT_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const upsert = (emu: HubSpotEmulator, inputs: unknown[]) =>
  call(emu, 'POST', '/crm/v3/objects/contacts/batch/upsert', { inputs });

async function hubspotTarget(emu: HubSpotEmulator, dir: string, omit: string[] = ['key', 'updated_at']) {
  return openTarget(
    hubspotConnector as Connector,
    conn(emu),
    { idProperty: 'email', omit },
    shapeOf(['key'], null, dir),
  );
}

const person = (key: number, email: string, extra: object = {}) => ({
  key,
  email,
  firstname: `Person${key}`,
  updated_at: new Date(Date.UTC(2024, 0, 1) + key * 1000).toISOString(),
  ...extra,
});

describe('HubSpot emulator, strict as documented', () => {
  it('refuses a whole batch naming a property the account lacks; the connector fails fast naming it', async () => {
    const emu = await emulator();
    const res = await upsert(emu, [
      { id: 'a@example.com', idProperty: 'email', properties: { firstname: 'A' } },
      { id: 'b@example.com', idProperty: 'email', properties: { favourite_colour: 'teal' } },
    ]);
    expect(res.status).toBe(400);
    expect(res.body.category).toBe('VALIDATION_ERROR');
    expect(res.body.message).toContain('PROPERTY_DOESNT_EXIST');
    expect(emu.contacts).toHaveLength(0);

    const dir = tempDir();
    const rows = Array.from({ length: 250 }, (_, i) =>
      person(i + 1, `p${i + 1}@example.com`, { favourite_colour: 'teal' }),
    );
    const source = await sqliteSource(dir, rows, ['key'], 'updated_at');
    const target = await hubspotTarget(emu, dir);
    const store = openStore(dir);
    const err = await runOnce(store, source, target, { batchSize: 250, key: ['key'] }).catch((e) => e);
    expect(err).toMatchObject({ code: 'HUBSPOT_PROPERTY_UNKNOWN' });
    expect((err as Error).message).toContain('"favourite_colour"');
    // A config mistake: no record is dead-lettered for it, nothing is written, one call per chunk.
    expect(await store.listDeadLetters({ sync: 's' })).toHaveLength(0);
    expect(emu.contacts).toHaveLength(0);
    expect(emu.server.stats.byPath.get('/crm/v3/objects/contacts/batch/upsert')).toBeLessThanOrEqual(4);
    await store.close();
  });

  it('matches emails case-insensitively and refuses a batch naming one contact twice; the connector merges them', async () => {
    const emu = await emulator({ contacts: 1 });
    const again = await upsert(emu, [
      { id: 'CONTACT1@Example.com', idProperty: 'email', properties: { firstname: 'Upper' } },
    ]);
    expect(again.status).toBe(200);
    expect(emu.contacts).toHaveLength(1);
    expect(emu.get(1)!.firstname).toBe('Upper');
    expect(emu.get(1)!.email).toBe('contact1@example.com');

    const twice = await upsert(emu, [
      { id: 'ann@example.com', idProperty: 'email', properties: { firstname: 'One' } },
      { id: 'Ann@Example.com', idProperty: 'email', properties: { firstname: 'Two' } },
    ]);
    expect(twice.status).toBe(400);
    expect(twice.body.message).toMatch(/^Duplicate IDs found in batch input/);
    expect(emu.contacts).toHaveLength(1);

    const dir = tempDir();
    const rows = [
      person(1, 'ann@example.com', { firstname: 'First' }),
      person(2, 'Ann@Example.COM', { firstname: 'Second' }),
      person(3, 'bob@example.com'),
    ];
    const source = await sqliteSource(dir, rows, ['key'], 'updated_at');
    const target = await hubspotTarget(emu, dir);
    const store = openStore(dir);
    const outcome = await runOnce(store, source, target, { key: ['key'] });
    expect(outcome.run.counters).toMatchObject({ read: 3, written: 3, rejected: 0 });
    expect(emu.findBy('email', 'ANN@example.com')?.firstname).toBe('Second');
    expect(emu.contacts).toHaveLength(3);
    await store.close();
  });

  it('gets a contact by id or by email (idProperty), and batch-reads by id; the source reads by key that way', async () => {
    const emu = await emulator({ contacts: 5 });
    const byId = await call(emu, 'GET', '/crm/v3/objects/contacts/3?properties=email,firstname');
    expect(byId.status).toBe(200);
    expect(byId.body).toMatchObject({ id: '3', properties: { email: 'contact3@example.com' } });
    const byEmail = await call(
      emu,
      'GET',
      '/crm/v3/objects/contacts/Contact4%40example.com?idProperty=email',
    );
    expect(byEmail.body).toMatchObject({ id: '4' });
    expect((await call(emu, 'GET', '/crm/v3/objects/contacts/99')).status).toBe(404);
    const read = await call(emu, 'POST', '/crm/v3/objects/contacts/batch/read', {
      properties: ['firstname'],
      inputs: [{ id: '2' }, { id: '99' }],
    });
    expect(read.status).toBe(207);
    expect((read.body.results as { id: string }[]).map((r) => r.id)).toEqual(['2']);

    emu.touch([2], Date.now(), { firstname: 'Now' });
    const dir = tempDir();
    const source = await openSource(
      hubspotConnector as Connector,
      conn(emu),
      { properties: ['email', 'firstname'] },
      shapeOf(['id'], 'lastmodifieddate', dir),
    );
    const found = await source.readByKeys!([['2'], ['99'], ['5']], { signal: AbortSignal.timeout(10_000) });
    expect(found.map((r) => [r.id, r.firstname])).toEqual([
      ['2', 'Now'],
      ['5', 'First5'],
    ]);
    expect(emu.server.stats.byPath.get('/crm/v3/objects/contacts/batch/read')).toBe(2);
  });

  it('has a search index that lags writes; the default searchLagMs covers it, 0 would miss changes', async () => {
    const lagMs = 2_500;
    const emu = await emulator({ contacts: 50, searchLagMs: lagMs });
    emu.touch([7], Date.now(), { firstname: 'Fresh' }, lagMs);
    const search = () =>
      call(emu, 'POST', '/crm/v3/objects/contacts/search', {
        filterGroups: [{ filters: [{ propertyName: 'firstname', operator: 'EQ', value: 'Fresh' }] }],
        limit: 10,
      });
    expect((await search()).body.total).toBe(0);
    const byId = await call(emu, 'GET', '/crm/v3/objects/contacts/7?properties=firstname');
    expect(byId.body).toMatchObject({ properties: { firstname: 'Fresh' } }); // reads by id are current
    await sleep(lagMs);
    expect((await search()).body.total).toBe(1);

    // Each write reaches the index after its own delay, so a later change can be searchable before an
    // earlier one. A source that waits out the lag (as the default, 30 s, waits out HubSpot's
    // "several seconds") reads both; one that does not moves past the earlier change and misses it.
    const sync = async (searchLagMs: number) => {
      const dir = tempDir();
      const source = await openSource(
        hubspotConnector as Connector,
        conn(emu),
        { properties: ['email', 'firstname'], searchLagMs },
        shapeOf(['id'], 'lastmodifieddate', dir),
      );
      const { target, rows } = await sqliteTarget(dir, ['id']);
      const store = openStore(dir);
      await runToEnd(store, source, target, { batchSize: 100 });
      return { source, target, rows, store };
    };
    const waits = await sync(lagMs);
    const hurries = await sync(0);
    await sleep(lagMs + 10); // both high-water marks are behind us
    const t = Date.now();
    emu.touch([11], t - 1, { firstname: 'Late' }, lagMs - 100);
    emu.touch([12], t, { firstname: 'Quick' }, 0);
    await runToEnd(hurries.store, hurries.source, hurries.target, { batchSize: 100 });
    await runToEnd(waits.store, waits.source, waits.target, { batchSize: 100 });
    await sleep(lagMs + 10);
    await runToEnd(hurries.store, hurries.source, hurries.target, { batchSize: 100 });
    await runToEnd(waits.store, waits.source, waits.target, { batchSize: 100 });
    expect(waits.rows().find((r) => r.id === '11')?.firstname).toBe('Late');
    expect(waits.rows().find((r) => r.id === '12')?.firstname).toBe('Quick');
    expect(hurries.rows().find((r) => r.id === '12')?.firstname).toBe('Quick');
    expect(hurries.rows().find((r) => r.id === '11')?.firstname).toBe('First11');
    expect(hubspotConnector.source!.options.parse({}).searchLagMs).toBe(30_000);
    await waits.store.close();
    await hurries.store.close();
  });

  it('keeps its contacts in a file when asked, so a restarted emulator still has what Sluice wrote', async () => {
    const dir = tempDir();
    const file = join(dir, 'hubspot.jsonl');
    const first = await emulator({ file, contacts: 3 });
    const rows = Array.from({ length: 120 }, (_, i) => person(i + 1, `p${i + 1}@example.com`));
    const source = await sqliteSource(dir, rows, ['key'], 'updated_at');
    const store = openStore(dir);
    await runToEnd(store, source, await hubspotTarget(first, dir), { key: ['key'] });
    expect(first.contacts).toHaveLength(123);
    await first.server.close();

    const second = await emulator({ file, contacts: 3 });
    expect(second.contacts).toHaveLength(123);
    expect(second.findBy('email', 'p7@example.com')?.firstname).toBe('Person7');
    // Replaying the sync into the restarted service updates rather than duplicates.
    await store.resetSync('s');
    await runToEnd(store, source, await hubspotTarget(second, dir), { key: ['key'] });
    expect(second.contacts).toHaveLength(123);
    const [id] = second.create(1, () => Date.now());
    expect(id).toBe(124);
    await store.close();
  });
});
