import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The HTTP plumbing shared by the API emulators (dev-only test doubles, never the real services):
 * a node:http server on 127.0.0.1, port 0, with switchable faults — a fixed-window rate limit
 * answering 429 + Retry-After, bursts of 5xx, a "hang" mode that never answers — and OAuth-style
 * bearer tokens that expire.
 */
export type EmulatorRequest = {
  method: string;
  url: URL;
  headers: IncomingMessage['headers'];
  body: unknown;
};
export type EmulatorResponse = { status: number; body?: unknown; headers?: Record<string, string> };
export type Handler = (req: EmulatorRequest) => EmulatorResponse | Promise<EmulatorResponse>;

export type Faults = {
  /** At most `requests` per `windowMs` (fixed window); past it, 429 with `Retry-After: retryAfterS`. */
  rateLimit: { requests: number; windowMs: number; retryAfterS: number } | null;
  /** The next this-many requests fail with 503. */
  failNext: number;
  /** Each request fails with 503 with this probability (0..1). */
  failRate: number;
  /** Requests are read and never answered, until switched off or the server closes. */
  hang: boolean;
};

export type EmulatorStats = {
  requests: number;
  rateLimited: number;
  failed: number;
  hung: number;
  tokens: number;
  byPath: Map<string, number>;
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
};

export class EmulatorServer {
  url = '';
  readonly faults: Faults = { rateLimit: null, failNext: 0, failRate: 0, hang: false };
  readonly stats: EmulatorStats = {
    requests: 0,
    rateLimited: 0,
    failed: 0,
    hung: 0,
    tokens: 0,
    byPath: new Map(),
  };
  /** Token → expiry (ms since epoch). */
  private readonly tokens = new Map<string, number>();
  private readonly server = createServer((req, res) => void this.serve(req, res));
  private readonly handler: Handler;
  private readonly options: EmulatorOptions;
  private window = { start: 0, count: 0 };
  private readonly hung = new Set<ServerResponse>();

  constructor(handler: Handler, options: EmulatorOptions) {
    this.handler = handler;
    this.options = options;
    for (const t of options.tokens ?? []) this.tokens.set(t, Number.POSITIVE_INFINITY);
    this.server.keepAliveTimeout = 30_000;
  }

  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
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
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const url = new URL(req.url ?? '/', this.url);
    const isControl = url.pathname.startsWith('/_emulator/');
    if (!isControl) this.stats.requests += 1;
    if (!isControl) this.stats.byPath.set(url.pathname, (this.stats.byPath.get(url.pathname) ?? 0) + 1);
    if (this.faults.hang && !isControl) {
      this.stats.hung += 1;
      this.hung.add(res);
      return;
    }
    let reply: EmulatorResponse;
    try {
      const raw = Buffer.concat(chunks).toString('utf8');
      // Control endpoints of the emulator itself (not part of any emulated API): no token, no faults.
      reply = isControl ? await this.control(req, url, raw) : await this.answer(req, url, raw);
    } catch (err) {
      // An emulator bug must show up as a 500 in the test, not as an unhandled rejection.
      reply = { status: 500, body: { message: `emulator error: ${(err as Error).message}` } };
    }
    const text = reply.body === undefined ? '' : JSON.stringify(reply.body);
    res.writeHead(reply.status, { 'content-type': 'application/json;charset=UTF-8', ...reply.headers });
    res.end(text);
  }

  /**
   * `GET /_emulator/stats`: request counters; `PUT /_emulator/rate-limit` with
   * `{ requests, windowMs, retryAfterS }` or `null`: switches the rate limit; anything else under
   * `/_emulator/` goes to the emulator's handler.
   */
  private async control(req: IncomingMessage, url: URL, raw: string): Promise<EmulatorResponse> {
    if (url.pathname === '/_emulator/stats' && req.method === 'GET') {
      const { byPath, ...counters } = this.stats;
      return { status: 200, body: { ...counters, byPath: Object.fromEntries(byPath) } };
    }
    if (url.pathname === '/_emulator/rate-limit' && req.method === 'PUT') {
      const limit = parseBody(raw, 'application/json') as Partial<NonNullable<Faults['rateLimit']>> | null;
      this.faults.rateLimit =
        limit && typeof limit === 'object'
          ? {
              requests: Number(limit.requests),
              windowMs: Number(limit.windowMs),
              retryAfterS: limit.retryAfterS ?? 1,
            }
          : null;
      this.window = { start: 0, count: 0 };
      return { status: 200, body: { rateLimit: this.faults.rateLimit } };
    }
    const body = parseBody(raw, req.headers['content-type']);
    return this.handler({ method: req.method ?? 'GET', url, headers: req.headers, body });
  }

  private async answer(req: IncomingMessage, url: URL, raw: string): Promise<EmulatorResponse> {
    const { errors } = this.options;
    const remaining = this.countWindow();
    const extra = this.options.headers?.(remaining) ?? {};
    if (remaining !== null && remaining < 0) {
      this.stats.rateLimited += 1;
      const retryAfter = String(this.faults.rateLimit?.retryAfterS ?? 1);
      return { status: 429, body: errors.rateLimited(), headers: { ...extra, 'retry-after': retryAfter } };
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
    const reply = await this.handler({ method: req.method ?? 'GET', url, headers: req.headers, body });
    return { ...reply, headers: { ...extra, ...reply.headers } };
  }

  private authorized(header: string | undefined): boolean {
    const token = /^Bearer (.+)$/i.exec(header ?? '')?.[1];
    const exp = token ? this.tokens.get(token) : undefined;
    return exp !== undefined && exp > Date.now();
  }

  /** Requests left in the current window after this one (negative: over the limit); null when unlimited. */
  private countWindow(): number | null {
    const limit = this.faults.rateLimit;
    if (!limit) return null;
    const now = Date.now();
    if (now - this.window.start >= limit.windowMs) this.window = { start: now, count: 0 };
    this.window.count += 1;
    return limit.requests - this.window.count;
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
