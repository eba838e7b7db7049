import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { stringifyJson } from '../core/json.ts';

/**
 * A JSON answer that keeps integers beyond 2^53 exact (a key, a cursor, a payload): every route
 * answers through it rather than `c.json`, which would throw on a bigint.
 */
export function json(c: Context, value: unknown, status: ContentfulStatusCode = 200): Response {
  return c.body(stringifyJson(value), status, { 'content-type': 'application/json; charset=UTF-8' });
}

/** An error answer: `{ error, code }`. */
export function fail(c: Context, status: ContentfulStatusCode, error: string, code: string): Response {
  return json(c, { error, code }, status);
}

/** True when the request declares (`Content-Length`) a body longer than `limit` bytes. */
export function declaredOver(c: Context, limit: number): boolean {
  const header = c.req.header('content-length');
  // A malformed length never reaches here: Node's HTTP parser refuses the request with 400.
  return header !== undefined && Number(header) > limit;
}

/**
 * The request's body, read chunk by chunk and given up as soon as it passes `limit` bytes (null):
 * a body with no `Content-Length`, or with one that lies, costs at most `limit` bytes of memory.
 * The rest is left unread.
 */
export async function readBody(c: Context, limit: number): Promise<Uint8Array | null> {
  const stream = c.req.raw.body;
  if (stream === null) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      // Not cancelled: that destroys the socket before the 413 is written. The rest is left to the
      // HTTP server, which stops pulling it from the socket (backpressure) and, once the answer is
      // out, discards what comes for at most 500 ms or 64 MiB before closing the connection
      // (@hono/node-server's autoCleanupIncoming), long enough for the client to read the answer.
      reader.releaseLock();
      return null;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** The body as text (UTF-8, as `Request.text()` decodes it), or null past `limit` bytes. */
export async function readText(c: Context, limit: number): Promise<string | null> {
  const bytes = await readBody(c, limit);
  return bytes === null ? null : new TextDecoder().decode(bytes);
}
