import { z } from 'zod';
import { type Auth, authSchema, createAuth } from './auth.ts';
import { HttpClient } from './client.ts';
import { type Connection, sharedConnection } from './connection.ts';
import type { WindowLimit } from './limiter.ts';
import { quotaSchema } from './quota.ts';

export const windowSchema = z.strictObject({
  requests: z.number().int().positive(),
  perMs: z.number().int().positive(),
});

/** Transport settings every API connection accepts; defaults are documented in `HttpClientOptions`. */
export const transportShape = {
  headers: z.record(z.string(), z.string()).optional(),
  timeoutMs: z.number().int().positive().default(30_000),
  retries: z.number().int().min(0).default(8),
  backoffMs: z.number().int().min(0).default(500),
  maxBackoffMs: z.number().int().min(0).default(30_000),
  maxRetryAfterMs: z.number().int().min(0).default(120_000),
  /** How long one call keeps retrying (and waiting out an open circuit) before it fails. */
  retryWindowMs: z.number().int().min(0).default(120_000),
  /**
   * Client-side limit for this connection, e.g. `{ requests: 100, perMs: 10000 }`: never more than
   * `requests` calls in any `perMs`, shared by every sync on the connection in the process.
   */
  rateLimit: windowSchema.nullable().default(null),
  concurrency: z.number().int().positive().default(4),
  circuitBreaker: z
    .strictObject({ failures: z.number().int().positive(), halfOpenAfterMs: z.number().int().positive() })
    .nullable()
    .default({ failures: 10, halfOpenAfterMs: 5_000 }),
  /** A daily API budget: `{ perDay: 250000 }` (calendar day, UTC) or `{ perDay, window: 'rolling' }`. */
  quota: quotaSchema.nullable().default(null),
};

const transportSchema = z.strictObject(transportShape);
export type Transport = z.output<typeof transportSchema>;

/**
 * The process's shared state for a connection (see `sharedConnection`): `identity` says who the
 * service counts calls against, `label` names it in messages.
 */
export function connectionFor(
  options: object,
  t: Transport,
  spec: { identity: string; label: string; auth: () => Auth; rateLimit?: WindowLimit | null },
): Connection {
  return sharedConnection(
    options,
    {
      identity: spec.identity,
      label: spec.label,
      rateLimit: spec.rateLimit !== undefined ? spec.rateLimit : t.rateLimit,
      concurrency: t.concurrency,
      circuitBreaker: t.circuitBreaker,
      quota: t.quota,
    },
    spec.auth,
  );
}

/** A client on a shared connection. */
export function clientFor(
  baseUrl: string,
  connection: Connection,
  t: Transport,
  extra: { idempotencyHeader?: string | null; kinds?: Record<string, WindowLimit | null> } = {},
): HttpClient {
  return new HttpClient({
    baseUrl,
    auth: connection.auth,
    connection,
    headers: t.headers,
    timeoutMs: t.timeoutMs,
    retries: t.retries,
    backoffMs: t.backoffMs,
    maxBackoffMs: t.maxBackoffMs,
    maxRetryAfterMs: t.maxRetryAfterMs,
    retryWindowMs: t.retryWindowMs,
    idempotencyHeader: extra.idempotencyHeader ?? null,
    kinds: extra.kinds,
  });
}

export { authSchema, createAuth };

/** Reads a dot path (`data.items`, `errors.0.message`) from a JSON value; '' is the value itself. */
export function getPath(value: unknown, path: string): unknown {
  if (!path) return value;
  let at: unknown = value;
  for (const part of path.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}
