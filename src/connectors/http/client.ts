import { createHash } from 'node:crypto';
import {
  BrokenCircuitError,
  type BulkheadPolicy,
  bulkhead,
  type CircuitBreakerPolicy,
  ConsecutiveBreaker,
  circuitBreaker,
  DelegateBackoff,
  handleWhen,
  type RetryPolicy,
  retry,
} from 'cockatiel';
import { stringifyJson } from '../../core/json.ts';
import type { Auth } from './auth.ts';
import { parseJson } from './auth.ts';
import {
  codeForStatus,
  HttpError,
  isRetryable,
  isServiceFailure,
  messageOf,
  parseRetryAfter,
} from './errors.ts';
import { RateLimiter } from './limiter.ts';

export type HttpClientOptions = {
  baseUrl: string;
  auth: Auth;
  headers?: Record<string, string> | undefined;
  /** Per attempt, combined with the run's signal. @defaultValue 30000 */
  timeoutMs?: number | undefined;
  /** Retries after the first attempt, for 429, 5xx, network errors and timeouts. @defaultValue 5 */
  retries?: number | undefined;
  /** First backoff step; doubles per retry, with full jitter. @defaultValue 500 */
  backoffMs?: number | undefined;
  /** @defaultValue 30000 */
  maxBackoffMs?: number | undefined;
  /** A Retry-After longer than this is cut to it. @defaultValue 120000 */
  maxRetryAfterMs?: number | undefined;
  /** Requests per window for this connection; null for no client-side limit. */
  rateLimit?: { requests: number; perMs: number } | null | undefined;
  /** Requests in flight at once on this connection. @defaultValue 4 */
  concurrency?: number | undefined;
  /** Consecutive service failures that open the circuit, and how long it stays open. */
  circuitBreaker?: { failures: number; halfOpenAfterMs: number } | null | undefined;
  /** Header carrying an idempotency key on writes, where the API supports one (e.g. `Idempotency-Key`). */
  idempotencyHeader?: string | null | undefined;
};

export type HttpRequest = {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** A path joined to the base URL, or an absolute URL (a `next` link). */
  path: string;
  query?: Record<string, string | number | boolean | null | undefined> | undefined;
  body?: unknown;
  headers?: Record<string, string> | undefined;
  signal: AbortSignal;
  /** Statuses returned to the caller rather than thrown (a batch endpoint's 207 or 400 with per-record errors). */
  accept?: readonly number[] | undefined;
};

export type HttpResponse = { status: number; headers: Headers; body: unknown };

export type HttpStats = {
  requests: number;
  retries: number;
  rateLimited: number;
  refreshes: number;
  timeouts: number;
};

/**
 * The one HTTP client every API connector uses: auth with one refresh-and-replay on 401, a rate
 * limiter that honours 429 Retry-After and rate-limit headers, a concurrency cap, jittered retries on
 * 5xx/network/timeouts, a circuit breaker, and per-attempt timeouts tied to the run's signal.
 */
export class HttpClient {
  readonly stats: HttpStats = { requests: 0, retries: 0, rateLimited: 0, refreshes: 0, timeouts: 0 };
  readonly limiter: RateLimiter;
  baseUrl: string;
  private readonly options: HttpClientOptions;
  private readonly retry: RetryPolicy;
  private readonly breaker: CircuitBreakerPolicy | null;
  private readonly bulkhead: BulkheadPolicy;

