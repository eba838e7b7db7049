import { createHash } from 'node:crypto';
import { SluiceError } from '../../core/errors.ts';
import { stringifyJson } from '../../core/json.ts';
import type { Auth } from './auth.ts';
import { parseJson } from './auth.ts';
import type { CircuitSettings } from './circuit.ts';
import { Connection, type HttpStats } from './connection.ts';
import {
  codeForStatus,
  HttpError,
  isRetryable,
  isServiceFailure,
  messageOf,
  networkCause,
  parseRetryAfter,
} from './errors.ts';
import { type SlidingWindow, type WindowLimit, wait } from './limiter.ts';
import type { QuotaSettings } from './quota.ts';
import { exchange, HeaderMap, type ResponseHeaders, TransportTimeout } from './transport.ts';

export type { HttpStats } from './connection.ts';

export type HttpClientOptions = {
  baseUrl: string;
  auth: Auth;
  headers?: Record<string, string> | undefined;
  /** Per attempt, combined with the run's signal. @defaultValue 30000 */
  timeoutMs?: number | undefined;
  /** Retries after the first attempt, for 429, 5xx, network errors and timeouts. @defaultValue 8 */
  retries?: number | undefined;
  /** First backoff step; doubles per retry, half of it fixed and half random. @defaultValue 500 */
  backoffMs?: number | undefined;
  /** @defaultValue 30000 */
  maxBackoffMs?: number | undefined;
  /** A Retry-After longer than this is cut to it. @defaultValue 120000 */
  maxRetryAfterMs?: number | undefined;
  /**
   * A call stops retrying (and stops waiting for an open circuit) once this long has passed since its
   * first attempt, and fails naming the last failure. The run's own deadline (its signal) stops it
   * earlier. @defaultValue 120000
   */
  retryWindowMs?: number | undefined;
  /** Requests per window for this connection; null for no client-side limit. */
  rateLimit?: WindowLimit | null | undefined;
  /** Requests in flight at once on this connection. @defaultValue 4 */
  concurrency?: number | undefined;
  /** Consecutive service failures that open the circuit, and how long it stays open before a probe. */
  circuitBreaker?: CircuitSettings | null | undefined;
  /** Header carrying an idempotency key on writes, where the API supports one (e.g. `Idempotency-Key`). */
  idempotencyHeader?: string | null | undefined;
  /** The connection's daily budget. */
  quota?: QuotaSettings | null | undefined;
  /** The connection's shared state (see `sharedConnection`); a private one is made when absent. */
  connection?: Connection | undefined;
  /** Kinds of call with a limit of their own on top of the connection's: `{ search: { requests: 4, perMs: 1000 } }`. */
  kinds?: Record<string, WindowLimit | null> | undefined;
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
  /** One of the client's `kinds`: the call also counts in that kind's window. */
  kind?: string | undefined;
  /**
   * Whether `body` may hold bigints, written as exact numbers (the default). A caller that built the
   * body and knows it holds none says false, and it is written by plain `JSON.stringify`: faster.
   */
  bigints?: boolean | undefined;
};

export type HttpResponse = { status: number; headers: ResponseHeaders; body: unknown };

/**
 * The one HTTP client every API connector uses. Every call goes through its connection's shared
 * state: a concurrency cap, a circuit breaker that waits out an outage and probes, a sliding-window
 * rate gate (429 Retry-After and rate-limit headers pause it), the daily budget, and auth with one
 * refresh for any number of parallel 401s. Failures that may pass (429, 5xx, refused connections,
 * timeouts) are retried with backoff within `retryWindowMs`; the error that ends the call names the
 * last failure.
 */
export class HttpClient {
  baseUrl: string;
  readonly connection: Connection;
  private readonly options: HttpClientOptions;
  private readonly windows = new Map<string | undefined, readonly SlidingWindow[]>();
  private readonly retries: number;
  private readonly base: number;
  private readonly maxBackoff: number;
  private readonly maxRetryAfter: number;
  private readonly retryWindowMs: number;
  private readonly timeoutMs: number;

