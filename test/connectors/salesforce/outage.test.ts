/**
 * A target that goes away for two seconds in the middle of a backfill, and sessions that expire under
 * parallel writes: the run must ride them out — retries with backoff, an open circuit that waits and
 * probes — end in success with nothing lost, and cause one token refresh per expiry.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { salesforceConnector } from '../../../src/connectors/salesforce/index.ts';
import type { Connector, Target } from '../../../src/core/ports.ts';
import { type SalesforceEmulator, SF_CLIENT, startSalesforceEmulator } from '../../emulators/salesforce.ts';
import { tempDir } from '../../support/tmp.ts';
import { openStore, openTarget, runOnce, shapeOf, sqliteSource } from '../http/harness.ts';

const emulators: SalesforceEmulator[] = [];
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.server.close().catch(() => undefined)));
});

async function emulator(): Promise<SalesforceEmulator> {
  const emu = await startSalesforceEmulator();
  emulators.push(emu);
  return emu;
}

const rows = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    External_Id__c: `p-${i + 1}`,
    LastName: `Person ${i + 1}`,
    updated_at: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString(),
  }));

/** The target, with `before(n)` called before its n-th write (1-based). */
function hooked(target: Target, before: (n: number) => void | Promise<void>): Target {
  let n = 0;
  return {
    write: async (records, req) => {
      await before(++n);
      return target.write(records, req);
    },
  };
}

describe('Salesforce target under outages', () => {
  it('rides out a 2 s outage mid-backfill (connections refused): the run succeeds, nothing lost or doubled', async () => {
    const dir = tempDir();
    const emu = await emulator();
    const source = await sqliteSource(dir, rows(10_000), ['External_Id__c'], 'updated_at');
    // Five parallel upserts of 200 per batch of 1,000; the connector's default retry and circuit settings.
    const target = await openTarget(
      salesforceConnector as Connector,
      { loginUrl: emu.url, clientId: SF_CLIENT.id, clientSecret: SF_CLIENT.secret, concurrency: 5 },
      { externalIdField: 'External_Id__c', omit: ['updated_at'] },
      shapeOf(['External_Id__c'], null, dir),
    );
    let outage: Promise<void> | null = null;
    const down = hooked(target, async (n) => {
      if (n !== 4) return;
      await emu.server.down();
      outage = new Promise((resolve) => setTimeout(resolve, 2_000)).then(() => emu.server.up());
    });
    const store = openStore(dir);
    const outcome = await runOnce(store, source, down, {
      batchSize: 1_000,
      key: ['External_Id__c'],
      maxRunDurationMs: 120_000,
    });
    await outage;
    expect(outcome.run.status).toBe('succeeded');
    expect(outcome.more).toBe(false);
    expect(outcome.run.counters).toMatchObject({ read: 10_000, written: 10_000, rejected: 0 });
    expect(emu.contacts).toHaveLength(10_000);
    expect(new Set(emu.contacts.map((c) => c.External_Id__c)).size).toBe(10_000);
    await store.close();
  }, 60_000);

  it('refreshes the session once per expiry, however many parallel calls met it', async () => {
    const dir = tempDir();
    const emu = await emulator();
    const source = await sqliteSource(dir, rows(6_000), ['External_Id__c'], 'updated_at');
    const target = await openTarget(
      salesforceConnector as Connector,
      {
        loginUrl: emu.url,
        clientId: SF_CLIENT.id,
        clientSecret: SF_CLIENT.secret,
        refreshToken: SF_CLIENT.refreshToken,
        concurrency: 5,
      },
      { externalIdField: 'External_Id__c', omit: ['updated_at'] },
      shapeOf(['External_Id__c'], null, dir),
    );
    // Batches 2 to 6 each start with every session expired: five parallel calls each meet a 401.
    const expiring = hooked(target, (n) => {
      if (n >= 2) emu.server.expireTokens();
    });
    const store = openStore(dir);
    const outcome = await runOnce(store, source, expiring, { batchSize: 1_000, key: ['External_Id__c'] });
    expect(outcome.run.counters.written).toBe(6_000);
    expect(emu.server.stats.tokens).toBe(1 + 5);
    await store.close();
  });
});
