import { randomBytes } from 'node:crypto';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { bad, ContactFields, type FieldError, type FieldType } from './salesforce-fields.ts';
import { type EmulatorRequest, type EmulatorResponse, EmulatorServer } from './server.ts';
import { compare, evaluate, fieldsOf, parseSoql, type Query, SoqlError, type Value } from './soql.ts';

/**
 * A Salesforce REST API emulator for Contacts (dev-only; never the real service), following the
 * documented shapes so jsforce works against it as well as Sluice:
 *   POST  /services/oauth2/token                          client_credentials / refresh_token / password → access_token + instance_url
 *   GET   /services/data/vXX.X/query?q=SOQL              { totalSize, done, nextRecordsUrl?, records: [{ attributes, … }] }
 *   GET   /services/data/vXX.X/query/<locator>-<offset>  the next chunk (queryMore); 2,000 per chunk by default
 *   PATCH /services/data/vXX.X/composite/sobjects/Contact/<ExternalIdField>  ≤200 records, allOrNone
 *         → [{ id, success, errors: [{ statusCode, message, fields }], created }]
 *   GET   /services/data/vXX.X/composite/sobjects/Contact?ids=…&fields=…  records by Id (null where none;
 *         or POST with `{ ids, fields }`)
 * Errors are Salesforce's `[{ message, errorCode }]`; an expired session answers 401 INVALID_SESSION_ID.
 * As strict as the documentation: unknown fields refuse the whole call (`INVALID_FIELD`), values are
 * checked against the field's type (salesforce-fields.ts), external ids match case-insensitively
 * (unless the field is case-sensitive) and one named twice in a call fails both records
 * (`DUPLICATE_EXTERNAL_ID`), an optional duplicate rule refuses a second contact with an email
 * (`DUPLICATES_DETECTED`), and `lockFailures` makes saves fail with the transient `UNABLE_TO_LOCK_ROW`.
 * Contacts are kept in a JSON Lines file when `file` is given.
 */
export const SF_CLIENT = {
  id: 'sf-emulator-client',
  secret: 'sf-emulator-secret',
  refreshToken: 'sf-emulator-refresh',
};

export type SfContact = {
  Id: string;
  FirstName: string | null;
  LastName: string;
  Email: string | null;
  created: number;
  modstamp: number;
} & Record<string, string | number | null>;

export type SalesforceEmulatorOptions = {
  contacts?: number;
  startMs?: number;
  stepMs?: number;
  tokenTtlMs?: number;
  externalIdField?: string;
  /** Custom fields of the org's Contact (default: External_Id__c, HubSpot_Id__c, Company__c). */
  customFields?: Record<string, FieldType>;
  /** External ids match case-sensitively (a field defined so); by default they do not. */
  externalIdCaseSensitive?: boolean;
  /** An active duplicate rule refusing a new contact whose email another contact has. */
  duplicateRule?: 'email' | null;
  file?: string | null;
};

/** Ids sort as text in creation order: '003' + 'EMU' + 12 digits = 18 characters. */
const idFor = (n: number) => `003EMU${String(n).padStart(12, '0')}`;
/** Salesforce keeps datetimes to the second, so many records share one SystemModstamp. */
const wholeSecond = (ms: number) => Math.floor(ms / 1000) * 1000;
/** Salesforce writes datetimes as 2024-01-01T00:00:00.000+0000. */
const sfDate = (ms: number) => new Date(ms).toISOString().replace('Z', '+0000');

export class SalesforceEmulator {
  readonly server: EmulatorServer;
  readonly contacts: SfContact[] = [];
  readonly fields: ContactFields;
  /** The next this-many record saves fail with `UNABLE_TO_LOCK_ROW` (another transaction holds the row). */
  lockFailures = 0;
  private readonly byExt = new Map<string, Map<string, SfContact>>();
  private readonly cursors = new Map<string, { rows: SfContact[]; fields: string[] }>();
  private next = 1;
  private readonly tokenTtlMs: number;
  private readonly caseSensitive: boolean;
  private readonly duplicateRule: 'email' | null;
  private readonly file: string | null;

