import { randomUUID } from 'node:crypto';
import { compileFilter, type Filter, searchOrder } from './hubspot-search.ts';
import { type EmulatorRequest, type EmulatorResponse, EmulatorServer, validEmail } from './server.ts';

/**
 * A HubSpot CRM v3 contacts emulator (dev-only; never the real service), following the documented
 * shapes so `@hubspot/api-client` works against it as well as Sluice:
 *   GET  /crm/v3/objects/contacts?limit&after&properties   list in id order, `paging.next.after`
 *   POST /crm/v3/objects/contacts/search                   filterGroups/sorts/limit/after → { total, results, paging }
 *        past 10,000 results per query it answers 400, as the real search API does
 *   POST /crm/v3/objects/contacts/batch/upsert             ≤100 inputs by idProperty; invalid emails → 207 with errors
 * Private-app bearer token, `X-HubSpot-RateLimit-*` headers, 429 + Retry-After, 5xx and hang faults.
 */
export const HUBSPOT_TOKEN = 'pat-emulator-hubspot';
export const SEARCH_CAP = 10_000;

/** Compact in memory (a million fit); rendered to HubSpot's shape on the way out. */
export type Contact = {
  id: number;
  email: string;
  firstname: string;
  lastname: string;
  created: number;
  modified: number;
} & Record<string, string | number>;

const DEFAULT_PROPS = ['email', 'firstname', 'lastname'];
const ALWAYS = ['createdate', 'hs_object_id', 'lastmodifieddate'];

export type HubSpotEmulatorOptions = { contacts?: number; startMs?: number; stepMs?: number };

export class HubSpotEmulator {
  readonly server: EmulatorServer;
  /** In id order. */
  readonly contacts: Contact[] = [];
  private readonly byId = new Map<number, Contact>();
  private readonly byProp = new Map<string, Map<string, Contact>>([['email', new Map()]]);
  private nextId = 1;
  /**
   * The search endpoints' own per-second limit (documented separately from the burst limit); past
   * it, 429 with the message HubSpot sends for it. Off by default.
   */
  searchRateLimit: { requests: number; windowMs: number } | null = null;
  private searchWindow = { start: 0, count: 0 };

  constructor(options: HubSpotEmulatorOptions = {}) {
    const start = options.startMs ?? Date.UTC(2024, 0, 1);
    const step = options.stepMs ?? 1000;
    for (let i = 0; i < (options.contacts ?? 0); i++) {
      const id = this.nextId++;
      const at = start + i * step;
      this.add({
        id,
        email: `contact${id}@example.com`,
        firstname: `First${id}`,
        lastname: `Last${id}`,
        created: at,
        modified: at,
      });
    }
    this.server = new EmulatorServer((req) => this.route(req), {
      tokens: [HUBSPOT_TOKEN],
      publicPaths: ['/_emulator/count'],
      errors: {
        rateLimited: () => ({
          status: 'error',
          message: 'You have reached your ten_secondly_rolling limit.',
          errorType: 'RATE_LIMIT',
          correlationId: randomUUID(),
          policyName: 'TEN_SECONDLY_ROLLING',
        }),
        server: () => ({
          status: 'error',
          message: 'internal error (emulated)',
          correlationId: randomUUID(),
          category: 'INTERNAL_ERROR',
        }),
        unauthorized: () => ({
          status: 'error',
          message: 'Authentication credentials not found.',
          correlationId: randomUUID(),
          category: 'INVALID_AUTHENTICATION',
        }),
      },
      headers: (remaining): Record<string, string> => {
        const limit = this.server?.faults.rateLimit;
        if (!limit || remaining === null) return {};
        return {
          'x-hubspot-ratelimit-max': String(limit.requests),
          'x-hubspot-ratelimit-remaining': String(Math.max(0, remaining)),
          'x-hubspot-ratelimit-interval-milliseconds': String(limit.windowMs),
        };
      },
    });
  }

  get url(): string {
    return this.server.url;
  }

  /** Adds a contact with the next id, its fields made from that id (for seeding); returns it. */
  insert(make: (id: number) => Omit<Contact, 'id'>): Contact {
    const id = this.nextId++;
    const c = { ...make(id), id } as Contact;
    this.add(c);
    return c;
  }

