import { afterEach, describe, expect, it } from 'vitest';
import { salesforceConnector } from '../../../src/connectors/salesforce/index.ts';
import type { Connector } from '../../../src/core/ports.ts';
import { type SalesforceEmulator, SF_CLIENT, startSalesforceEmulator } from '../../emulators/salesforce.ts';
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

const emulators: SalesforceEmulator[] = [];
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.server.close()));
});

async function emulator(contacts: number): Promise<SalesforceEmulator> {
  const emu = await startSalesforceEmulator({ contacts });
  emulators.push(emu);
  return emu;
}

const conn = (emu: SalesforceEmulator, extra: object = {}) => ({
  loginUrl: emu.url,
  clientId: SF_CLIENT.id,
  clientSecret: SF_CLIENT.secret,
  backoffMs: 5,
  maxBackoffMs: 50,
  ...extra,
});

describe('Salesforce contacts source', () => {
  it('backfills with queryMore, then reads hundreds of contacts sharing one SystemModstamp, by Id', async () => {
    const dir = tempDir();
    const emu = await emulator(2_345);
    emu.server.faults.failNext = 2; // a 5xx burst first, retried
    const source = await openSource(
      salesforceConnector as Connector,
      conn(emu),
      { chunkSize: 200 },
      shapeOf(['Id'], 'SystemModstamp', dir),
    );
    const { target, rows } = await sqliteTarget(dir, ['Id']);
    const store = openStore(dir);
    await runToEnd(store, source, target, { batchSize: 1_000, key: ['Id'] });
    expect(rows()).toHaveLength(2_345);
    expect(emu.server.stats.byPath.get('/services/data/v60.0/query/') ?? 0).toBe(0);
    expect([...emu.server.stats.byPath.keys()].some((p) => /\/query\/01gEMU/.test(p))).toBe(true);
    expect(emu.server.stats.failed).toBe(2);

    const at = Math.ceil((Date.now() + 1_000) / 1000) * 1000; // Salesforce keeps whole seconds
    for (const c of emu.contacts)
      if (Number(c.Id.slice(-4)) % 3 === 0 || c.Id.endsWith('1')) c.FirstName = `Changed ${c.Id}`;
    emu.touch((c) => String(c.FirstName).startsWith('Changed'), at);
    const changed = emu.contacts.filter((c) => c.modstamp === at).length;
    expect(changed).toBeGreaterThan(700);
    await runToEnd(store, source, target, { batchSize: 250, key: ['Id'] });
    const after = rows();
    expect(after).toHaveLength(2_345);
    expect(after.filter((r) => String(r.FirstName).startsWith('Changed'))).toHaveLength(changed);
    await store.close();
  });

  it('refreshes an expired session once and replays the request', async () => {
    const dir = tempDir();
    const emu = await emulator(300);
    const source = await openSource(
      salesforceConnector as Connector,
      conn(emu, { refreshToken: SF_CLIENT.refreshToken }),
      {},
      shapeOf(['Id'], 'SystemModstamp', dir),
    );
    const { target, rows } = await sqliteTarget(dir, ['Id']);
    const store = openStore(dir);
    await runToEnd(store, source, target, { key: ['Id'] });
    expect(emu.server.stats.tokens).toBe(1);
    emu.server.expireTokens();
    emu.touch((c) => c.Id.endsWith('7'), Date.now() + 1_000);
    emu.contacts[6]!.LastName = 'Renamed';
    await runToEnd(store, source, target, { key: ['Id'] });
    expect(emu.server.stats.tokens).toBe(2);
    expect(rows().find((r) => r.Id === emu.contacts[6]!.Id)?.LastName).toBe('Renamed');
    await store.close();
  });
});

describe('Salesforce contacts target', () => {
  const people = (n: number, bad: number[]) =>
    Array.from({ length: n }, (_, i) => ({
      External_Id__c: `p-${i + 1}`,
      LastName: `Person ${i + 1}`,
      Email: bad.includes(i + 1) ? `nope${i + 1}@` : `p${i + 1}@example.com`,
      updated_at: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString(),
    }));

  it('upserts by external id 200 at a time; invalid emails go to the dead letters with Salesforce’s error', async () => {
    const dir = tempDir();
    const emu = await emulator(0);
    const source = await sqliteSource(dir, people(450, [1, 222, 450]), ['External_Id__c'], 'updated_at');
    const target = await openTarget(
      salesforceConnector as Connector,
      conn(emu),
      { externalIdField: 'External_Id__c', omit: ['updated_at'] },
      shapeOf(['External_Id__c'], null, dir),
    );
    const store = openStore(dir);
    await runToEnd(store, source, target, { batchSize: 450, key: ['External_Id__c'] });
    expect(emu.contacts).toHaveLength(447);
    // 200 + 200 + 50 (the emulator refuses more than 200 per call); incremental goes on strictly after.
    expect(
      emu.server.stats.byPath.get('/services/data/v60.0/composite/sobjects/Contact/External_Id__c'),
    ).toBe(3);
    const dead = await store.listDeadLetters({ sync: 's' });
    expect(dead.map((d) => (d.record as { External_Id__c: string }).External_Id__c).sort()).toEqual([
      'p-1',
      'p-222',
      'p-450',
    ]);
    expect(dead[0]!.reason).toMatch(
      /^INVALID_EMAIL_ADDRESS: Email: invalid email address: nope\d+@ \(Email\)$/,
    );
    await store.close();
  });

  it('times out on a hung org; a later run replays the batch without duplicates', async () => {
    const dir = tempDir();
    const emu = await emulator(0);
    const source = await sqliteSource(dir, people(300, []), ['External_Id__c'], 'updated_at');
    const target = await openTarget(
      salesforceConnector as Connector,
      conn(emu, { timeoutMs: 150, retries: 0 }),
      { externalIdField: 'External_Id__c', omit: ['updated_at'] },
      shapeOf(['External_Id__c'], null, dir),
    );
    const store = openStore(dir);
    await runOnce(store, source, target, { batchSize: 100, maxRunDurationMs: 1, key: ['External_Id__c'] });
    expect(emu.contacts).toHaveLength(100);
    emu.server.faults.hang = true;
    await expect(
      runOnce(store, source, target, { batchSize: 100, key: ['External_Id__c'] }),
    ).rejects.toMatchObject({ code: 'HTTP_TIMEOUT' });
    emu.server.releaseHung();
    await runToEnd(store, source, target, { batchSize: 100, key: ['External_Id__c'] });
    expect(emu.contacts).toHaveLength(300);
    expect(new Set(emu.contacts.map((c) => c.External_Id__c)).size).toBe(300);
    await store.close();
  });
});
