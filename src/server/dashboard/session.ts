import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { safeEqual } from '../auth.ts';
import { fail } from '../body.ts';

/** The cookie that carries a signed-in dashboard's API token: HttpOnly, SameSite=Strict. */
export const SESSION_COOKIE = 'sluice_session';
/** The header the dashboard's own script sends on every change it asks for (see {@link sameOrigin}). */
export const DASHBOARD_HEADER = 'x-sluice-dashboard';
const SESSION_SECONDS = 12 * 60 * 60;

/** True when `token` is one of the configured API tokens (every one compared, in constant time). */
export function tokenValid(token: string | undefined, tokens: readonly string[]): boolean {
  if (!token) return false;
  return tokens.reduce((ok, t) => safeEqual(token, t) || ok, false);
}

/** True when the request carries a session cookie whose token is still configured. */
export function signedIn(c: Context, tokens: readonly string[]): boolean {
  return tokenValid(getCookie(c, SESSION_COOKIE), tokens);
}

/** The `Set-Cookie` value that signs in (the token) or out (an empty, expired cookie). */
export function sessionCookie(c: Context, token: string | null): string {
  // Secure only where the page itself came over HTTPS: a browser drops a Secure cookie set over plain
  // HTTP on anything but localhost, and `sluice serve` listens on plain HTTP behind whatever proxy.
  const secure = new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
  const parts = [
    `${SESSION_COOKIE}=${token === null ? '' : encodeURIComponent(token)}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${token === null ? 0 : SESSION_SECONDS}`,
  ];
  if (secure) parts.push('Secure');
  return parts.join('; ');
}

/**
 * Whether a request that changes something came from the dashboard's own page. The cookie is
 * SameSite=Strict, so another site's form or script cannot send it; on top of that, a browser's
 * `Sec-Fetch-Site` (which no page can forge) must say `same-origin`. Where a client sends no
 * `Sec-Fetch-Site`, an `Origin` naming this server, or else the dashboard's custom header (which a
 * cross-site request cannot carry without a CORS preflight this server never grants), is required.
 */
export function sameOrigin(c: Context): boolean {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined) return site === 'same-origin';
  const origin = c.req.header('origin');
  if (origin !== undefined) {
    try {
      return new URL(origin).host === c.req.header('host');
    } catch {
      // `Origin: null` (a sandboxed frame, a redirect across sites) or garbage: not this page.
      return false;
    }
  }
  return c.req.header(DASHBOARD_HEADER) === '1';
}

/** Refuses a dashboard request without a valid session (401), and a change from elsewhere (403). */
export function requireSession(tokens: readonly string[]): MiddlewareHandler {
  return async (c, next) => {
    if (!signedIn(c, tokens)) return fail(c, 401, 'unauthorized: sign in with an API token', 'UNAUTHORIZED');
    const method = c.req.method;
    if (method !== 'GET' && method !== 'HEAD' && !sameOrigin(c))
      return fail(c, 403, 'forbidden: a change must come from the dashboard page itself', 'CSRF');
    await next();
  };
}