  constructor(options: SalesforceEmulatorOptions = {}) {
    this.tokenTtlMs = options.tokenTtlMs ?? 2 * 3_600_000;
    this.fields = new ContactFields(options.customFields);
    this.caseSensitive = options.externalIdCaseSensitive ?? false;
    this.duplicateRule = options.duplicateRule ?? null;
    this.file = options.file ?? null;
    const start = options.startMs ?? Date.UTC(2024, 0, 1);
    const ext = options.externalIdField ?? 'External_Id__c';
    if (this.file && existsSync(this.file)) this.load(this.file);
    const seed = this.contacts.length === 0 ? (options.contacts ?? 0) : 0;
    for (let i = 0; i < seed; i++) {
      const n = this.next++;
      const at = start + i * (options.stepMs ?? 1000);
      this.contacts.push({
        Id: idFor(n),
        FirstName: `First${n}`,
        LastName: `Last${n}`,
        Email: `c${n}@example.com`,
        [ext]: `ext-${n}`,
        created: at,
        modstamp: at,
      });
    }
    const err = (errorCode: string, message: string) => () => [{ message, errorCode }];
    this.server = new EmulatorServer((req) => this.route(req), {
      publicPaths: ['/services/oauth2/token', '/_emulator/count'],
      errors: {
        rateLimited: err('REQUEST_LIMIT_EXCEEDED', 'Too many requests (emulated rate limit)'),
        server: err('SERVER_UNAVAILABLE', 'Server temporarily unavailable (emulated)'),
        unauthorized: err('INVALID_SESSION_ID', 'Session expired or invalid'),
      },
      headers: () => ({ 'sforce-limit-info': `api-usage=${this.server?.stats.requests ?? 0}/15000` }),
    });
  }

  get url(): string {
    return this.server.url;
  }

  /** Marks contacts modified at `at` (ms). */
  touch(predicate: (c: SfContact) => boolean, at: number): void {
    for (const c of this.contacts) if (predicate(c)) c.modstamp = wholeSecond(at);
  }

  findBy(field: string, value: string): SfContact | undefined {
    return this.extIndex(field).get(this.extKey(value));
  }

  /** External ids as Salesforce compares them: case-insensitively, unless the field says otherwise. */
  private extKey(value: unknown): string {
    return this.caseSensitive ? String(value) : String(value).toLowerCase();
  }

  private extIndex(field: string): Map<string, SfContact> {
    let m = this.byExt.get(field);
    if (!m) {
      m = new Map();
      for (const c of this.contacts)
        if (c[field] !== undefined && c[field] !== null) m.set(this.extKey(c[field]), c);
      this.byExt.set(field, m);
    }
    return m;
  }

  private load(file: string): void {
    const latest = new Map<string, SfContact>();
    for (const line of readFileSync(file, 'utf8').split('\n'))
      if (line) {
        const c = JSON.parse(line) as SfContact;
        latest.set(c.Id, c);
      }
    this.contacts.push(...[...latest.values()].sort((a, b) => (a.Id < b.Id ? -1 : 1)));
    this.next = this.contacts.length + 1;
  }

  private persist(changed: SfContact[]): void {
    if (this.file) appendFileSync(this.file, changed.map((c) => `${JSON.stringify(c)}\n`).join(''));
  }

  private route(req: EmulatorRequest): EmulatorResponse {
    const path = req.url.pathname;
    if (path === '/_emulator/count') return { status: 200, body: { count: this.contacts.length } };
    if (path === '/services/oauth2/token' && req.method === 'POST')
      return this.token(req.body as Record<string, string> | null);
    if (path === '/services/data' && req.method === 'GET') {
      return { status: 200, body: [{ label: 'Emulated', url: '/services/data/v60.0', version: '60.0' }] };
    }
    const m = /^\/services\/data\/v(\d+\.\d)(\/.*)$/.exec(path);
    if (!m) return notFound(path);
    const [, version, rest] = m;
    if (rest === '/query' && req.method === 'GET')
      return this.query(version!, req.url.searchParams.get('q') ?? '', req.headers['sforce-query-options']);
    const more = /^\/query\/([\w]+)-(\d+)$/.exec(rest!);
    if (more && req.method === 'GET') return this.chunk(version!, more[1]!, Number(more[2]), 2000);
    const upsert = /^\/composite\/sobjects\/Contact\/(\w+)$/.exec(rest!);
    if (upsert && req.method === 'PATCH') return this.upsert(upsert[1]!, req.body as UpsertBody | null);
    const one = /^\/sobjects\/Contact\/(\w+)\/([^/]+)$/.exec(rest!);
    if (one && req.method === 'PATCH')
      return this.upsertOne(one[1]!, decodeURIComponent(one[2]!), req.body as UpsertRecord | null);
    const byId = /^\/sobjects\/Contact\/(\w+)$/.exec(rest!);
    if (byId && req.method === 'GET') return this.retrieve(version!, byId[1]!);
    if (rest === '/composite/sobjects/Contact' && req.method === 'GET') {
      const q = req.url.searchParams;
      const list = (name: string) => (q.get(name) ?? '').split(',').filter(Boolean);
      return this.retrieveMany(version!, list('ids'), list('fields'));
    }
    if (rest === '/composite/sobjects/Contact' && req.method === 'POST') {
      const b = (req.body ?? {}) as { ids?: string[]; fields?: string[] };
      return this.retrieveMany(version!, b.ids ?? [], b.fields ?? []);
    }
    return notFound(path);
  }

