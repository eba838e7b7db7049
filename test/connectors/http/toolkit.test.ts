import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createAuth } from '../../../src/connectors/http/auth.ts';
import { HttpClient } from '../../../src/connectors/http/client.ts';
import { parseRetryAfter } from '../../../src/connectors/http/errors.ts';
import { httpConnector } from '../../../src/connectors/http/index.ts';
import { nextLink } from '../../../src/connectors/http/paging.ts';
import { hubspotConnector } from '../../../src/connectors/hubspot/index.ts';
import { salesforceConnector } from '../../../src/connectors/salesforce/index.ts';

type Seen = { url: string; headers: IncomingMessage['headers'] };
const servers: ReturnType<typeof createServer>[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

/** A scripted server: `reply` answers each request; every request is recorded. */
async function serve(
  reply: (req: IncomingMessage, res: ServerResponse, n: number) => void,
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => reply(req, res, seen.length));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};
const signal = () => AbortSignal.timeout(20_000);

describe('HTTP toolkit', () => {
  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('1', now)).toBe(1000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });

  it('finds rel="next" among several links', () => {
    const header =
      '<https://a/x?page=1>; rel="first", <https://a/x?page=3>; rel="next", <https://a/x?page=9>; rel="last"';
    expect(nextLink(header)).toBe('https://a/x?page=3');
    expect(nextLink('<https://a/x?page=1>; rel="prev"')).toBeNull();
  });

  it('waits until the HTTP date a 429 names before retrying', async () => {
    // An HTTP date has whole seconds: the next second boundary is at most 1 s away.
    const until = Math.ceil((Date.now() + 100) / 1000) * 1000;
    const { url, seen } = await serve((_req, res, n) => {
      if (n === 1) json(res, 429, { message: 'slow down' }, { 'retry-after': new Date(until).toUTCString() });
      else json(res, 200, { ok: true });
    });
    const client = new HttpClient({ baseUrl: url, auth: createAuth({ type: 'none' }), backoffMs: 1 });
    await client.request({ method: 'GET', path: '/x', signal: signal() });
    expect(seen).toHaveLength(2);
    expect(Date.now()).toBeGreaterThanOrEqual(until - 20);
    expect(client.stats.rateLimited).toBe(1);
  });

  it('sends API keys in a header or the query, and basic credentials', async () => {
    const { url, seen } = await serve((_req, res) => json(res, 200, {}));
    await new HttpClient({
      baseUrl: url,
      auth: createAuth({ type: 'apiKey', name: 'api_key', value: 'k1', in: 'query' }),
    }).request({ method: 'GET', path: '/a', signal: signal() });
    await new HttpClient({
      baseUrl: url,
      auth: createAuth({ type: 'apiKey', name: 'X-Api-Key', value: 'k2', in: 'header' }),
    }).request({ method: 'GET', path: '/b', signal: signal() });
    await new HttpClient({
      baseUrl: url,
      auth: createAuth({ type: 'basic', username: 'u', password: 'p' }),
    }).request({ method: 'GET', path: '/c', signal: signal() });
    expect(seen[0]!.url).toBe('/a?api_key=k1');
    expect(seen[1]!.headers['x-api-key']).toBe('k2');
    expect(seen[2]!.headers.authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
  });

  it('refreshes an OAuth token once on 401, then gives up with HTTP_AUTH instead of looping', async () => {
    let tokens = 0;
    const { url } = await serve((req, res) => {
      if (req.url === '/token') json(res, 200, { access_token: `t${++tokens}`, expires_in: 3600 });
      else json(res, 401, { message: 'bad token' });
    });
    const auth = createAuth({
      type: 'oauth2',
      grant: 'client_credentials',
      tokenUrl: `${url}/token`,
      clientId: 'c',
      clientSecret: 's',
      clientAuth: 'basic',
    });
    const client = new HttpClient({ baseUrl: url, auth, backoffMs: 1 });
    await expect(client.request({ method: 'GET', path: '/x', signal: signal() })).rejects.toMatchObject({
      code: 'HTTP_AUTH',
    });
    expect(tokens).toBe(2);
  });

  it('keeps to the rate limit and the concurrency cap', async () => {
    let inFlight = 0;
    let most = 0;
    const { url } = await serve((_req, res) => {
      inFlight++;
      most = Math.max(most, inFlight);
      setTimeout(() => {
        inFlight--;
        json(res, 200, {});
      }, 20);
    });
    const client = new HttpClient({
      baseUrl: url,
      auth: createAuth({ type: 'none' }),
      concurrency: 2,
      rateLimit: { requests: 5, perMs: 500 },
    });
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 10 }, () => client.request({ method: 'GET', path: '/x', signal: signal() })),
    );
    expect(most).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450); // 5 at once, the next 5 over the following 500 ms
  });

  it('sends the same idempotency key when the same write is replayed', async () => {
    const { url, seen } = await serve((_req, res, n) => (n === 1 ? json(res, 503, {}) : json(res, 200, {})));
    const client = new HttpClient({
      baseUrl: url,
      auth: createAuth({ type: 'none' }),
      backoffMs: 1,
      idempotencyHeader: 'Idempotency-Key',
    });
    await client.request({ method: 'POST', path: '/w', body: { a: 1 }, signal: signal() });
    expect(seen).toHaveLength(2);
    expect(seen[0]!.headers['idempotency-key']).toMatch(/^[0-9a-f]{64}$/);
    expect(seen[1]!.headers['idempotency-key']).toBe(seen[0]!.headers['idempotency-key']);
  });

  it('does not retry a 4xx', async () => {
    const { url, seen } = await serve((_req, res) => json(res, 422, { message: 'bad field' }));
    const client = new HttpClient({ baseUrl: url, auth: createAuth({ type: 'none' }), backoffMs: 1 });
    await expect(client.request({ method: 'GET', path: '/x', signal: signal() })).rejects.toMatchObject({
      code: 'HTTP_CLIENT',
      status: 422,
    });
    expect(seen).toHaveLength(1);
  });

  it('refuses unknown or missing connection settings, naming the field', () => {
    const typo = httpConnector.connection.safeParse({ baseUrl: 'http://127.0.0.1:1', retrys: 3 });
    expect(typo.success).toBe(false);
    expect(typo.error?.issues[0]?.message).toMatch(/retrys/);
    const auth = httpConnector.connection.safeParse({
      baseUrl: 'http://127.0.0.1:1',
      auth: { type: 'oauth2', grant: 'client_credentials' },
    });
    expect(auth.error?.issues.map((i) => i.path.join('.'))).toContain('auth.tokenUrl');
    expect(hubspotConnector.connection.safeParse({}).error?.issues[0]?.path).toEqual(['accessToken']);
    expect(salesforceConnector.connection.safeParse({}).error?.issues[0]?.path).toEqual(['clientId']);
  });
});
