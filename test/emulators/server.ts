import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The HTTP plumbing shared by the API emulators (dev-only test doubles, never the real services):
 * a node:http server on 127.0.0.1, port 0, with switchable faults — a rolling-window rate limit
 * answering 429 (with the Retry-After the window really needs, or none where the API sends none),
 * bursts of 5xx, a "hang" mode that never answers, a "down" mode that refuses connections — and
 * OAuth-style bearer tokens that expire. It keeps the arrival time of every API request, so a test
 * can ask for the busiest window a client ever caused (`busiest`). Off unless switched on, a
 * per-connection throughput cap (`connectionCap`) makes each TCP connection carry at most so many
 * records a second, as a service that limits each client connection does.
 */
export type EmulatorRequest = {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: unknown;
  /** When the request arrived (ms), before its body was read. */
  arrived: number;
};
export type EmulatorResponse = { status: number; body?: unknown; headers?: Record<string, string> };
export type Handler = (req: EmulatorRequest) => EmulatorResponse | Promise<EmulatorResponse>;

export type Faults = {
  /**
   * At most `requests` in any `windowMs` (rolling, as HubSpot's TEN_SECONDLY_ROLLING); past it, 429.
   * `retryAfterS`: the Retry-After sent; absent, the seconds until the window has room again.
   */
  rateLimit: { requests: number; windowMs: number; retryAfterS?: number | null } | null;
  /** The next this-many requests fail with 503. */
  failNext: number;
  /** Each request fails with 503 with this probability (0..1). */
  failRate: number;
  /** Requests are read and never answered, until switched off or the server closes. */
  hang: boolean;
  /**
   * At most `recordsPerSecond` records a second on each TCP connection (keyed on the socket; null,
   * the default: no cap). A request's records are its body's `inputs` (HubSpot batches) or `records`
   * (Salesforce collections), else 1; its answer waits until the connection's previous requests and
   * its own records fit in that rate (a per-connection bucket without burst). HTTP/1.1 carries one
   * request at a time per connection, so a client gets more only over more connections.
   */
  connectionCap: { recordsPerSecond: number } | null;
};

export type EmulatorStats = {
  requests: number;
  rateLimited: number;
  failed: number;
  hung: number;
  tokens: number;
  byPath: Map<string, number>;
  /** TCP connections that carried an API request. */
  connections: number;
  /** The most connections with an API request in hand at one moment. */
  busiestConnections: number;
};

export type EmulatorOptions = {
  /** Bodies the API sends with its 429 and 5xx answers, and auth failures. */
  errors: { rateLimited: () => unknown; server: () => unknown; unauthorized: () => unknown };
  /** Paths served without a token (token endpoint, health). */
  publicPaths?: readonly string[];
  /** Static tokens always accepted (a private-app token); issued tokens are added by `issueToken`. */
  tokens?: readonly string[];
  /** Extra headers on every answer, e.g. rate-limit counters. */
  headers?: (remaining: number | null) => Record<string, string>;
  /** Whether a 429 carries Retry-After (HubSpot documents none for its burst limit). @defaultValue true */
  retryAfter?: boolean;
};

export class EmulatorServer {
  url = '';
  readonly faults: Faults = { rateLimit: null, failNext: 0, failRate: 0, hang: false, connectionCap: null };
  readonly stats: EmulatorStats = {
    requests: 0,
    rateLimited: 0,
    failed: 0,
    hung: 0,
    tokens: 0,
    byPath: new Map(),
    connections: 0,
    busiestConnections: 0,
  };
  /** Token → expiry (ms since epoch). */
  private readonly tokens = new Map<string, number>();
  private readonly server = createServer((req, res) => void this.serve(req, res));
  private readonly handler: Handler;
  private readonly options: EmulatorOptions;
  /** Arrival times of rate-limited API requests in the current window (rolling), oldest first. */
  private window: number[] = [];
  /** Arrival time of every API request (ms), for `busiest`, and its path. */
  readonly arrivals: number[] = [];
  private readonly paths: string[] = [];
  private readonly hung = new Set<ServerResponse>();
  private port = 0;
  /** Each connection's requests in hand, and when its cap lets it carry the next record (ms). */
  private readonly sockets = new WeakMap<Socket, { busy: number; freeAt: number }>();
  private busySockets = 0;