  private get(c: SfContact, field: string): Value {
    const f = field.toLowerCase();
    if (f === 'systemmodstamp' || f === 'lastmodifieddate') return c.modstamp;
    if (f === 'createddate') return c.created;
    const key = KNOWN[f] ?? Object.keys(c).find((k) => k.toLowerCase() === f);
    return key === undefined ? null : (c[key] ?? null);
  }

  private render(c: SfContact, fields: string[], version: string): Record<string, unknown> {
    const out: Record<string, unknown> = {
      attributes: { type: 'Contact', url: `/services/data/v${version}/sobjects/Contact/${c.Id}` },
    };
    for (const f of fields) {
      const v = this.get(c, f);
      out[f] =
        /^(systemmodstamp|lastmodifieddate|createddate)$/i.test(f) && typeof v === 'number' ? sfDate(v) : v;
    }
    return out;
  }

  private query(version: string, soql: string, options: string | string[] | undefined): EmulatorResponse {
    let q: Query;
    try {
      q = parseSoql(soql);
    } catch (err) {
      if (err instanceof SoqlError)
        return { status: 400, body: [{ message: err.message, errorCode: 'MALFORMED_QUERY' }] };
      throw err;
    }
    if (q.from.toLowerCase() !== 'contact')
      return {
        status: 400,
        body: [{ message: `sObject type '${q.from}' is not supported.`, errorCode: 'INVALID_TYPE' }],
      };
    const unknown = this.fields.unknown(fieldsOf(q));
    if (unknown.length) return invalidField(unknown[0]!);
    let rows = q.where
      ? this.contacts.filter((c) => evaluate(q.where!, (f) => this.get(c, f)))
      : this.contacts.slice();
    if (q.order.length)
      rows.sort((a, b) =>
        q.order.reduce((acc, o) => acc || o.dir * compare(this.get(a, o.field), this.get(b, o.field)), 0),
      );
    if (q.limit !== null) rows = rows.slice(0, q.limit);
    if (q.count) return { status: 200, body: { totalSize: rows.length, done: true, records: [] } };
    const batch = Math.min(
      2000,
      Math.max(200, Number(/batchSize=(\d+)/.exec(String(options ?? ''))?.[1] ?? 2000)),
    );
    const locator = `01gEMU${randomBytes(6).toString('hex')}`;
    this.cursors.set(locator, { rows, fields: q.fields });
    return this.chunk(version, locator, 0, batch);
  }

  private chunk(version: string, locator: string, offset: number, batch: number): EmulatorResponse {
    const cursor = this.cursors.get(locator);
    if (!cursor)
      return {
        status: 400,
        body: [{ message: 'invalid query locator', errorCode: 'INVALID_QUERY_LOCATOR' }],
      };
    const records = cursor.rows
      .slice(offset, offset + batch)
      .map((c) => this.render(c, cursor.fields, version));
    const done = offset + batch >= cursor.rows.length;
    if (done) this.cursors.delete(locator);
    const body: Record<string, unknown> = { totalSize: cursor.rows.length, done, records };
    if (!done) body.nextRecordsUrl = `/services/data/v${version}/query/${locator}-${offset + batch}`;
    return { status: 200, body };
  }

