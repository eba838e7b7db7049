import { type EmulatorRequest, type EmulatorResponse, EmulatorServer, validEmail } from './server.ts';

/**
 * A generic REST API emulator (dev-only) serving one collection through every paging style Sluice
 * supports, so each can be tested over real HTTP:
 *   GET /cursor/items?limit&cursor   → { data, next_cursor }
 *   GET /offset/items?limit&offset   → { items, total }
 *   GET /page/items?page&per_page    → { results, page }
 *   GET /link/items?page&per_page    → [ … ] with `Link: <…>; rel="next"`
 * Each accepts `updated_since` (inclusive); filtered lists are ordered by (updated_at, id), others by id.
 *   POST /items/batch { records }    → { results: [{ id } | { id, error: { message } }] }
 *   PUT  /items/:id                  → 200 { …record } | 422 { message }
 *   POST /oauth/token                → client_credentials / refresh_token grants, tokens expire
 */
export type Item = { id: number; email: string; name: string; updated_at: string };

export type RestEmulatorOptions = { records?: number; startMs?: number; tokenTtlMs?: number };

export const REST_TOKEN = 'rest-emulator-token';
export const REST_CLIENT = {
  id: 'emulator-client',
  secret: 'emulator-secret',
  refreshToken: 'emulator-refresh',
};

export class RestEmulator {
  readonly server: EmulatorServer;
  /** In id order; ids are 1..n for seeded items. */
  items: Item[] = [];
  private readonly byId = new Map<number, Item>();
  private filtered = new Map<string, Item[]>();
  private readonly tokenTtlMs: number;

  constructor(options: RestEmulatorOptions = {}) {
    this.tokenTtlMs = options.tokenTtlMs ?? 3_600_000;
    const start = options.startMs ?? Date.UTC(2024, 0, 1);
    for (let i = 1; i <= (options.records ?? 0); i++) {
      this.put({
        id: i,
        email: `user${i}@example.com`,
        name: `User ${i}`,
        updated_at: new Date(start + i * 1000).toISOString(),
      });
    }
    this.server = new EmulatorServer((req) => this.route(req), {
      tokens: [REST_TOKEN],
      publicPaths: ['/oauth/token'],
      errors: {
        rateLimited: () => ({ message: 'rate limit exceeded' }),
        server: () => ({ message: 'service unavailable (emulated)' }),
        unauthorized: () => ({ message: 'invalid or expired token' }),
      },
    });
  }

  get url(): string {
    return this.server.url;
  }

  /** Inserts or replaces an item, keeping id order. */
  put(item: Item): void {
    const had = this.byId.has(item.id);
    this.byId.set(item.id, item);
    if (had) this.items[this.items.findIndex((i) => i.id === item.id)] = item;
    else if (this.items.length === 0 || this.items.at(-1)!.id < item.id) this.items.push(item);
    else {
      this.items.push(item);
      this.items.sort((a, b) => a.id - b.id);
    }
    this.filtered.clear();
  }

  get(id: number): Item | undefined {
    return this.byId.get(id);
  }

  private list(since: string | null): Item[] {
    if (since === null) return this.items;
    let hit = this.filtered.get(since);
    if (!hit) {
      const t = Date.parse(since);
      hit = this.items
        .filter((i) => Date.parse(i.updated_at) >= t)
        .sort((a, b) => a.updated_at.localeCompare(b.updated_at) || a.id - b.id);
      this.filtered.set(since, hit);
    }
    return hit;
  }

  private route(req: EmulatorRequest): EmulatorResponse {
    const { pathname, searchParams: q } = req.url;
    if (pathname === '/oauth/token' && req.method === 'POST')
      return this.token(req.body as Record<string, string> | null);
    const style = /^\/(cursor|offset|page|link)\/items$/.exec(pathname)?.[1];
    if (style && req.method === 'GET') return this.page(style, q);
    if (pathname === '/items/batch' && req.method === 'POST') return this.batch(req.body);
    const one = /^\/items\/(\d+)$/.exec(pathname);
    if (one && req.method === 'PUT')
      return this.upsert({ ...(req.body as object), id: Number(one[1]) } as Item);
    return { status: 404, body: { message: `no route for ${req.method} ${pathname}` } };
  }

  private page(style: string, q: URLSearchParams): EmulatorResponse {
    const all = this.list(q.get('updated_since'));
    const size = Math.min(
      Number(q.get(style === 'page' || style === 'link' ? 'per_page' : 'limit') ?? 100),
      1000,
    );
    if (style === 'cursor') {
      const from = q.get('cursor') ? Number(Buffer.from(q.get('cursor')!, 'base64url').toString()) : 0;
      const data = all.slice(from, from + size);
      const more = from + size < all.length;
      return {
        status: 200,
        body: { data, next_cursor: more ? Buffer.from(String(from + size)).toString('base64url') : null },
      };
    }
    if (style === 'offset') {
      const from = Number(q.get('offset') ?? 0);
      return { status: 200, body: { items: all.slice(from, from + size), total: all.length } };
    }
    const page = Number(q.get('page') ?? 1);
    const data = all.slice((page - 1) * size, page * size);
    if (style === 'page') return { status: 200, body: { results: data, page } };
    const headers: Record<string, string> = {};
    if (page * size < all.length) {
      const next = new URLSearchParams(q);
      next.set('page', String(page + 1));
      headers.link = `<${this.url}/link/items?${next}>; rel="next"`;
    }
    return { status: 200, body: data, headers };
  }

  private problem(item: Partial<Item>): string | null {
    if (!validEmail(item.email)) return `email "${String(item.email)}" is not a valid address`;
    return null;
  }

  private batch(body: unknown): EmulatorResponse {
    const records = (body as { records?: Item[] } | null)?.records;
    if (!Array.isArray(records)) return { status: 400, body: { message: 'body must be { records: [...] }' } };
    const results = records.map((r) => {
      const why = this.problem(r);
      if (why) return { id: r.id, error: { message: why } };
      this.put({ ...r, updated_at: new Date().toISOString() });
      return { id: r.id };
    });
    return { status: 200, body: { results } };
  }

  private upsert(item: Item): EmulatorResponse {
    const why = this.problem(item);
    if (why) return { status: 422, body: { message: why } };
    this.put({ ...item, updated_at: new Date().toISOString() });
    return { status: 200, body: item };
  }

  private token(form: Record<string, string> | null): EmulatorResponse {
    const bad = {
      status: 400,
      body: { error: 'invalid_grant', error_description: 'unknown client or grant' },
    };
    if (!form || form.client_id !== REST_CLIENT.id || form.client_secret !== REST_CLIENT.secret) return bad;
    if (form.grant_type === 'refresh_token' && form.refresh_token !== REST_CLIENT.refreshToken) return bad;
    if (form.grant_type !== 'client_credentials' && form.grant_type !== 'refresh_token') return bad;
    const access = this.server.issueToken(this.tokenTtlMs);
    return {
      status: 200,
      body: {
        access_token: access,
        token_type: 'bearer',
        expires_in: Math.round(this.tokenTtlMs / 1000),
        refresh_token: REST_CLIENT.refreshToken,
      },
    };
  }
}

export async function startRestEmulator(options: RestEmulatorOptions = {}): Promise<RestEmulator> {
  const emu = new RestEmulator(options);
  await emu.server.listen();
  return emu;
}