  constructor(handler: Handler, options: EmulatorOptions) {
    this.handler = handler;
    this.options = options;
    for (const t of options.tokens ?? []) this.tokens.set(t, Number.POSITIVE_INFINITY);
    this.server.keepAliveTimeout = 30_000;
  }

  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    this.url = `http://127.0.0.1:${this.port}`;
    return this;
  }

  /**
   * An outage: the port stops listening (connections are refused) and open ones are dropped, until
   * `up()`. The emulator's data is kept, as a service's database outlives its web tier.
   */
  async down(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Back after `down()`, on the same port. */
  async up(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * The most API requests that arrived within any `windowMs` (those `count` says count, by path):
   * what a rate-limit test asserts against the documented limit.
   */
  busiest(windowMs: number, count: (path: string) => boolean = () => true): number {
    const times = this.arrivalsOf(count);
    let most = 0;
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i]! - times[j]! >= windowMs) j++;
      most = Math.max(most, i - j + 1);
    }
    return most;
  }

  private arrivalsOf(count: (path: string) => boolean): number[] {
    return this.arrivals.filter((_, i) => count(this.paths[i]!)).sort((a, b) => a - b);
  }

  /** Issues a bearer token valid for `ttlMs`. */
  issueToken(ttlMs: number): string {
    const token = `emu_${randomBytes(12).toString('hex')}`;
    this.tokens.set(token, Date.now() + ttlMs);
    this.stats.tokens += 1;
    return token;
  }

  /** Makes every issued token expire now (the static ones stay). */
  expireTokens(): void {
    for (const [t, exp] of this.tokens) if (exp !== Number.POSITIVE_INFINITY) this.tokens.set(t, 0);
  }

  /** Stops hanging: requests held so far are dropped (their sockets destroyed), new ones are answered. */
  releaseHung(): void {
    this.faults.hang = false;
    for (const res of this.hung) res.socket?.destroy();
    this.hung.clear();
  }

  async close(): Promise<void> {
    this.releaseHung();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // A request counts when it arrives (its head), as a rate limiter at the service's edge counts it.
    const arrived = Date.now();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', this.url);
    const isControl = url.pathname.startsWith('/_emulator/');
    if (!isControl) {
      this.stats.requests += 1;
      this.stats.byPath.set(url.pathname, (this.stats.byPath.get(url.pathname) ?? 0) + 1);
      this.arrivals.push(arrived);
      this.paths.push(url.pathname);
      this.connectionBusy(req.socket, res);
    }
    if (this.faults.hang && !isControl) {
      this.stats.hung += 1;
      this.hung.add(res);
      return;
    }
    let reply: EmulatorResponse;
    try {
      const raw = Buffer.concat(chunks).toString('utf8');
      // Control endpoints of the emulator itself (not part of any emulated API): no token, no faults.
      reply = isControl ? await this.control(req, url, raw) : await this.answer(req, url, raw, arrived);
    } catch (err) {
      // An emulator bug must show up as a 500 in the test, not as an unhandled rejection.
      reply = { status: 500, body: { message: `emulator error: ${(err as Error).message}` } };
    }
    const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
    res.writeHead(reply.status, { 'content-type': 'application/json;charset=UTF-8', ...reply.headers });
    res.end(text);
  }

  /** Counts the request's connection as busy until its answer is sent (or the connection drops). */
  private connectionBusy(socket: Socket, res: ServerResponse): void {
    let conn = this.sockets.get(socket);
    if (!conn) {
      conn = { busy: 0, freeAt: 0 };
      this.sockets.set(socket, conn);
      this.stats.connections += 1;
    }
    if (conn.busy++ === 0) this.busySockets += 1;
    this.stats.busiestConnections = Math.max(this.stats.busiestConnections, this.busySockets);
    const state = conn;
    res.once('close', () => {
      if (--state.busy === 0) this.busySockets -= 1;
    });
  }

  /** Waits until the request's connection may carry its records (see `Faults.connectionCap`). */
  private async throttle(socket: Socket, body: unknown): Promise<void> {
    const cap = this.faults.connectionCap;
    const conn = this.sockets.get(socket);
    if (!cap || !conn) return;
    const items = body && typeof body === 'object' ? (body as { inputs?: unknown; records?: unknown }) : {};
    const list = Array.isArray(items.inputs)
      ? items.inputs
      : Array.isArray(items.records)
        ? items.records
        : null;
    const records = list ? Math.max(1, list.length) : 1;
    const now = performance.now();
    conn.freeAt = Math.max(now, conn.freeAt) + (records * 1000) / cap.recordsPerSecond;
    await sleep(conn.freeAt - now);
  }

  /**
   * `GET /_emulator/stats[?window=ms]`: request counters (with `busiest`, the most requests in any
   * window of that length); `PUT /_emulator/rate-limit` with `{ requests, windowMs, retryAfterS }` or
   * `null`: switches the rate limit; `PUT /_emulator/connection-cap` with `{ recordsPerSecond }` or
   * `null`: switches the per-connection cap; anything else under `/_emulator/` goes to the emulator's
   * handler.
   */
  private async control(req: IncomingMessage, url: URL, raw: string): Promise<EmulatorResponse> {
    if (url.pathname === '/_emulator/stats' && req.method === 'GET') {
      const { byPath, ...counters } = this.stats;
      const windowMs = Number(url.searchParams.get('window') ?? 10_000);
      return {
        status: 200,
        body: { ...counters, byPath: Object.fromEntries(byPath), busiest: this.busiest(windowMs) },
      };
    }
    if (url.pathname === '/_emulator/rate-limit' && req.method === 'PUT') {
      const limit = parseBody(raw, 'application/json') as Partial<NonNullable<Faults['rateLimit']>> | null;
      this.faults.rateLimit =
        limit && typeof limit === 'object'
          ? {
              requests: Number(limit.requests),
              windowMs: Number(limit.windowMs),
              retryAfterS: limit.retryAfterS ?? null,
            }
          : null;
      this.window = [];
      return { status: 200, body: { rateLimit: this.faults.rateLimit } };
    }
    if (url.pathname === '/_emulator/connection-cap' && req.method === 'PUT') {
      const cap = parseBody(raw, 'application/json') as { recordsPerSecond?: unknown } | null;
      const perSecond = Number(cap?.recordsPerSecond);
      this.faults.connectionCap = perSecond > 0 ? { recordsPerSecond: perSecond } : null;
      return { status: 200, body: { connectionCap: this.faults.connectionCap } };
    }
    const body = parseBody(raw, req.headers['content-type']);
    return this.handler({
      method: req.method ?? 'GET',
      url,
      headers: req.headers,
      body,
      arrived: Date.now(),
    });
  }

  private async answer(
    req: IncomingMessage,
    url: URL,
    raw: string,
    arrived: number,
  ): Promise<EmulatorResponse> {
    const { errors } = this.options;
    const remaining = this.countWindow(arrived);
    const extra = this.options.headers?.(remaining) ?? {};
    if (remaining !== null && remaining < 0) {
      this.stats.rateLimited += 1;
      const headers = { ...extra };
      if (this.options.retryAfter !== false) headers['retry-after'] = String(this.retryAfterS());
      return { status: 429, body: errors.rateLimited(), headers };
    }
    if (this.faults.failNext > 0 || (this.faults.failRate > 0 && Math.random() < this.faults.failRate)) {
      this.faults.failNext = Math.max(0, this.faults.failNext - 1);
      this.stats.failed += 1;
      return { status: 503, body: errors.server(), headers: extra };
    }
    if (
      !(this.options.publicPaths ?? []).includes(url.pathname) &&
      !this.authorized(req.headers.authorization)
    ) {
      return { status: 401, body: errors.unauthorized(), headers: extra };
    }
    const body = parseBody(raw, req.headers['content-type']);
    await this.throttle(req.socket, body);
    const reply = await this.handler({
      method: req.method ?? 'GET',
      url,
      headers: req.headers,
      body,
      arrived,
    });
    return { ...reply, headers: { ...extra, ...reply.headers } };
  }

  private authorized(header: string | undefined): boolean {
    const token = /^Bearer (.+)$/i.exec(header ?? '')?.[1];
    const exp = token ? this.tokens.get(token) : undefined;
    return exp !== undefined && exp > Date.now();
  }

  /**
   * Requests left in the rolling window after this one (negative: over the limit, and not counted);
   * null when unlimited.
   */
  private countWindow(now: number): number | null {
    const limit = this.faults.rateLimit;
    if (!limit) return null;
    let old = 0;
    while (old < this.window.length && this.window[old]! <= now - limit.windowMs) old++;
    if (old) this.window.splice(0, old);
    if (this.window.length >= limit.requests) return -1;
    // Bodies are read at different speeds: keep the window in arrival order.
    let at = this.window.length;
    while (at > 0 && this.window[at - 1]! > now) at--;
    this.window.splice(at, 0, now);
    return limit.requests - this.window.length;
  }

  /** Whole seconds until the rolling window has room again (at least 1), or the configured value. */
  private retryAfterS(): number {
    const limit = this.faults.rateLimit!;
    if (limit.retryAfterS !== undefined && limit.retryAfterS !== null) return limit.retryAfterS;
    const oldest = this.window[0] ?? Date.now();
    return Math.max(1, Math.ceil((oldest + limit.windowMs - Date.now()) / 1000));
  }
}

function parseBody(raw: string, type: string | undefined): unknown {
  if (!raw) return null;
  if (type?.includes('application/x-www-form-urlencoded'))
    return Object.fromEntries(new URLSearchParams(raw));
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** A syntactically valid address, as the APIs check it: something@something.tld, no spaces. */
export const validEmail = (v: unknown): boolean =>
  typeof v === 'string' && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v);