  private upsert(field: string, body: UpsertBody | null): EmulatorResponse {
    const records = body?.records;
    if (!Array.isArray(records))
      return { status: 400, body: [{ message: 'records is required', errorCode: 'JSON_PARSER_ERROR' }] };
    if (records.length > 200)
      return {
        status: 400,
        body: [{ message: 'Maximum number of records is 200', errorCode: 'EXCEEDED_ID_LIMIT' }],
      };
    const unknown = this.fields.unknown([field, ...records.flatMap((r) => Object.keys(r))]);
    if (unknown.length) return invalidField(unknown[0]!);
    const index = this.extIndex(field);
    const counts = new Map<string, number>();
    for (const r of records) counts.set(this.extKey(r[field]), (counts.get(this.extKey(r[field])) ?? 0) + 1);
    const check = records.map((r) =>
      (counts.get(this.extKey(r[field])) ?? 0) > 1
        ? failure(
            bad('DUPLICATE_EXTERNAL_ID', `Duplicate external id specified: ${String(r[field])}`, [field]),
          )
        : this.invalid(r, field, index),
    );
    const failed = check.some(Boolean);
    // allOrNone: one failure rolls every record back, the others report ALL_OR_NONE_OPERATION_ROLLED_BACK.
    if (failed && body?.allOrNone) {
      return {
        status: 200,
        body: check.map(
          (c) =>
            c ??
            failure(
              bad(
                'ALL_OR_NONE_OPERATION_ROLLED_BACK',
                'Record rolled back because not all records were valid and the request was using AllOrNone header',
                [],
              ),
            ),
        ),
      };
    }
    const now = wholeSecond(Date.now());
    const results = records.map((r, i) => check[i] ?? this.lockOr(() => this.save(r, field, index, now)));
    return { status: 200, body: results };
  }

  /** sObject Rows by External ID: PATCH one record; 201 when created, 200 when updated, 400 with errors. */
  private upsertOne(field: string, value: string, body: UpsertRecord | null): EmulatorResponse {
    const unknown = this.fields.unknown([field, ...Object.keys(body ?? {})]);
    if (unknown.length) return invalidField(unknown[0]!);
    const index = this.extIndex(field);
    const record = { ...(body ?? {}), attributes: { type: 'Contact' }, [field]: value } as UpsertRecord;
    const invalid = this.invalid(record, field, index);
    if (invalid) {
      const e = invalid.errors[0]!;
      return { status: 400, body: [{ message: e.message, errorCode: e.statusCode, fields: e.fields }] };
    }
    const saved = this.save(record, field, index, wholeSecond(Date.now()));
    return { status: saved.created ? 201 : 200, body: saved };
  }

  private retrieve(version: string, id: string): EmulatorResponse {
    const c = this.contacts.find((x) => x.Id === id);
    if (!c) return notFound(`/sobjects/Contact/${id}`);
    const fields = [
      ...Object.keys(c).filter((k) => k !== 'created' && k !== 'modstamp'),
      'CreatedDate',
      'LastModifiedDate',
      'SystemModstamp',
    ];
    return { status: 200, body: this.render(c, fields, version) };
  }

  /**
   * `GET …/composite/sobjects/Contact?ids=&fields=` (or `POST` with `{ ids, fields }`, for many ids):
   * the records in the order asked, null where none.
   */
  private retrieveMany(version: string, ids: string[], asked: string[]): EmulatorResponse {
    const fields = asked.length ? asked : ['Id'];
    const unknown = this.fields.unknown(fields);
    if (unknown.length) return invalidField(unknown[0]!);
    if (ids.length > 2000)
      return { status: 400, body: [{ message: 'too many ids', errorCode: 'EXCEEDED_ID_LIMIT' }] };
    const byId = new Map(this.contacts.map((c) => [c.Id, c]));
    return {
      status: 200,
      body: ids.map((id) => {
        const c = byId.get(id);
        return c ? this.render(c, fields, version) : null;
      }),
    };
  }

  /** A save, unless a lock fault is armed: then `UNABLE_TO_LOCK_ROW`, as another transaction would cause. */
  private lockOr<T>(save: () => T): T | Failure {
    if (this.lockFailures <= 0) return save();
    this.lockFailures -= 1;
    return failure(
      bad('UNABLE_TO_LOCK_ROW', 'unable to obtain exclusive access to this record or 1 records', []),
    );
  }