  private add(c: Contact): void {
    this.contacts.push(c);
    this.byId.set(c.id, c);
    this.index(c);
  }

  /** Only properties used to find contacts (email, and an idProperty once asked for) are indexed. */
  private index(c: Contact): void {
    for (const [k, m] of this.byProp) {
      const v = c[k];
      if (v !== undefined) m.set(String(v), c);
    }
  }

  get(id: number): Contact | undefined {
    return this.byId.get(id);
  }

  findBy(property: string, value: string): Contact | undefined {
    let m = this.byProp.get(property);
    if (!m) {
      m = new Map();
      this.byProp.set(property, m);
      for (const c of this.contacts) if (c[property] !== undefined) m.set(String(c[property]), c);
    }
    return m.get(value);
  }

  /** Marks contacts modified at `at` (ms), as an edit in the CRM would. */
  touch(ids: Iterable<number>, at: number): void {
    for (const id of ids) {
      const c = this.byId.get(id);
      if (c) c.modified = at;
    }
  }

  /** Adds contacts modified at `at(i)`; returns their ids. */
  create(n: number, at: (i: number) => number): number[] {
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.nextId++;
      this.add({
        id,
        email: `new${id}@example.com`,
        firstname: `New${id}`,
        lastname: `Last${id}`,
        created: at(i),
        modified: at(i),
      });
      ids.push(id);
    }
    return ids;
  }

  render(c: Contact, props: readonly string[]): Record<string, unknown> {
    const properties: Record<string, string | null> = {};
    for (const p of [...props, ...ALWAYS]) properties[p] = this.value(c, p);
    const createdAt = new Date(c.created).toISOString();
    const updatedAt = new Date(c.modified).toISOString();
    return { id: String(c.id), properties, createdAt, updatedAt, archived: false };
  }

  /** A property as HubSpot sends it: a string, or null when unset. */
  value(c: Contact, p: string): string | null {
    if (p === 'hs_object_id') return String(c.id);
    if (p === 'createdate') return new Date(c.created).toISOString();
    if (p === 'lastmodifieddate') return new Date(c.modified).toISOString();
    const v = c[p];
    return v === undefined ? null : String(v);
  }

  raw(c: Contact, p: string): string | number | null {
    if (p === 'hs_object_id') return c.id;
    if (p === 'createdate') return c.created;
    if (p === 'lastmodifieddate') return c.modified;
    const v = c[p];
    return v === undefined ? null : v;
  }

  private route(req: EmulatorRequest): EmulatorResponse {
    const path = req.url.pathname;
    if (path === '/_emulator/count') return { status: 200, body: { count: this.contacts.length } };
    if (path === '/crm/v3/objects/contacts' && req.method === 'GET') return this.list(req.url.searchParams);
    if (path === '/crm/v3/objects/contacts/search' && req.method === 'POST')
      return this.searchLimited() ?? this.search(req.body as SearchBody);
    if (path === '/crm/v3/objects/contacts/batch/upsert' && req.method === 'POST')
      return this.upsert(req.body as UpsertBody);
    if (path === '/crm/v3/objects/contacts/batch/update' && req.method === 'POST')
      return this.update(req.body as UpsertBody);
    return error(404, 'OBJECT_NOT_FOUND', `Unable to route ${req.method} ${path}`);
  }

  private list(q: URLSearchParams): EmulatorResponse {
    const limit = Math.min(Number(q.get('limit') ?? 10), 100);
    const props = q.get('properties')?.split(',').filter(Boolean) ?? DEFAULT_PROPS;
    const after = Number(q.get('after') ?? 0);
    // Ids are ascending: binary search for the first id >= after.
    let lo = 0;
    let hi = this.contacts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.contacts[mid]!.id < after) lo = mid + 1;
      else hi = mid;
    }
    const page = this.contacts.slice(lo, lo + limit);
    const next = this.contacts[lo + limit];
    const body: Record<string, unknown> = { results: page.map((c) => this.render(c, props)) };
    if (next) {
      const link = `${this.url}/crm/v3/objects/contacts?limit=${limit}&after=${next.id}`;
      body.paging = { next: { after: String(next.id), link } };
    }
    return { status: 200, body };
  }

  private searchLimited(): EmulatorResponse | null {
    const limit = this.searchRateLimit;
    if (!limit) return null;
    const now = Date.now();
    if (now - this.searchWindow.start >= limit.windowMs) this.searchWindow = { start: now, count: 0 };
    this.searchWindow.count += 1;
    if (this.searchWindow.count <= limit.requests) return null;
    this.server.stats.rateLimited += 1;
    return {
      status: 429,
      body: {
        status: 'error',
        message: 'You have reached your secondly limit.',
        errorType: 'RATE_LIMIT',
        correlationId: randomUUID(),
        policyName: 'SECONDLY',
      },
      headers: { 'retry-after': '1' },
    };
  }

  private search(body: SearchBody | null): EmulatorResponse {
    const limit = Math.min(body?.limit ?? 10, 200);
    const after = Number(body?.after ?? 0);
    const groups = body?.filterGroups ?? [];
    if (groups.length > 5 || groups.some((g) => g.filters.length > 6)) {
      return error(
        400,
        'VALIDATION_ERROR',
        'Too many filter groups or filters: at most 5 groups of 6 filters',
      );
    }
    if ((body?.sorts ?? []).length > 1) return error(400, 'VALIDATION_ERROR', 'Only one sort is supported');
    const sort = sortOf(body?.sorts?.[0]);
    if (after + limit > SEARCH_CAP) {
      return error(
        400,
        'VALIDATION_ERROR',
        `Search results are limited to ${SEARCH_CAP} per query; narrow the filters`,
      );
    }
    // Raw numbers for dates and ids: sorting 25,000 hits by parsed ISO text would be needlessly slow.
    const value = (c: Contact, p: string) => this.raw(c, p);
    const compiled = groups.map((g) =>
      g.filters.map((f) => ({ name: f.propertyName, test: compileFilter(f) })),
    );
    const hits = this.contacts.filter(
      (c) => compiled.length === 0 || compiled.some((g) => g.every((f) => f.test(value(c, f.name)))),
    );
    const page = firstInOrder(hits, after + limit, searchOrder(sort, value)).slice(after);
    const props = body?.properties?.length ? body.properties : DEFAULT_PROPS;
    const out: Record<string, unknown> = {
      total: hits.length,
      results: page.map((c) => this.render(c, props)),
    };
    if (after + limit < hits.length) out.paging = { next: { after: String(after + limit) } };
    return { status: 200, body: out };
  }

  private upsert(body: UpsertBody | null): EmulatorResponse {
    const inputs = body?.inputs;
    if (!Array.isArray(inputs) || inputs.length === 0)
      return error(400, 'VALIDATION_ERROR', 'inputs must be a non-empty array');
    if (inputs.length > 100)
      return error(400, 'VALIDATION_ERROR', `Batch size ${inputs.length} exceeds the limit of 100`);
    const startedAt = new Date().toISOString();
    const results: unknown[] = [];
    const errors: unknown[] = [];
    for (const input of inputs) {
      const idProperty = input.idProperty ?? 'hs_object_id';
      const email = input.properties?.email ?? (idProperty === 'email' ? input.id : undefined);
      if (email !== undefined && !validEmail(email)) {
        const detail = [
          {
            isValid: false,
            message: `Email address ${email} is invalid`,
            error: 'INVALID_EMAIL',
            name: 'email',
          },
        ];
        // A StandardError: `errors` (details) and `links` are part of its documented shape.
        errors.push({
          status: 'error',
          category: 'VALIDATION_ERROR',
          message: `Property values were not valid: ${JSON.stringify(detail)}`,
          context: { ids: [input.id] },
          errors: [
            { message: detail[0]!.message, code: 'INVALID_EMAIL', context: { propertyName: ['email'] } },
          ],
          links: {},
        });
        continue;
      }
      results.push(this.apply(idProperty, input));
    }
    const completedAt = new Date().toISOString();
    const out: Record<string, unknown> = { status: 'COMPLETE', results, startedAt, completedAt };
    if (errors.length === 0) return { status: 200, body: out };
    return { status: 207, body: { ...out, numErrors: errors.length, errors } };
  }

  /** Batch update by record id (≤100): unknown ids and invalid emails come back as errors (207). */
  private update(body: UpsertBody | null): EmulatorResponse {
    const inputs = body?.inputs;
    if (!Array.isArray(inputs) || inputs.length === 0)
      return error(400, 'VALIDATION_ERROR', 'inputs must be a non-empty array');
    if (inputs.length > 100)
      return error(400, 'VALIDATION_ERROR', `Batch size ${inputs.length} exceeds the limit of 100`);
    const startedAt = new Date().toISOString();
    const results: unknown[] = [];
    const errors: unknown[] = [];
    for (const input of inputs) {
      const c = this.byId.get(Number(input.id));
      const email = input.properties?.email;
      if (!c || (email !== undefined && !validEmail(email))) {
        const [category, message] = !c
          ? ['OBJECT_NOT_FOUND', `Object ${input.id} not found`]
          : ['VALIDATION_ERROR', `Email address ${email} is invalid`];
        errors.push({
          status: 'error',
          category,
          message,
          context: { ids: [input.id] },
          errors: [],
          links: {},
        });
        continue;
      }
      Object.assign(c, input.properties ?? {}, { modified: Date.now() });
      this.index(c);
      results.push(this.render(c, Object.keys(input.properties ?? {})));
    }
    const out = { status: 'COMPLETE', results, startedAt, completedAt: new Date().toISOString() };
    if (errors.length === 0) return { status: 200, body: out };
    return { status: 207, body: { ...out, numErrors: errors.length, errors } };
  }

  private apply(idProperty: string, input: UpsertInput): Record<string, unknown> {
    const now = Date.now();
    const existing =
      idProperty === 'hs_object_id' ? this.byId.get(Number(input.id)) : this.findBy(idProperty, input.id);
    const props = {
      ...input.properties,
      ...(idProperty === 'hs_object_id' ? {} : { [idProperty]: input.id }),
    };
    if (existing) {
      Object.assign(existing, props, { modified: now });
      this.index(existing);
      return { ...this.render(existing, Object.keys(props)), new: false };
    }
    const id = this.nextId++;
    const c = {
      email: '',
      firstname: '',
      lastname: '',
      ...props,
      id,
      created: now,
      modified: now,
    } as Contact;
    this.add(c);
    return { ...this.render(c, Object.keys(props)), new: true };
  }
}