  constructor(options: HttpClientOptions) {
    this.options = options;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.limiter = new RateLimiter(options.rateLimit ?? null);
    const base = options.backoffMs ?? 500;
    const max = options.maxBackoffMs ?? 30_000;
    const maxRetryAfter = options.maxRetryAfterMs ?? 120_000;
    this.retry = retry(
      handleWhen((err) => isRetryable(err)),
      {
        maxAttempts: options.retries ?? 5,
        backoff: new DelegateBackoff((ctx) => {
          const err = 'error' in ctx.result ? ctx.result.error : null;
          if (err instanceof HttpError && err.retryAfterMs !== null)
            return Math.min(err.retryAfterMs, maxRetryAfter);
          // Full jitter: concurrent clients that failed together do not come back together.
          return Math.random() * Math.min(max, base * 2 ** Math.max(0, ctx.attempt - 1));
        }),
      },
    );
    this.retry.onRetry(() => {
      this.stats.retries += 1;
    });
    const cb =
      options.circuitBreaker === undefined
        ? { failures: 10, halfOpenAfterMs: 30_000 }
        : options.circuitBreaker;
    this.breaker = cb
      ? circuitBreaker(
          handleWhen((err) => isServiceFailure(err)),
          { halfOpenAfter: cb.halfOpenAfterMs, breaker: new ConsecutiveBreaker(cb.failures) },
        )
      : null;
    this.bulkhead = bulkhead(options.concurrency ?? 4, Number.MAX_SAFE_INTEGER);
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    try {
      return await this.retry.execute(() => {
        const once = () => this.bulkhead.execute(() => this.attempt(req), req.signal);
        return this.breaker ? this.breaker.execute(once, req.signal) : once();
      }, req.signal);
    } catch (err) {
      if (req.signal.aborted) throw req.signal.reason;
      if (err instanceof BrokenCircuitError) {
        throw new HttpError(
          'HTTP_CIRCUIT_OPEN',
          `${this.baseUrl} failed too often in a row; not calling it for a while`,
          { cause: err },
        );
      }
      throw err;
    }
  }

  /** Runs `fn` under this connection's retry policy (a token request made outside `request`). */
  async withRetries<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T> {
    return this.retry.execute(fn, signal);
  }

  /** One attempt, plus one replay after a 401 when the auth can get a fresh token. */
  private async attempt(req: HttpRequest): Promise<HttpResponse> {
    let res = await this.send(req);
    if (res.status === 401 && (await this.options.auth.refresh(req.signal))) {
      this.stats.refreshes += 1;
      res = await this.send(req);
    }
    if (res.status === 429) {
      this.stats.rateLimited += 1;
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      if (retryAfterMs !== null) this.limiter.pause(retryAfterMs);
      throw new HttpError('HTTP_RATE_LIMITED', `${req.method} ${req.path}: rate limited (429)`, {
        status: 429,
        retryAfterMs,
        body: res.body,
      });
    }
    if (res.status >= 300 && !req.accept?.includes(res.status)) {
      const why = messageOf(res.body) ?? 'no message';
      throw new HttpError(
        codeForStatus(res.status),
        `${req.method} ${req.path} failed (${res.status}): ${why}`,
        {
          status: res.status,
          body: res.body,
        },
      );
    }
    return res;
  }

  private async send(req: HttpRequest): Promise<HttpResponse> {
    await this.limiter.acquire(req.signal);
    const url = new URL(/^https?:\/\//.test(req.path) ? req.path : `${this.baseUrl}${req.path}`);
    for (const [k, v] of Object.entries(req.query ?? {}))
      if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    const headers = new Headers({ accept: 'application/json', ...this.options.headers, ...req.headers });
    await this.options.auth.apply(headers, url, req.signal);
    let body: string | undefined;
    if (req.body !== undefined) {
      body = stringifyJson(req.body);
      headers.set('content-type', 'application/json');
      // Derived from the content, not random: a batch replayed by a later run carries the same key.
      const idem = this.options.idempotencyHeader;
      if (idem && req.method !== 'GET')
        headers.set(
          idem,
          createHash('sha256').update(`${req.method} ${url.pathname}\n${body}`).digest('hex'),
        );
    }
    // One controller per attempt, aborted by the run's signal or our timer. (AbortSignal.any over the
    // run's long-lived signal costs measurably more per request at thousands of requests a second.)
    const ac = new AbortController();
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, timeoutMs);
    const onAbort = () => ac.abort(req.signal.reason);
    req.signal.addEventListener('abort', onAbort, { once: true });
    this.stats.requests += 1;
    try {
      const res = await fetch(url, { method: req.method, headers, body, signal: ac.signal });
      const text = await res.text();
      this.limiter.observe(res.headers);
      return { status: res.status, headers: res.headers, body: parseJson(text) };
    } catch (err) {
      if (req.signal.aborted) throw req.signal.reason;
      if (timedOut) {
        this.stats.timeouts += 1;
        throw new HttpError(
          'HTTP_TIMEOUT',
          `${req.method} ${url.pathname}: no answer within ${timeoutMs} ms`,
          {
            cause: err,
          },
        );
      }
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new HttpError(
        'HTTP_NETWORK',
        `${req.method} ${url.host}: ${cause?.code ?? (err as Error).message}`,
        { cause: err },
      );
    } finally {
      clearTimeout(timer);
      req.signal.removeEventListener('abort', onAbort);
    }
  }
}