  /** Why Salesforce would refuse this record, or null. */
  private invalid(r: UpsertRecord, field: string, index: Map<string, SfContact>): Failure | null {
    if (r.attributes?.type !== 'Contact')
      return failure(bad('INVALID_TYPE', 'attributes.type must be Contact', []));
    const problem = this.fields.check(r, field);
    if (problem) return failure(problem);
    const existing = index.get(this.extKey(r[field]));
    // LastName is required on a Contact: a record that would be created needs one.
    if (!existing && (r.LastName === undefined || r.LastName === null || r.LastName === ''))
      return failure(bad('REQUIRED_FIELD_MISSING', 'Required fields are missing: [LastName]', ['LastName']));
    if (!existing && this.duplicateRule === 'email' && typeof r.Email === 'string' && r.Email) {
      const email = r.Email.toLowerCase();
      if (this.contacts.some((c) => typeof c.Email === 'string' && c.Email.toLowerCase() === email))
        return failure(
          bad(
            'DUPLICATES_DETECTED',
            'Use one of these records? (duplicate rule: a contact with this email exists)',
            [],
          ),
        );
    }
    return null;
  }

  private save(
    r: UpsertRecord,
    field: string,
    index: Map<string, SfContact>,
    now: number,
  ): { id: string; success: true; errors: []; created: boolean } {
    const { attributes: _a, Id: _id, ...given } = r;
    // Field names are case-insensitive: stored under their declared names.
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(given)) fields[this.fields.name(k) ?? k] = v;
    const key = this.extKey(r[field]);
    const existing = index.get(key);
    if (existing) {
      // The record keeps the external id it has when matched by another case of it.
      delete fields[this.fields.name(field) ?? field];
      Object.assign(existing, fields, { modstamp: now });
      this.persist([existing]);
      return { id: existing.Id, success: true, errors: [], created: false };
    }
    const c = {
      FirstName: null,
      LastName: '',
      Email: null,
      ...fields,
      Id: idFor(this.next++),
      created: now,
      modstamp: now,
    } as SfContact;
    this.contacts.push(c);
    index.set(key, c);
    this.persist([c]);
    return { id: c.Id, success: true, errors: [], created: true };
  }

  private token(form: Record<string, string> | null): EmulatorResponse {
    const fail = {
      status: 400,
      body: { error: 'invalid_grant', error_description: 'authentication failure' },
    };
    if (!form || form.client_id !== SF_CLIENT.id || form.client_secret !== SF_CLIENT.secret)
      return {
        status: 400,
        body: { error: 'invalid_client_id', error_description: 'client identifier invalid' },
      };
    if (form.grant_type === 'refresh_token' && form.refresh_token !== SF_CLIENT.refreshToken) return fail;
    if (!['client_credentials', 'refresh_token', 'password'].includes(form.grant_type ?? ''))
      return {
        status: 400,
        body: { error: 'unsupported_grant_type', error_description: 'grant type not supported' },
      };
    const token = this.server.issueToken(this.tokenTtlMs);
    const issuedAt = String(Date.now());
    return {
      status: 200,
      body: {
        access_token: token,
        instance_url: this.url,
        id: `${this.url}/id/00DEMU000000001/005EMU000000001`,
        token_type: 'Bearer',
        issued_at: issuedAt,
        signature: randomBytes(32).toString('base64'),
      },
    };
  }
}

/** SOQL field names are case-insensitive; the common ones skip the search. */
const KNOWN: Record<string, string> = {
  id: 'Id',
  firstname: 'FirstName',
  lastname: 'LastName',
  email: 'Email',
};

type UpsertRecord = { attributes?: { type?: string } } & Record<
  string,
  string | number | null | undefined
> & {
    Id?: string;
  };
type UpsertBody = { allOrNone?: boolean; records?: UpsertRecord[] };
type Failure = { success: false; errors: FieldError[] };

const failure = (error: FieldError): Failure => ({ success: false, errors: [error] });

/** The whole call refused for a field the object does not have. */
function invalidField(field: string): EmulatorResponse {
  return {
    status: 400,
    body: [{ message: `No such column '${field}' on sobject of type Contact`, errorCode: 'INVALID_FIELD' }],
  };
}

function notFound(path: string): EmulatorResponse {
  return {
    status: 404,
    body: [{ message: `The requested resource does not exist: ${path}`, errorCode: 'NOT_FOUND' }],
  };
}

export async function startSalesforceEmulator(
  options: SalesforceEmulatorOptions = {},
): Promise<SalesforceEmulator> {
  const emu = new SalesforceEmulator(options);
  await emu.server.listen();
  return emu;
}
