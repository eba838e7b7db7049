/**
 * The official HubSpot Node client (`@hubspot/api-client`) against the HubSpot emulator, used as a
 * user would use it. The emulator is a dev-only stand-in that follows HubSpot's documented shapes;
 * these tests check it does so closely enough for the official client, not that HubSpot behaves so.
 */
import { Client } from '@hubspot/api-client';
import { FilterOperatorEnum } from '@hubspot/api-client/lib/codegen/crm/contacts/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { HUBSPOT_TOKEN, type HubSpotEmulator, startHubSpotEmulator } from '../emulators/hubspot.ts';

const emulators: HubSpotEmulator[] = [];
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.server.close()));
});

async function emulator(contacts: number, stepMs = 1000): Promise<HubSpotEmulator> {
  const emu = await startHubSpotEmulator({ contacts, stepMs });
  emulators.push(emu);
  return emu;
}

const clientFor = (emu: HubSpotEmulator, retries = 0) =>
  new Client({ accessToken: HUBSPOT_TOKEN, basePath: emu.url, numberOfApiCallRetries: retries });

/** What the client throws on a non-2xx answer: the status as `code` and the parsed body. */
type ApiError = { code: number; body: { category?: string; message?: string; policyName?: string } };

async function thrown(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (err) {
    return err as ApiError;
  }
  throw new Error('expected the call to fail');
}

