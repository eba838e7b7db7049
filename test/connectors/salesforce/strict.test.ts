/**
 * The Salesforce emulator as strict as the documented API, each point against the emulator and
 * through the connector: unknown fields refuse the call (Sluice fails fast naming them), field values
 * are checked (dead letters with Salesforce's reason), external ids match case-insensitively (Sluice
 * merges a batch as Salesforce would), a row lock is retried rather than dead-lettered, data survives a
 * restart when kept in a file, and the source reads by key (`Id IN (…)`) and honours `until`.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { salesforceConnector } from '../../../src/connectors/salesforce/index.ts';
import type { Connector } from '../../../src/core/ports.ts';
import {
  type SalesforceEmulator,
  type SalesforceEmulatorOptions,
  SF_CLIENT,
  startSalesforceEmulator,
} from '../../emulators/salesforce.ts';
import { tempDir } from '../../support/tmp.ts';
import {
  openSource,
  openStore,
  openTarget,
  runOnce,
  runToEnd,
  shapeOf,
  sqliteSource,
} from '../http/harness.ts';

const emulators: SalesforceEmulator[] = [];
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.server.close()));
});

async function emulator(options: SalesforceEmulatorOptions = {}): Promise<SalesforceEmulator> {
  const emu = await startSalesforceEmulator(options);
  emulators.push(emu);
  return emu;
}

const conn = (emu: SalesforceEmulator) => ({
  loginUrl: emu.url,
  clientId: SF_CLIENT.id,
  clientSecret: SF_CLIENT.secret,
  backoffMs: 5,
  maxBackoffMs: 50,
});

const target = (emu: SalesforceEmulator, dir: string) =>
  openTarget(
    salesforceConnector as Connector,
    conn(emu),
    { externalIdField: 'External_Id__c', omit: ['updated_at'] },
    shapeOf(['External_Id__c'], null, dir),
  );

const row = (n: number, extra: object = {}) => ({
  External_Id__c: `p-${n}`,
  LastName: `Person ${n}`,
  Email: `p${n}@example.com`,
  updated_at: new Date(Date.UTC(2024, 0, 1) + n * 1000).toISOString(),
  ...extra,
});

async function patch(emu: SalesforceEmulator, records: object[]) {
  const token = emu.server.issueToken(60_000);
  const res = await fetch(`${emu.url}/services/data/v60.0/composite/sobjects/Contact/External_Id__c`, {
    method: 'PATCH',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      allOrNone: false,
      records: records.map((r) => ({ attributes: { type: 'Contact' }, ...r })),
    }),
  });
  return {
    status: res.status,
    body: (await res.json()) as { errorCode?: string; errors?: { statusCode: string }[] }[],
  };
}

describe('Salesforce emulator, strict as documented', () => {
  it('refuses a whole call naming a field Contact lacks; the connector fails fast naming it', async () => {
    const emu = await emulator();
    const res = await patch(emu, [{ External_Id__c: 'a', LastName: 'A', Shoe_Size__c: 42 }]);
    expect(res.status).toBe(400);
    expect(res.body[0]).toMatchObject({ errorCode: 'INVALID_FIELD' });

    const dir = tempDir();
    const source = await sqliteSource(
      dir,
      Array.from({ length: 300 }, (_, i) => row(i + 1, { Shoe_Size__c: 42 })),
      ['External_Id__c'],
      'updated_at',
    );
    const store = openStore(dir);
    const err = await runOnce(store, source, await target(emu, dir), {
      batchSize: 300,
      key: ['External_Id__c'],
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SALESFORCE_FIELD_UNKNOWN' });
    expect((err as Error).message).toContain('"Shoe_Size__c"');
    expect(await store.listDeadLetters({ sync: 's' })).toHaveLength(0);
    expect(emu.contacts).toHaveLength(0);
    await store.close();
  });

  it('checks values by field type: too long, restricted picklist, duplicate rule → dead letters with the reason', async () => {
    const emu = await emulator({ duplicateRule: 'email', contacts: 1 });
    const dir = tempDir();
    const rows = [
      row(1, { LeadSource: 'Web' }),
      row(2, { LastName: 'x'.repeat(81), LeadSource: 'Web' }),
      row(3, { LeadSource: 'Carrier pigeon' }),
      row(4, { Email: 'C1@example.com', LeadSource: 'Web' }), // contact 1's address: the duplicate rule
      row(5, { LeadSource: 'Other' }),
    ];
    const source = await sqliteSource(dir, rows, ['External_Id__c'], 'updated_at');
    const store = openStore(dir);
    await runToEnd(store, source, await target(emu, dir), { key: ['External_Id__c'] });
    const dead = await store.listDeadLetters({ sync: 's' });
    const reasons = Object.fromEntries(
      dead.map((d) => [(d.record as { External_Id__c: string }).External_Id__c, d.reason]),
    );
    expect(Object.keys(reasons).sort()).toEqual(['p-2', 'p-3', 'p-4']);
    expect(reasons['p-2']).toMatch(/^STRING_TOO_LONG: LastName: data value too large/);
    expect(reasons['p-3']).toMatch(/^INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST: LeadSource/);
    expect(reasons['p-4']).toMatch(/^DUPLICATES_DETECTED/);
    expect(emu.findBy('External_Id__c', 'p-5')?.LeadSource).toBe('Other');
    await store.close();
  });

  it('matches external ids case-insensitively; one named twice fails both; the connector merges them', async () => {
    const emu = await emulator({ contacts: 2 });
    const again = await patch(emu, [{ External_Id__c: 'EXT-1', LastName: 'Upper' }]);
    expect(again.body[0]).toMatchObject({ success: true, created: false });
    expect(emu.findBy('External_Id__c', 'ext-1')?.LastName).toBe('Upper');
    const twice = await patch(emu, [
      { External_Id__c: 'x-9', LastName: 'One' },
      { External_Id__c: 'X-9', LastName: 'Two' },
    ]);
    expect(twice.body.map((r) => r.errors?.[0]?.statusCode)).toEqual([
      'DUPLICATE_EXTERNAL_ID',
      'DUPLICATE_EXTERNAL_ID',
    ]);

    const dir = tempDir();
    const source = await sqliteSource(
      dir,
      [
        // Read in key order (SQLite's BINARY: 'K-1' first); the later one is the version kept.
        row(1, { External_Id__c: 'K-1', LastName: 'First' }),
        row(2, { External_Id__c: 'k-1', LastName: 'Second' }),
      ],
      ['External_Id__c'],
      'updated_at',
    );
    const store = openStore(dir);
    const outcome = await runOnce(store, source, await target(emu, dir), { key: ['External_Id__c'] });
    expect(outcome.run.counters).toMatchObject({ read: 2, written: 2, rejected: 0 });
    expect(emu.findBy('External_Id__c', 'k-1')?.LastName).toBe('Second');
    await store.close();
  });

  it('retries records refused with UNABLE_TO_LOCK_ROW instead of dead-lettering them', async () => {
    const emu = await emulator();
    const dir = tempDir();
    const source = await sqliteSource(
      dir,
      Array.from({ length: 400 }, (_, i) => row(i + 1)),
      ['External_Id__c'],
      'updated_at',
    );
    const store = openStore(dir);
    emu.lockFailures = 30;
    await runOnce(store, source, await target(emu, dir), {
      batchSize: 200,
      key: ['External_Id__c'],
      maxRunDurationMs: 1,
    });
    expect(emu.lockFailures).toBe(0);
    expect(emu.contacts).toHaveLength(200);
    expect(await store.listDeadLetters({ sync: 's' })).toHaveLength(0);

    // A lock that outlasts the retries fails the batch as a transient error: retried later, not set aside.
    emu.lockFailures = 100_000;
    const err = await runOnce(store, source, await target(emu, dir), {
      batchSize: 200,
      key: ['External_Id__c'],
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SALESFORCE_ROW_LOCKED', transient: true });
    expect(await store.listDeadLetters({ sync: 's' })).toHaveLength(0);
    emu.lockFailures = 0;
    await runToEnd(store, source, await target(emu, dir), { batchSize: 200, key: ['External_Id__c'] });
    expect(emu.contacts).toHaveLength(400);
    await store.close();
  });

  it('keeps its contacts in a file when asked, so a restarted org still has them', async () => {
    const dir = tempDir();
    const file = join(dir, 'salesforce.jsonl');
    const first = await emulator({ file });
    const source = await sqliteSource(
      dir,
      Array.from({ length: 50 }, (_, i) => row(i + 1)),
      ['External_Id__c'],
      'updated_at',
    );
    const store = openStore(dir);
    await runToEnd(store, source, await target(first, dir), { key: ['External_Id__c'] });
    await first.server.close();
    const second = await emulator({ file });
    expect(second.contacts).toHaveLength(50);
    await store.resetSync('s');
    await runToEnd(store, source, await target(second, dir), { key: ['External_Id__c'] });
    expect(second.contacts).toHaveLength(50);
    await store.close();
  });

  it('reads by key with SOQL Id IN (…), and a lookback sweep stops at until', async () => {
    const emu = await emulator({ contacts: 500, stepMs: 1_000 });
    const dir = tempDir();
    const source = await openSource(
      salesforceConnector as Connector,
      conn(emu),
      { fields: ['LastName'] },
      shapeOf(['Id'], 'SystemModstamp', dir),
    );
    const ids = [emu.contacts[3]!.Id, 'no-such-id', emu.contacts[400]!.Id];
    emu.contacts[3]!.LastName = 'Current';
    const found = await source.readByKeys!(
      ids.map((id) => [id]),
      { signal: AbortSignal.timeout(10_000) },
    );
    expect(found.map((r) => [r.Id, r.LastName])).toEqual([
      [emu.contacts[3]!.Id, 'Current'],
      [emu.contacts[400]!.Id, 'Last401'],
    ]);

    const at = (n: number) => new Date(Date.UTC(2024, 0, 1) + n * 1000).toISOString();
    const page = await source.read({
      phase: 'incremental',
      cursor: { ts: at(100), id: null },
      until: { ts: at(149), id: emu.contacts[149]!.Id },
      highWaterMark: null,
      limit: 1_000,
      signal: AbortSignal.timeout(10_000),
    });
    expect(page.records).toHaveLength(50);
    expect(page.done).toBe(true);
    expect(source.timeOf!({ ts: at(100), id: null })).toBe(Date.UTC(2024, 0, 1) + 100_000);
  });
});
