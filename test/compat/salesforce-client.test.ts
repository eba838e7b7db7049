/**
 * jsforce, the widely used Salesforce client, against the Salesforce emulator, used as a user would
 * use it. The emulator is a dev-only stand-in that follows Salesforce's documented REST shapes; these
 * tests check it does so closely enough for jsforce, not that Salesforce behaves so.
 */
import { Connection } from 'jsforce';
import { afterEach, describe, expect, it } from 'vitest';
import { type SalesforceEmulator, SF_CLIENT, startSalesforceEmulator } from '../emulators/salesforce.ts';

const emulators: SalesforceEmulator[] = [];
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.server.close()));
});

async function emulator(contacts = 0): Promise<SalesforceEmulator> {
  const emu = await startSalesforceEmulator({ contacts, stepMs: 0 });
  emulators.push(emu);
  return emu;
}

const oauth2 = (emu: SalesforceEmulator) => ({
  loginUrl: emu.url,
  clientId: SF_CLIENT.id,
  clientSecret: SF_CLIENT.secret,
});

/** A session token issued by the emulator, as a user would have from a login elsewhere. */
async function session(emu: SalesforceEmulator): Promise<Connection> {
  return new Connection({
    instanceUrl: emu.url,
    accessToken: emu.server.issueToken(60_000),
    version: '60.0',
  });
}

type Row = { Id: string; Email: string | null; External_Id__c?: string };

