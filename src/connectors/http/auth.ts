import { z } from 'zod';
import { parseJson as parseExactJson } from '../../core/json.ts';
import { codeForStatus, HttpError, messageOf } from './errors.ts';
import type { HeaderMap } from './transport.ts';

export const authSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({ type: z.literal('bearer'), token: z.string().min(1) }),
  z.strictObject({
    type: z.literal('apiKey'),
    /** Header or query parameter name, e.g. `X-Api-Key` or `api_key`. */
    name: z.string().min(1),
    value: z.string().min(1),
    in: z.enum(['header', 'query']).default('header'),
  }),
  z.strictObject({ type: z.literal('basic'), username: z.string(), password: z.string() }),
  z.strictObject({
    type: z.literal('oauth2'),
    grant: z.enum(['client_credentials', 'refresh_token']),
    tokenUrl: z.url(),
    clientId: z.string().min(1),
    clientSecret: z.string().optional(),
    refreshToken: z.string().optional(),
    scope: z.string().optional(),
    /** A token already in hand; used until the API answers 401, then refreshed. */
    accessToken: z.string().optional(),
    /** How the client authenticates to the token endpoint. @defaultValue 'body' */
    clientAuth: z.enum(['body', 'basic']).default('body'),
  }),
]);

export type AuthConfig = z.output<typeof authSchema>;
type OAuthConfig = Extract<AuthConfig, { type: 'oauth2' }>;

/** A token endpoint's answer; extra fields (Salesforce's `instance_url`) are kept for the connector. */
export type TokenResponse = { access_token: string; expires_in?: number; refresh_token?: string } & Record<
  string,
  unknown
>;

export interface Auth {
  /** Adds credentials to a request about to be sent. */
  apply(headers: HeaderMap, url: URL, signal: AbortSignal): Promise<void>;
  /**
   * Gets a fresh token after a 401 to a request sent with the `authorization` header `rejected`;
   * false when this kind of auth cannot refresh. Any number of requests refused with the same token
   * cause one refresh.
   */
  refresh(signal: AbortSignal, rejected: string | null): Promise<boolean>;
}

export function createAuth(config: AuthConfig, timeoutMs = 30_000): Auth {
  switch (config.type) {
    case 'none':
      return { apply: async () => {}, refresh: async () => false };
    case 'bearer':
      return staticHeader('authorization', `Bearer ${config.token}`);
    case 'basic':
      return staticHeader(
        'authorization',
        `Basic ${Buffer.from(`${config.username}:${config.password}`).toString('base64')}`,
      );
    case 'apiKey':
      if (config.in === 'header') return staticHeader(config.name, config.value);
      return {
        apply: async (_h, url) => url.searchParams.set(config.name, config.value),
        refresh: async () => false,
      };
    case 'oauth2':
      return new OAuth2(config, timeoutMs);
  }
}

function staticHeader(name: string, value: string): Auth {
  return { apply: async (headers) => headers.set(name, value), refresh: async () => false };
}

/** Refreshes ahead of `expires_in` by this much, so a token does not expire in flight. */
const EXPIRY_SKEW_MS = 30_000;

/**
 * OAuth2 client credentials or refresh token. A token is fetched lazily, kept until shortly before
 * it expires, and fetched again after a 401; concurrent requests share one token request.
 */
export class OAuth2 implements Auth {
  private readonly config: OAuthConfig;
  private readonly timeoutMs: number;
  private token: string | null;
  private expiresAt = Number.POSITIVE_INFINITY;
  private refreshToken: string | undefined;
  private pending: Promise<TokenResponse> | null = null;
  /** The last token response, for connectors that need more than the token (Salesforce's instance URL). */
  last: TokenResponse | null = null;
  /** Token requests made so far; tests assert a 401 causes exactly one. */
  fetches = 0;

  constructor(config: OAuthConfig, timeoutMs: number) {
    this.config = config;
    this.timeoutMs = timeoutMs;
    this.token = config.accessToken ?? null;
    this.refreshToken = config.refreshToken;
  }

  async apply(headers: HeaderMap, _url: URL, signal: AbortSignal): Promise<void> {
    if (this.token === null || Date.now() >= this.expiresAt) await this.fetchToken(signal);
    headers.set('authorization', `Bearer ${this.token}`);
  }

  async refresh(signal: AbortSignal, rejected: string | null): Promise<boolean> {
    // Refused with a token already replaced (another request's 401 refreshed it): just send again.
    if (this.pending === null && this.token !== null && `Bearer ${this.token}` !== rejected) return true;
    await this.fetchToken(signal);
    return true;
  }

  /**
   * Fetches a token now (or joins the request already in flight). The request is shared by every
   * caller on the connection, so it runs on its own timeout; `signal` only stops this caller's wait.
   */
  async fetchToken(signal: AbortSignal): Promise<TokenResponse> {
    this.pending ??= this.request().finally(() => {
      this.pending = null;
    });
    signal.throwIfAborted();
    const pending = this.pending;
    return new Promise<TokenResponse>((resolve, reject) => {
      const abort = () => reject(signal.reason);
      signal.addEventListener('abort', abort, { once: true });
      pending.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
    });
  }

  private async request(): Promise<TokenResponse> {
    const c = this.config;
    const form = new URLSearchParams({ grant_type: c.grant });
    if (c.grant === 'refresh_token') {
      if (!this.refreshToken)
        throw new HttpError('HTTP_AUTH', 'oauth2 refresh_token grant needs a refreshToken');
      form.set('refresh_token', this.refreshToken);
    }
    if (c.scope) form.set('scope', c.scope);
    const headers = new Headers({
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    });
    if (c.clientAuth === 'basic') {
      headers.set(
        'authorization',
        `Basic ${Buffer.from(`${c.clientId}:${c.clientSecret ?? ''}`).toString('base64')}`,
      );
    } else {
      form.set('client_id', c.clientId);
      if (c.clientSecret) form.set('client_secret', c.clientSecret);
    }
    this.fetches += 1;
    let res: Response;
    try {
      res = await fetch(c.tokenUrl, {
        method: 'POST',
        headers,
        body: form,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new HttpError(
        'HTTP_NETWORK',
        `oauth2 token request to ${c.tokenUrl} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const text = await res.text();
    const body = parseJson(text);
    if (!res.ok) {
      const code = res.status === 400 || res.status === 401 ? 'HTTP_AUTH' : codeForStatus(res.status);
      const why = messageOf(body) ?? res.statusText;
      throw new HttpError(code, `oauth2 token request failed (${res.status}): ${why}`, {
        status: res.status,
        body,
      });
    }
    const token = body as TokenResponse | null;
    if (!token || typeof token.access_token !== 'string') {
      throw new HttpError('HTTP_BAD_RESPONSE', 'oauth2 token response has no access_token', { body });
    }
    this.token = token.access_token;
    // Salesforce sends no expires_in: such a token is kept until the API answers 401.
    const lifeMs = typeof token.expires_in === 'number' ? token.expires_in * 1000 : Number.POSITIVE_INFINITY;
    this.expiresAt = Date.now() + lifeMs - Math.min(EXPIRY_SKEW_MS, lifeMs / 10);
    if (token.refresh_token) this.refreshToken = token.refresh_token;
    this.last = token;
    return token;
  }
}

/** A response body: JSON, its numbers exact (an id beyond 2^53 stays itself); text when not JSON. */
export function parseJson(text: string): unknown {
  if (!text) return null;
  try {
    return parseExactJson(text);
  } catch {
    // Not JSON (an HTML error page, say): the text itself, for the error message.
    return text;
  }
}