  constructor(options: HttpClientOptions) {
    this.options = options;
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.connection =
      options.connection ??
      new Connection(
        {
          identity: this.baseUrl,
          label: this.baseUrl,
          rateLimit: options.rateLimit ?? null,
          concurrency: options.concurrency ?? 4,
          circuitBreaker:
            options.circuitBreaker === undefined
              ? { failures: 10, halfOpenAfterMs: 5_000 }
              : options.circuitBreaker,
          quota: options.quota ?? null,
        },
        options.auth,
      );
    const gate = this.connection.gate;
    this.windows.set(undefined, gate.window(null));
    for (const [kind, limit] of Object.entries(options.kinds ?? {}))
      this.windows.set(kind, gate.window(limit, kind));
    this.retries = options.retries ?? 8;
    this.base = options.backoffMs ?? 500;
    this.maxBackoff = options.maxBackoffMs ?? 30_000;
    this.maxRetryAfter = options.maxRetryAfterMs ?? 120_000;
    this.retryWindowMs = options.retryWindowMs ?? 120_000;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  get stats(): HttpStats {
    return this.connection.stats;
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const started = Date.now();
    return this.withRetries(() => this.once(req, started), req.signal, started);
  }

  /** Runs `fn` under this connection's retry policy (a token request made outside `request`). */
  async withRetries<T>(fn: () => Promise<T>, signal: AbortSignal, started = Date.now()): Promise<T> {
    for (let retry = 1; ; retry++) {
      let failure: unknown;
      try {
        return await fn();
      } catch (err) {
        failure = err;
      }
      if (signal.aborted) throw signal.reason;
      if (!isRetryable(failure)) throw failure;
      const delay = this.delayFor(failure as HttpError, retry);
      const spent = Date.now() - started;
      if (retry > this.retries || spent + delay > this.retryWindowMs) throw gaveUp(failure, retry, spent);
      this.connection.stats.retries += 1;
      await wait(delay, signal).catch(() => {
        throw outOfTime(failure, signal);
      });
    }
  }

  /** Doubling steps, half fixed and half random: parallel callers spread out, yet each waits a while. */
  private delayFor(err: HttpError, retry: number): number {
    if (err.retryAfterMs !== null) return Math.min(err.retryAfterMs, this.maxRetryAfter);
    const step = Math.min(this.maxBackoff, this.base * 2 ** (retry - 1));
    return step / 2 + (Math.random() * step) / 2;
  }

  /** One attempt: a concurrency slot, the circuit's leave, then the call. */
  private async once(req: HttpRequest, started: number): Promise<HttpResponse> {
    const { slots, circuit } = this.connection;
    await slots.take(req.signal);
    let probe = false;
    try {
      if (circuit) probe = await this.admitted(req, started);
      const res = await this.attempt(req);
      circuit?.succeeded();
      return res;
    } catch (err) {
      if (!circuit) throw err;
      if (isServiceFailure(err)) circuit.failed(err, probe);
      else if (err instanceof HttpError && err.status !== null)
        circuit.succeeded(); // it answered
      else circuit.released(probe);
      throw err;
    } finally {
      slots.release();
    }
  }

  /** Waits while the circuit is open; true when this call is the probe. */
  private async admitted(req: HttpRequest, started: number): Promise<boolean> {
    const circuit = this.connection.circuit!;
    while (true) {
      const { waitMs, probe } = circuit.admit();
      if (waitMs === 0) return probe;
      const deadline = started + this.retryWindowMs;
      if (Number.isFinite(waitMs) && Date.now() + waitMs > deadline) {
        const last = circuit.lastFailure;
        const why = last instanceof Error ? last.message : 'repeated failures';
        throw new HttpError(
          'HTTP_CIRCUIT_OPEN',
          `${this.connection.settings.label} keeps failing (${why}); gave up waiting for it after ${Math.round((Date.now() - started) / 1000)} s`,
          { cause: last },
        );
      }
      await circuit.changed(Math.min(waitMs, Math.max(1, deadline - Date.now())), req.signal);
      if (req.signal.aborted) throw outOfTime(circuit.lastFailure, req.signal);
    }
  }

  /** The call, plus one replay after a 401 when the auth can get a fresh token. */
  private async attempt(req: HttpRequest): Promise<HttpResponse> {
    const sent = await this.send(req);
    let res = sent.res;
    if (res.status === 401 && (await this.connection.auth.refresh(req.signal, sent.authorization))) {
      this.connection.stats.refreshes += 1;
      res = (await this.send(req)).res;
    }
    if (res.status === 429) {
      this.connection.stats.rateLimited += 1;
      const retryAfterMs = parseRetryAfter(res.headers.get('retry-after'));
      if (retryAfterMs !== null) this.connection.gate.pause(retryAfterMs);
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
        `${req.method} ${pathOf(req.path)} failed (${res.status}): ${why}`,
        { status: res.status, body: res.body },
      );
    }
    return res;
  }

