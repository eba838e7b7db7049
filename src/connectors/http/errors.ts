import { ConnectorError } from '../../core/errors.ts';

/**
 * Codes every API connector raises. One classifier below decides what is worth retrying, so the
 * toolkit, HubSpot and Salesforce agree on it.
 */
export type HttpErrorCode =
  | 'HTTP_RATE_LIMITED' // 429: retried after Retry-After
  | 'HTTP_SERVER' // 5xx: retried with backoff
  | 'HTTP_NETWORK' // connection refused/reset, DNS: retried with backoff
  | 'HTTP_TIMEOUT' // no answer within timeoutMs: retried, then the batch fails and a later run replays it
  | 'HTTP_AUTH' // 401/403 after one token refresh: fix the credentials
  | 'HTTP_CLIENT' // other 4xx: the request itself is wrong, retrying will not help
  | 'HTTP_CIRCUIT_OPEN' // too many failures in a row: stop hammering a service that is down
  | 'HTTP_BAD_RESPONSE'; // the body is not what the API documents

export class HttpError extends ConnectorError {
  readonly status: number | null;
  /** How long the server asked us to wait (Retry-After), in ms. */
  readonly retryAfterMs: number | null;
  /** The parsed JSON body (or text) of the failed response, for per-record messages. */
  readonly body: unknown;
  constructor(
    code: HttpErrorCode,
    message: string,
    details: { status?: number | null; retryAfterMs?: number | null; body?: unknown; cause?: unknown } = {},
  ) {
    // A circuit opened by a service that keeps failing is momentary too: a later run may find it back.
    super(code, message, { cause: details.cause, transient: TRANSIENT.has(code) });
    this.name = 'HttpError';
    this.status = details.status ?? null;
    this.retryAfterMs = details.retryAfterMs ?? null;
    this.body = details.body;
  }
}

const TRANSIENT: ReadonlySet<string> = new Set([
  'HTTP_RATE_LIMITED',
  'HTTP_SERVER',
  'HTTP_NETWORK',
  'HTTP_TIMEOUT',
  'HTTP_CIRCUIT_OPEN',
]);

const RETRYABLE: ReadonlySet<string> = new Set([
  'HTTP_RATE_LIMITED',
  'HTTP_SERVER',
  'HTTP_NETWORK',
  'HTTP_TIMEOUT',
]);

/** The one retryable-or-not decision for every API connector. */
export function isRetryable(err: unknown): boolean {
  return err instanceof HttpError && RETRYABLE.has(err.code);
}

/** Failures that say the service is unwell (they trip the circuit breaker); a 429 or a 4xx does not. */
export function isServiceFailure(err: unknown): boolean {
  return (
    err instanceof HttpError &&
    (err.code === 'HTTP_SERVER' || err.code === 'HTTP_NETWORK' || err.code === 'HTTP_TIMEOUT')
  );
}

/** Maps an HTTP status to the error code it deserves. */
export function codeForStatus(status: number): HttpErrorCode {
  if (status === 429) return 'HTTP_RATE_LIMITED';
  if (status === 401 || status === 403) return 'HTTP_AUTH';
  if (status >= 500) return 'HTTP_SERVER';
  return 'HTTP_CLIENT';
}

/** `Retry-After` is either delta-seconds or an HTTP date (RFC 9110 §10.2.3); null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  if (Number.isNaN(at)) return null;
  return Math.max(0, at - now);
}

/** The most useful line of an API error body: `message`, `error_description`, `error`, or Salesforce's `[{ message }]`. */
export function messageOf(body: unknown): string | null {
  if (typeof body === 'string') return body.slice(0, 500) || null;
  if (Array.isArray(body)) return messageOf(body[0]);
  if (body && typeof body === 'object') {
    const o = body as Record<string, unknown>;
    for (const field of ['message', 'error_description', 'error', 'detail', 'title']) {
      const v = o[field];
      if (typeof v === 'string' && v) return v;
      if (v && typeof v === 'object') return messageOf(v);
    }
  }
  return null;
}

const NETWORK_WORDS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'connection timed out',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'name lookup failed for now',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  UND_ERR_SOCKET: 'connection closed by the server',
  UND_ERR_CLOSED: 'connection closed',
};

/** What went wrong under a failed fetch, in words and with its errno code: `connection refused (ECONNREFUSED)`. */
export function networkCause(err: unknown): string {
  let at: unknown = err;
  for (let depth = 0; at && depth < 4; depth++) {
    const code = (at as { code?: unknown }).code;
    if (typeof code === 'string' && code in NETWORK_WORDS) return `${NETWORK_WORDS[code]} (${code})`;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return `${(at as Error).message} (${code})`;
    at = (at as { cause?: unknown }).cause;
  }
  return (err as Error)?.message ?? String(err);
}