describe('jsforce against the Salesforce emulator', () => {
  it('logs in with the OAuth2 password flow and with client credentials', async () => {
    const emu = await emulator(3);
    const conn = new Connection({ oauth2: oauth2(emu), version: '60.0' });
    const user = await conn.login('demo@example.com', 'password-and-token');
    expect(user.organizationId).toBe('00DEMU000000001');
    expect(conn.instanceUrl).toBe(emu.url);
    expect((await conn.query<Row>('SELECT Id FROM Contact')).totalSize).toBe(3);

    const cc = new Connection({ oauth2: oauth2(emu), version: '60.0' });
    await cc.authorize({ grant_type: 'client_credentials' });
    expect(cc.accessToken).toMatch(/^emu_/);
    expect((await cc.query<Row>('SELECT Id FROM Contact')).totalSize).toBe(3);
  });

  it('conn.query + queryMore follow nextRecordsUrl chunk by chunk', async () => {
    const emu = await emulator(4_500);
    const conn = await session(emu);
    const first = await conn.query<Row>('SELECT Id, Email FROM Contact ORDER BY Id');
    expect(first.totalSize).toBe(4_500);
    expect(first.done).toBe(false);
    expect(first.records).toHaveLength(2_000);
    expect(first.records[0]!.Email).toBe('c1@example.com');
    const ids = first.records.map((r) => r.Id);
    let locator = first.nextRecordsUrl;
    for (let i = 0; locator && i < 10; i++) {
      const more = await conn.queryMore<Row>(locator);
      ids.push(...more.records.map((r) => r.Id));
      locator = more.done ? undefined : more.nextRecordsUrl;
    }
    expect(ids).toHaveLength(4_500);
    expect(new Set(ids).size).toBe(4_500);
  });

  it('autoFetch gathers every chunk; a WHERE with a datetime literal filters', async () => {
    const emu = await emulator(5_000);
    const conn = await session(emu);
    const all = await conn.query<Row>('SELECT Id, Email FROM Contact', { autoFetch: true, maxFetch: 10_000 });
    expect(all.records).toHaveLength(5_000);
    emu.touch((c) => c.Id.endsWith('7'), Date.UTC(2030, 0, 1));
    const changed = await conn.query<Row>(
      'SELECT Id FROM Contact WHERE SystemModstamp >= 2029-12-31T00:00:00Z ORDER BY SystemModstamp, Id',
    );
    expect(changed.totalSize).toBe(500);
    const count = await conn.query('SELECT COUNT() FROM Contact');
    expect(count.totalSize).toBe(5_000);
  });

  it('sobject().upsert([...], extId, { allOrNone: false }): per-record errors, the rest written', async () => {
    const emu = await emulator(2);
    const conn = await session(emu);
    const results = await conn.sobject('Contact').upsert(
      [
        { External_Id__c: 'ext-1', LastName: 'Updated', Email: 'one@example.com' },
        { External_Id__c: 'ext-new', LastName: 'Created', Email: 'new@example.com' },
        { External_Id__c: 'ext-bad', LastName: 'Broken', Email: 'not an email' },
      ],
      'External_Id__c',
      { allOrNone: false },
    );
    expect(results).toHaveLength(3);
    expect(results[0]).toMatchObject({ success: true, created: false });
    expect(results[1]).toMatchObject({ success: true, created: true });
    expect(results[2]!.success).toBe(false);
    const bad = results[2] as { errors: { statusCode: string; fields: string[] }[] };
    expect(bad.errors[0]).toMatchObject({ statusCode: 'INVALID_EMAIL_ADDRESS', fields: ['Email'] });
    expect(emu.findBy('External_Id__c', 'ext-1')?.LastName).toBe('Updated');
    expect(emu.findBy('External_Id__c', 'ext-new')?.Email).toBe('new@example.com');
    expect(emu.findBy('External_Id__c', 'ext-bad')).toBeUndefined();

    // allOrNone: true rolls the whole call back; every record reports why.
    const rolled = await conn.sobject('Contact').upsert(
      [
        { External_Id__c: 'ext-2', LastName: 'Nope' },
        { External_Id__c: 'ext-bad', LastName: 'Bad', Email: 'still bad' },
      ],
      'External_Id__c',
      { allOrNone: true },
    );
    const codes = rolled.map((r) => (r as { errors: { statusCode: string }[] }).errors[0]?.statusCode);
    expect(codes).toEqual(['ALL_OR_NONE_OPERATION_ROLLED_BACK', 'INVALID_EMAIL_ADDRESS']);
    expect(emu.findBy('External_Id__c', 'ext-2')?.LastName).toBe('Last2');

    // A new Contact needs a LastName, as in Salesforce.
    const [missing] = await conn
      .sobject('Contact')
      .upsert([{ External_Id__c: 'ext-nameless', Email: 'x@example.com' }], 'External_Id__c');
    expect(missing).toMatchObject({ success: false, errors: [{ statusCode: 'REQUIRED_FIELD_MISSING' }] });
  });

  it('upserts one record by external id (sObject Rows by External ID) and retrieves it', async () => {
    const emu = await emulator(1);
    const conn = await session(emu);
    const created = await conn
      .sobject('Contact')
      .upsert({ External_Id__c: 'solo', LastName: 'Solo', Email: 'solo@example.com' }, 'External_Id__c');
    expect(created).toMatchObject({ success: true, created: true });
    const updated = await conn
      .sobject('Contact')
      .upsert({ External_Id__c: 'solo', LastName: 'Again' }, 'External_Id__c');
    expect(updated).toMatchObject({ success: true, created: false });
    const id = (created as { id: string }).id;
    const got = await conn.sobject('Contact').retrieve(id);
    expect(got).toMatchObject({ Id: id, LastName: 'Again', Email: 'solo@example.com' });
    const err = await conn
      .sobject('Contact')
      .upsert({ External_Id__c: 'solo2', LastName: 'X', Email: 'bad' }, 'External_Id__c')
      .catch((e: unknown) => e as { errorCode?: string });
    expect(err).toMatchObject({ errorCode: 'INVALID_EMAIL_ADDRESS' });
  });

  it('an expired session is refreshed through the token endpoint and the call replayed', async () => {
    const emu = await emulator(5);
    const conn = new Connection({ oauth2: oauth2(emu), version: '60.0' });
    await conn.login('demo@example.com', 'secret');
    emu.server.expireTokens();
    let refreshed = 0;
    conn.on('refresh', () => refreshed++);
    // jsforce refreshes a username/password session by logging in again.
    const res = await conn.query<Row>('SELECT Id FROM Contact');
    expect(res.totalSize).toBe(5);
    expect(refreshed).toBe(1);
  });

  it('retrieve() of several ids (composite sObjects GET) and a SOQL Id IN (…) query', async () => {
    const emu = await emulator(30);
    const conn = await session(emu);
    const ids = [emu.contacts[4]!.Id, emu.contacts[20]!.Id];
    const records = (await conn
      .sobject('Contact')
      .retrieve(ids, { fields: ['Id', 'Email'] })) as unknown as Row[];
    expect(records.map((r) => r.Email)).toEqual(['c5@example.com', 'c21@example.com']);
    const list = ids.map((id) => `'${id}'`).join(', ');
    const found = await conn.query<Row>(`SELECT Id, Email FROM Contact WHERE Id IN (${list}) ORDER BY Id`);
    expect(found.records.map((r) => r.Id)).toEqual(ids);
    const err = await conn.query('SELECT Id, Shoe_Size__c FROM Contact').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ errorCode: 'INVALID_FIELD' });
  });
});