  private async send(req: HttpRequest): Promise<{ res: HttpResponse; authorization: string | null }> {
    const conn = this.connection;
    const url = new URL(/^https?:\/\//.test(req.path) ? req.path : `${this.baseUrl}${req.path}`);
    if (req.query)
      for (const [k, v] of Object.entries(req.query))
        if (v !== undefined && v !== null) url.searchParams.set(k, String(v));
    const headers = new HeaderMap(this.options.headers);
    headers.set('accept', 'application/json');
    if (req.headers) for (const k in req.headers) headers.set(k, req.headers[k]!);
    await conn.auth.apply(headers, url, req.signal);
    let body: string | undefined;
    if (req.body !== undefined) {
      body = req.bigints === false ? JSON.stringify(req.body) : stringifyJson(req.body);
      headers.set('content-type', 'application/json');
      // Derived from the content, not random: a batch replayed by a later run carries the same key.
      const idem = this.options.idempotencyHeader;
      if (idem && req.method !== 'GET')
        headers.set(
          idem,
          createHash('sha256').update(`${req.method} ${url.pathname}\n${body}`).digest('hex'),
        );
    }
    const windows = this.windows.get(req.kind) ?? this.windows.get(undefined)!;
    const ticket = await conn.gate.acquire(windows, req.signal);
    conn.stats.requests += 1;
    try {
      conn.quota?.spend();
      const res = await exchange(url, {
        method: req.method,
        headers,
        body,
        signal: req.signal,
        timeoutMs: this.timeoutMs,
      });
      conn.gate.observe(res.headers);
      return {
        res: { status: res.status, headers: res.headers, body: parseJson(res.text) },
        authorization: headers.get('authorization'),
      };
    } catch (err) {
      if (req.signal.aborted) throw req.signal.reason;
      // Ours already (the budget is spent): as it is. Anything else came from the socket.
      if (err instanceof SluiceError || !(err instanceof Error)) throw err;
      if (err instanceof TransportTimeout) {
        conn.stats.timeouts += 1;
        throw new HttpError(
          'HTTP_TIMEOUT',
          `${req.method} ${url.host}${url.pathname}: no answer within ${this.timeoutMs} ms`,
          { cause: err },
        );
      }
      throw new HttpError('HTTP_NETWORK', `${req.method} ${url.host}${url.pathname}: ${networkCause(err)}`, {
        cause: err,
      });
    } finally {
      conn.gate.release(ticket);
    }
  }
}

/** A path for messages: an absolute next link without its host and query. */
function pathOf(path: string): string {
  return /^https?:\/\//.test(path) ? new URL(path).pathname : path.split('?')[0]!;
}

/**
 * The run's deadline passed while a call waited to try again: the last failure, so the run's end names
 * what it was waiting out. Any other abort (a cancelled read-ahead) is the signal's own reason.
 */
function outOfTime(failure: unknown, signal: AbortSignal): unknown {
  const reason = signal.reason as { name?: unknown } | undefined;
  if (reason?.name !== 'TimeoutError' || !(failure instanceof HttpError)) return signal.reason;
  return new HttpError(
    failure.code as ConstructorParameters<typeof HttpError>[0],
    `${failure.message} (still failing when the run's time ran out)`,
    { status: failure.status, body: failure.body, cause: failure },
  );
}

/** The last failure, saying it was the last: same code, so callers still tell a timeout from a 5xx. */
function gaveUp(err: unknown, attempts: number, spentMs: number): unknown {
  if (!(err instanceof HttpError)) return err;
  return new HttpError(
    err.code as ConstructorParameters<typeof HttpError>[0],
    `${err.message} (gave up after ${attempts} attempts over ${(spentMs / 1000).toFixed(1)} s)`,
    { status: err.status, retryAfterMs: err.retryAfterMs, body: err.body, cause: err },
  );
}
