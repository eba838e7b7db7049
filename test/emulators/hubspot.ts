import { randomUUID } from 'node:crypto';
import { type BatchBody, error, getOne, read, update, upsert } from './hubspot-batch.ts';
import { compileFilter, type Filter, searchOrder } from './hubspot-search.ts';
import { type Contact, ContactStore, type ContactStoreOptions } from './hubspot-store.ts';
import { type EmulatorRequest, type EmulatorResponse, EmulatorServer } from './server.ts';

/**
 * A HubSpot CRM v3 contacts emulator (dev-only; never the real service), following the documented
 * shapes and refusals so `@hubspot/api-client` works against it as well as Sluice:
 *   GET  /crm/v3/objects/contacts?limit&after&properties   list in id order, `paging.next.after`
 *   GET  /crm/v3/objects/contacts/{id}[?idProperty=email]  one contact (hubspot-batch.ts)
 *   POST /crm/v3/objects/contacts/search                   filterGroups/sorts/limit/after → { total, results, paging }
 *        past 10,000 results per query it answers 400; the index lags writes by `searchLagMs`
 *   POST /crm/v3/objects/contacts/batch/{upsert,update,read}  ≤100 inputs; refusals in hubspot-batch.ts
 * Private-app bearer token, `X-HubSpot-RateLimit-*` headers, a rolling 10-second limit answering 429
 * without Retry-After (as documented), the search API's own per-second limit, 5xx and hang faults;
 * contacts kept in a file when asked (hubspot-store.ts).
 */
export const HUBSPOT_TOKEN = 'pat-emulator-hubspot';
export const SEARCH_CAP = 10_000;

export type { Contact } from './hubspot-store.ts';

const DEFAULT_PROPS = ['email', 'firstname', 'lastname'];
const ALWAYS = ['createdate', 'hs_object_id', 'lastmodifieddate'];

export type HubSpotEmulatorOptions = {
  contacts?: number;
  startMs?: number;
  stepMs?: number;
} & ContactStoreOptions;

export class HubSpotEmulator {
  readonly server: EmulatorServer;
  readonly store: ContactStore;
  /**
   * The search endpoints' own per-second limit (documented separately from the burst limit); past
   * it, 429 with the message HubSpot sends for it. Off by default.
   */
  searchRateLimit: { requests: number; windowMs: number } | null = null;
  /** Searches answered 429 by the search API's own limit. */
  searchRateLimited = 0;
  private searchWindow: number[] = [];

  constructor(options: HubSpotEmulatorOptions = {}) {
    this.store = new ContactStore(options);
    const start = options.startMs ?? Date.UTC(2024, 0, 1);
    const step = options.stepMs ?? 1000;
    if (!this.store.restored) {
      for (let i = 0; i < (options.contacts ?? 0); i++) {
        const id = this.store.nextId;
        const at = start + i * step;
        this.store.seed({
          id,
          email: `contact${id}@example.com`,
          firstname: `First${id}`,
          lastname: `Last${id}`,
          created: at,
          modified: at,
        });
      }
      this.store.save();
    }
    this.server = new EmulatorServer((req) => this.route(req), {
      tokens: [HUBSPOT_TOKEN],
      // HubSpot documents no Retry-After on its 429s: a client must know the window itself.
      retryAfter: false,
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

  /** In id order. */
  get contacts(): readonly Contact[] {
    return this.store.contacts;
  }

  /** Adds a contact with the next id, its fields made from that id (for seeding); returns it. */
  insert(make: (id: number) => Omit<Contact, 'id'>): Contact {
    const c = { ...make(this.store.nextId), id: this.store.nextId } as Contact;
    this.store.seed(c);
    return c;
  }

  get(id: number): Contact | undefined {
    return this.store.get(id);
  }

  findBy(property: string, value: string): Contact | undefined {
    return this.store.findBy(property, value);
  }

  /**
   * Changes contacts as an edit in the CRM would, now: `lastmodifieddate` becomes `at` (ms). Search
   * sees the change `lagMs` later (default: a delay of its own, up to the emulator's `searchLagMs`).
   */
  touch(ids: Iterable<number>, at: number, fields: Record<string, string> = {}, lagMs?: number): void {
    for (const id of ids) {
      const c = this.store.get(id);
      if (c) this.store.modify(c, { ...fields, modified: at }, Date.now(), lagMs);
    }
  }

  /** Adds contacts modified at `at(i)`, written now; returns their ids. */
  create(n: number, at: (i: number) => number): number[] {
    const ids: number[] = [];
    for (let i = 0; i < n; i++) {
      const id = this.store.nextId;
      const c = this.store.create({
        email: `new${id}@example.com`,
        firstname: `New${id}`,
        lastname: `Last${id}`,
        created: at(i),
        modified: at(i),
      });
      ids.push(c.id);
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
      return this.searchLimited(req.arrived) ?? this.search(req.body as SearchBody);
    const render = (c: Contact, props: readonly string[]) => this.render(c, props);
    const body = req.body as BatchBody | null;
    if (path === '/crm/v3/objects/contacts/batch/upsert' && req.method === 'POST')
      return upsert(this.store, body, render);
    if (path === '/crm/v3/objects/contacts/batch/update' && req.method === 'POST')
      return update(this.store, body, render);
    if (path === '/crm/v3/objects/contacts/batch/read' && req.method === 'POST')
      return read(this.store, body, render);
    const one = /^\/crm\/v3\/objects\/contacts\/([^/]+)$/.exec(path);
    if (one && req.method === 'GET')
      return getOne(this.store, decodeURIComponent(one[1]!), req.url.searchParams, render);
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

  private searchLimited(now: number): EmulatorResponse | null {
    const limit = this.searchRateLimit;
    if (!limit) return null;
    this.searchWindow = this.searchWindow.filter((t) => t > now - limit.windowMs);
    if (this.searchWindow.length < limit.requests) {
      this.searchWindow.push(now);
      return null;
    }
    this.server.stats.rateLimited += 1;
    this.searchRateLimited += 1;
    return {
      status: 429,
      body: {
        status: 'error',
        message: 'You have reached your secondly limit.',
        errorType: 'RATE_LIMIT',
        correlationId: randomUUID(),
        policyName: 'SECONDLY',
      },
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
    // The index as it is now: contacts written within the lag as they were before (or absent).
    const now = Date.now();
    const indexed = this.store.searchable(now);
    const hits = indexed.filter(
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

export async function startHubSpotEmulator(options: HubSpotEmulatorOptions = {}): Promise<HubSpotEmulator> {
  const emu = new HubSpotEmulator(options);
  await emu.server.listen();
  return emu;
}