describe('@hubspot/api-client against the HubSpot emulator', () => {
  it('pages through every contact with basicApi.getPage and `after`', async () => {
    const emu = await emulator(1_050);
    const client = clientFor(emu);
    const ids: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 20; page++) {
      const res = await client.crm.contacts.basicApi.getPage(100, after, ['email', 'firstname']);
      for (const c of res.results) {
        ids.push(c.id);
        expect(c.properties.email).toBe(`contact${c.id}@example.com`);
        expect(c.updatedAt).toBeInstanceOf(Date);
      }
      after = res.paging?.next?.after;
      if (!after) break;
    }
    expect(ids).toHaveLength(1_050);
    expect(new Set(ids).size).toBe(1_050);
    expect(ids.map(Number)).toEqual([...ids.map(Number)].sort((a, b) => a - b));
  });

  it('searches by lastmodifieddate with a sort, and pages with `after`', async () => {
    const emu = await emulator(500);
    const client = clientFor(emu);
    const since = new Date(Date.UTC(2024, 0, 1) + 300_000).toISOString(); // contacts 301…500
    const seen: string[] = [];
    let after: string | undefined;
    let total = 0;
    for (let page = 0; page < 10; page++) {
      const res = await client.crm.contacts.searchApi.doSearch({
        filterGroups: [
          { filters: [{ propertyName: 'lastmodifieddate', operator: FilterOperatorEnum.Gte, value: since }] },
        ],
        // The client types sorts as strings; a leading "-" sorts descending.
        sorts: ['-lastmodifieddate'],
        properties: ['email', 'lastmodifieddate'],
        limit: 50,
        after,
      });
      total = res.total;
      seen.push(...res.results.map((c) => c.id));
      after = res.paging?.next?.after;
      if (!after) break;
    }
    expect(total).toBe(200);
    expect(seen).toHaveLength(200);
    expect(seen[0]).toBe('500');
    expect(seen.at(-1)).toBe('301');

    // The documented object form of a sort is accepted too (the client passes it through).
    const asc = await client.crm.contacts.searchApi.doSearch({
      filterGroups: [],
      sorts: [{ propertyName: 'lastmodifieddate', direction: 'ASCENDING' } as unknown as string],
      properties: ['email'],
      limit: 3,
    });
    expect(asc.results.map((c) => c.id)).toEqual(['1', '2', '3']);
  });

  it('refuses a search paging past 10,000 results with a 400 the client surfaces', async () => {
    const emu = await emulator(10_100, 0);
    const client = clientFor(emu);
    const err = await thrown(
      client.crm.contacts.searchApi.doSearch({ filterGroups: [], limit: 100, after: '9950' }),
    );
    expect(err.code).toBe(400);
    expect(err.body.category).toBe('VALIDATION_ERROR');
    // …while the last page under the cap is served.
    const ok = await client.crm.contacts.searchApi.doSearch({ filterGroups: [], limit: 100, after: '9900' });
    expect(ok.results).toHaveLength(100);
    expect(ok.total).toBe(10_100);
  });

  it('batchApi.upsert: a 207 with per-record errors, the valid inputs written', async () => {
    const emu = await emulator(10);
    const client = clientFor(emu);
    const res = await client.crm.contacts.batchApi.upsert({
      inputs: [
        { id: 'contact3@example.com', idProperty: 'email', properties: { firstname: 'Renamed' } },
        { id: 'fresh@example.com', idProperty: 'email', properties: { firstname: 'Fresh' } },
        { id: 'not an email', idProperty: 'email', properties: { firstname: 'Broken' } },
      ],
    });
    expect(res.status).toBe('COMPLETE');
    expect(res.results).toHaveLength(2);
    expect(res.results.map((r) => r._new).sort()).toEqual([false, true]);
    expect(res.startedAt).toBeInstanceOf(Date);
    expect(res.completedAt).toBeInstanceOf(Date);
    const errors = 'errors' in res ? (res.errors ?? []) : [];
    expect(errors).toHaveLength(1);
    expect(errors[0]!.category).toBe('VALIDATION_ERROR');
    expect(errors[0]!.context).toEqual({ ids: ['not an email'] });
    expect(errors[0]!.errors[0]!.code).toBe('INVALID_EMAIL');
    expect(emu.findBy('email', 'contact3@example.com')?.firstname).toBe('Renamed');
    expect(emu.findBy('email', 'fresh@example.com')?.firstname).toBe('Fresh');
  });

  it('answers the 10-second burst limit with a 429 the client recognises (policyName)', async () => {
    const emu = await emulator(10);
    emu.server.faults.rateLimit = { requests: 2, windowMs: 60_000, retryAfterS: 10 };
    const client = clientFor(emu);
    await client.crm.contacts.basicApi.getPage(1);
    await client.crm.contacts.basicApi.getPage(1);
    const err = await thrown(client.crm.contacts.basicApi.getPage(1));
    expect(err.code).toBe(429);
    // The client's retry waits 10 s per attempt for this policy: checked by name, not by waiting.
    expect(err.body.policyName).toBe('TEN_SECONDLY_ROLLING');
  });

  it('retries a search over its per-second limit and a 5xx, with numberOfApiCallRetries', async () => {
    const emu = await emulator(10);
    emu.searchRateLimit = { requests: 1, windowMs: 1_000 };
    const client = clientFor(emu, 3);
    const search = () => client.crm.contacts.searchApi.doSearch({ filterGroups: [], limit: 5 });
    const [a, b] = await Promise.all([search(), search()]);
    expect(a.results).toHaveLength(5);
    expect(b.results).toHaveLength(5);
    expect(emu.server.stats.rateLimited).toBeGreaterThanOrEqual(1);

    emu.server.faults.failNext = 2;
    const page = await client.crm.contacts.basicApi.getPage(4);
    expect(page.results).toHaveLength(4);
    expect(emu.server.stats.failed).toBe(2);
  });

  it('basicApi.getById by record id and by email with idProperty (any case), 404 for none', async () => {
    const emu = await emulator(20);
    const client = clientFor(emu);
    const byId = await client.crm.contacts.basicApi.getById('7', ['email', 'firstname']);
    expect(byId.id).toBe('7');
    expect(byId.properties.email).toBe('contact7@example.com');
    expect(byId.updatedAt).toBeInstanceOf(Date);
    const byEmail = await client.crm.contacts.basicApi.getById(
      'Contact12@Example.com',
      ['firstname'],
      undefined,
      undefined,
      false,
      'email',
    );
    expect(byEmail.id).toBe('12');
    expect(byEmail.properties.firstname).toBe('First12');
    const missing = await thrown(
      client.crm.contacts.basicApi.getById('nobody@example.com', [], undefined, undefined, false, 'email'),
    );
    expect(missing.code).toBe(404);
  });

  it('batchApi.read by id and by email: found records, a 207 naming the ids not found', async () => {
    const emu = await emulator(20);
    const client = clientFor(emu);
    const byId = await client.crm.contacts.batchApi.read({
      inputs: [{ id: '3' }, { id: '5' }],
      properties: ['email'],
      propertiesWithHistory: [],
    });
    expect(byId.status).toBe('COMPLETE');
    expect(byId.results.map((r) => r.id).sort()).toEqual(['3', '5']);
    const byEmail = await client.crm.contacts.batchApi.read({
      inputs: [{ id: 'contact9@example.com' }, { id: 'ghost@example.com' }],
      idProperty: 'email',
      properties: ['firstname'],
      propertiesWithHistory: [],
    });
    expect(byEmail.results.map((r) => r.properties.firstname)).toEqual(['First9']);
    const errors = 'errors' in byEmail ? (byEmail.errors ?? []) : [];
    expect(errors[0]).toMatchObject({
      category: 'OBJECT_NOT_FOUND',
      context: { ids: ['ghost@example.com'] },
    });
  });

  it('batchApi.upsert of a property the account lacks: a 400 for the whole batch, as HubSpot answers', async () => {
    const emu = await emulator(0);
    const client = clientFor(emu);
    const err = await thrown(
      client.crm.contacts.batchApi.upsert({
        inputs: [{ id: 'a@example.com', idProperty: 'email', properties: { shoe_size: '42' } }],
      }),
    );
    expect(err.code).toBe(400);
    expect(err.body.message).toContain('PROPERTY_DOESNT_EXIST');
  });

  it('refuses a wrong token with 401', async () => {
    const emu = await emulator(1);
    const client = new Client({ accessToken: 'pat-wrong', basePath: emu.url });
    const err = await thrown(client.crm.contacts.basicApi.getPage(1));
    expect(err.code).toBe(401);
    expect(err.body.category).toBe('INVALID_AUTHENTICATION');
  });
});
