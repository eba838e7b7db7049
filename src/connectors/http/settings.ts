import { z } from 'zod';
import { type Auth, authSchema, createAuth } from './auth.ts';
import { HttpClient } from './client.ts';

/** Transport settings every API connection accepts; defaults are documented in `HttpClientOptions`. */
export const transportShape = {
  headers: z.record(z.string(), z.string()).optional(),
  timeoutMs: z.number().int().positive().default(30_000),
  retries: z.number().int().min(0).default(5),
  backoffMs: z.number().int().min(0).default(500),
  maxBackoffMs: z.number().int().min(0).default(30_000),
  maxRetryAfterMs: z.number().int().min(0).default(120_000),
  /** Client-side limit for this connection, e.g. `{ requests: 100, perMs: 10000 }`. */
  rateLimit: z
    .object({ requests: z.number().int().positive(), perMs: z.number().int().positive() })
    .nullable()
    .default(null),
  concurrency: z.number().int().positive().default(4),
  circuitBreaker: z
    .object({ failures: z.number().int().positive(), halfOpenAfterMs: z.number().int().positive() })
    .nullable()
    .default({ failures: 10, halfOpenAfterMs: 30_000 }),
};

const transportSchema = z.strictObject(transportShape);
export type Transport = z.output<typeof transportSchema>;

export function clientFor(
  baseUrl: string,
  auth: Auth,
  t: Transport,
  extra: { idempotencyHeader?: string | null; rateLimit?: Transport['rateLimit'] } = {},
): HttpClient {
  return new HttpClient({
    baseUrl,
    auth,
    headers: t.headers,
    timeoutMs: t.timeoutMs,
    retries: t.retries,
    backoffMs: t.backoffMs,
    maxBackoffMs: t.maxBackoffMs,
    maxRetryAfterMs: t.maxRetryAfterMs,
    rateLimit: extra.rateLimit !== undefined ? extra.rateLimit : t.rateLimit,
    concurrency: t.concurrency,
    circuitBreaker: t.circuitBreaker,
    idempotencyHeader: extra.idempotencyHeader ?? null,
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