type Sort = { propertyName: string; direction: string };
type SearchBody = {
  filterGroups?: { filters: Filter[] }[];
  /** The documented object form, or a property name (the official client types sorts as strings; "-" descends). */
  sorts?: (Sort | string)[];
  properties?: string[];
  limit?: number;
  after?: string;
};
type UpsertInput = { id: string; idProperty?: string; properties?: Record<string, string> };
type UpsertBody = { inputs?: UpsertInput[] };

function sortOf(sort: Sort | string | undefined): Sort | undefined {
  if (typeof sort !== 'string') return sort;
  return sort.startsWith('-')
    ? { propertyName: sort.slice(1), direction: 'DESCENDING' }
    : { propertyName: sort, direction: 'ASCENDING' };
}

/** The first `k` items in `order`: a full sort for deep pages, one pass for the top few (limit 1 over a million). */
function firstInOrder<T>(items: T[], k: number, order: (a: T, b: T) => number): T[] {
  if (k * 50 >= items.length) return items.sort(order).slice(0, k);
  const top: T[] = [];
  for (const item of items) {
    if (top.length === k && order(item, top[k - 1]!) >= 0) continue;
    let i = top.length === k ? k - 1 : top.length;
    while (i > 0 && order(item, top[i - 1]!) < 0) i--;
    top.splice(i, 0, item);
    if (top.length > k) top.pop();
  }
  return top;
}

function error(status: number, category: string, message: string): EmulatorResponse {
  return { status, body: { status: 'error', message, correlationId: randomUUID(), category } };
}

export async function startHubSpotEmulator(options: HubSpotEmulatorOptions = {}): Promise<HubSpotEmulator> {
  const emu = new HubSpotEmulator(options);
  await emu.server.listen();
  return emu;
}
