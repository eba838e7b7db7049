import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Compares secrets in constant time: both sides are hashed first, so lengths leak nothing either. */
export function safeEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** The bearer token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match ? match[1]! : null;
}

export function tokenAccepted(header: string | undefined, tokens: readonly string[]): boolean {
  const token = bearerToken(header);
  if (token === null) return false;
  // Every token is compared, so the time taken says nothing about which one matched.
  return tokens.reduce((ok, t) => safeEqual(token, t) || ok, false);
}

export const SIGNATURE_HEADER = 'x-sluice-signature';
export const TIMESTAMP_HEADER = 'x-sluice-timestamp';
export const REPLAY_WINDOW_MS = 5 * 60_000;

/** HMAC-SHA256 (hex) of `<timestamp>.<raw body>`; the body as its bytes, or as text (UTF-8). */
export function sign(secret: string, timestamp: string, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

export type SignatureCheck = { ok: true; signature: string } | { ok: false; reason: string };

type SignatureHeaders = { signature: string | undefined; timestamp: string | undefined };
type SignedHeaders = { ok: true; signature: string; timestamp: string } | { ok: false; reason: string };

/**
 * What can be checked of a signed request before its body is read: both headers are there and the
 * timestamp (unix seconds) is inside the replay window.
 */
export function checkSignatureHeaders(headers: SignatureHeaders, now: number): SignedHeaders {
  const { signature, timestamp } = headers;
  if (!signature || !timestamp) return { ok: false, reason: 'missing signature or timestamp header' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'malformed timestamp' };
  const age = Math.abs(now - Number(timestamp) * 1000);
  if (age > REPLAY_WINDOW_MS) return { ok: false, reason: 'timestamp outside the 5-minute window' };
  return { ok: true, signature, timestamp };
}

/**
 * Checks `X-Sluice-Signature: v1=<hex>` (several `v1=` values may be sent, comma-separated) against
 * HMAC-SHA256 of `<timestamp>.<raw body>` under any of `secrets` (several while one is rotated),
 * with `X-Sluice-Timestamp` (unix seconds) inside the replay window.
 */
export function checkSignature(
  headers: SignatureHeaders,
  body: string | Uint8Array,
  secrets: readonly string[],
  now: number,
): SignatureCheck {
  const signed = checkSignatureHeaders(headers, now);
  if (!signed.ok) return signed;
  const offered = signed.signature
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part.startsWith('v1='))
    .map((part) => part.slice(3));
  for (const secret of secrets) {
    const expected = sign(secret, signed.timestamp, body);
    for (const candidate of offered)
      if (safeEqual(candidate, expected)) return { ok: true, signature: expected };
  }
  return { ok: false, reason: 'signature does not match' };
}
