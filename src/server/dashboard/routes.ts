import { type Context, Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { z } from 'zod';
import { SluiceError } from '../../core/errors.ts';
import { parseJson, stringifyJson } from '../../core/json.ts';
import type { Json } from '../../core/types.ts';
import type { Runtime } from '../../runtime/port.ts';
import type { Workspace } from '../../runtime/workspace.ts';
import { fail, json, readText } from '../body.ts';
import { LiveFeed, type LiveOptions } from './live.ts';
import { appPage, asset, isAsset, noTokenPage, PAGE_HEADERS, signInPage } from './pages.ts';
import { retryLetters } from './retry.ts';
import { requireSession, sameOrigin, sessionCookie, signedIn, tokenValid } from './session.ts';
import { rates } from './views.ts';

const MAX_BODY_BYTES = 16 * 1024 * 1024;
const SIGN_IN_BYTES = 16 * 1024;
const limitParam = z.coerce.number().int().positive().max(1_000).default(100);
const idParam = z.coerce.number().int().positive();
const statusParam = z.enum(['running', 'succeeded', 'failed', 'timed_out', 'abandoned']).optional();

/**
 * The dashboard: the page at `/`, its files under `/dashboard/`, and what its script reads and
 * changes under `/ui/` — behind the API tokens, through a session cookie set by signing in with one.
 * The REST API under `/api` is untouched: it still wants `Authorization: Bearer`, never the cookie.
 */
export function mountDashboard(
  app: Hono,
  ws: Workspace,
  runtime: Runtime,
  options: LiveOptions = {},
): LiveFeed {
  const tokens = ws.config.config.server.apiTokens;
  const feed = new LiveFeed(ws, runtime, options);
  feeds.set(app, feed);
  const html = (c: Context, body: string, status: 200 | 401 = 200) =>
    c.body(body, status, { ...PAGE_HEADERS, 'content-type': 'text/html; charset=UTF-8' });

  app.get('/', async (c) => {
    if (tokens.length === 0) return html(c, noTokenPage());
    return html(c, signedIn(c, tokens) ? appPage(await feed.text()) : signInPage());
  });

  app.get('/dashboard/:file', (c) => {
    const name = c.req.param('file');
    if (!isAsset(name)) return fail(c, 404, 'not found', 'NOT_FOUND');
    const file = asset(name);
    const headers = {
      'content-type': file.type,
      etag: file.etag,
      'x-content-type-options': 'nosniff',
      // The page names each file with its hash, so a cached copy is never stale.
      'cache-control': c.req.query('v') ? 'public, max-age=31536000, immutable' : 'no-cache',
    };
    if (c.req.header('if-none-match') === file.etag) return c.body(null, 304, headers);
    return c.body(file.body, 200, headers);
  });

  const ui = new Hono();

  // Signing in and out: from the page's own form or script only (the cookie is not there yet to
  // vouch for the request, so the origin must).
  ui.post('/session', async (c) => {
    const form = (c.req.header('content-type') ?? '').startsWith('application/x-www-form-urlencoded');
    const answer = (status: 200 | 401 | 403, error: string | null) => {
      if (form && status === 200) return c.body(null, 303, { location: '/' });
      if (form) return html(c, signInPage(error), status === 403 ? 401 : status);
      return status === 200
        ? json(c, { ok: true })
        : fail(c, status, error!, status === 403 ? 'CSRF' : 'UNAUTHORIZED');
    };
    if (!sameOrigin(c)) return answer(403, 'sign in from the dashboard page itself');
    if (tokens.length === 0) return answer(401, 'no API token is configured (server.apiTokens)');
    const text = await readText(c, SIGN_IN_BYTES);
    const token = text === null ? undefined : tokenOf(text, form);
    if (!tokenValid(token, tokens)) return answer(401, 'that token is not one of server.apiTokens');
    c.header('set-cookie', sessionCookie(c, token!));
    return answer(200, null);
  });
  ui.post('/session/end', (c) => {
    if (!sameOrigin(c)) return fail(c, 403, 'forbidden', 'CSRF');
    c.header('set-cookie', sessionCookie(c, null));
    return c.body(null, 303, { location: '/' });
  });

  ui.use('*', requireSession(tokens));
  ui.onError((err, c) => {
    const code = (err as { code?: string }).code;
    if (err instanceof z.ZodError) return fail(c, 400, z.prettifyError(err), 'BAD_REQUEST');
    if (code === 'SYNC_UNKNOWN') return fail(c, 404, err.message, code);
    if (code === 'BAD_REQUEST') return fail(c, 400, err.message, code);
    if (code === 'SYNC_BUSY' || code === 'LANE_BUSY' || code === 'SYNC_RUNNING')
      return fail(c, 409, err.message, code);
    return fail(c, 500, err.message, code ?? 'INTERNAL');
  });

  ui.get('/snapshot', async (c) => json(c, await feed.read()));

  ui.get('/events', (c) => {
    const res = streamSSE(c, async (stream) => {
      let closed = false;
      let pending = Promise.resolve();
      // The page's first snapshot came with it (its `now`): not sent again.
      const since = Number(c.req.query('since'));
      let end = () => {};
      const ended = new Promise<void>((resolve) => {
        end = resolve;
        stream.onAbort(resolve);
      });
      const stop = feed.listen((event, data) => {
        if (event === 'end') return end();
        if (closed) return;
        // One write at a time, in order; a page that went away ends its stream.
        pending = pending
          .then(() => stream.writeSSE({ event, data }))
          .catch(() => {
            closed = true;
          });
      }, since);
      // A comment now and then keeps proxies from closing an idle stream.
      const keepAlive = setInterval(() => {
        pending = pending
          .then(() => stream.write(': keep-alive\n\n'))
          .then(
            () => undefined,
            () => {
              closed = true;
            },
          );
      }, 15_000);
      await ended;
      closed = true;
      clearInterval(keepAlive);
      stop();
    });
    // The stream's connection is not kept for another request: once the stream ends (the server
    // closing, say), the connection goes too, rather than idling until its keep-alive runs out.
    res.headers.set('connection', 'close');
    return res;
  });

  ui.get('/runs', async (c) => {
    const sync = c.req.query('sync') || undefined;
    if (sync) ws.sync(sync);
    const status = statusParam.parse(c.req.query('status') || undefined);
    const limit = limitParam.parse(c.req.query('limit') || undefined);
    // The store filters by sync; a status filter looks further back so the page still fills.
    const runs = await ws.store.listRuns({ ...(sync ? { sync } : {}), limit: status ? limit * 20 : limit });
    return json(c, (status ? runs.filter((r) => r.status === status) : runs).slice(0, limit));
  });

  ui.get('/rates', async (c) => json(c, await rates(ws, feed.state)));

  ui.post('/syncs/:name/runs', async (c) => {
    const name = c.req.param('name');
    ws.sync(name);
    const request = await runtime.request(name, { trigger: 'api' });
    return json(c, { requestId: request.id, sync: name, lane: request.lane, status: request.status }, 202);
  });

  ui.post('/syncs/:name/reset', async (c) => {
    const name = c.req.param('name');
    ws.sync(name);
    const last = (await ws.store.listRuns({ sync: name, limit: 1 }))[0];
    if (last?.status === 'running')
      throw new SluiceError('SYNC_RUNNING', `${name} is running; reset it once its run has ended`);
    await ws.store.resetSync(name);
    return json(c, { sync: name, reset: true });
  });

  ui.get('/dead-letters', async (c) => {
    const sync = c.req.query('sync') || undefined;
    if (sync) ws.sync(sync);
    const limit = limitParam.parse(c.req.query('limit') || undefined);
    const letters = await ws.store.listDeadLetters({
      ...(sync ? { sync } : {}),
      limit,
      includeClosed: c.req.query('all') === 'true',
    });
    const text = (value: Json | null) => (value === null ? null : stringifyJson(value));
    return json(
      c,
      letters.map((l) => ({
        ...l,
        keyText: text(l.key),
        recordText: l.record === null ? null : stringifyJson(l.record, { space: 2 }),
        cursorFromText: text(l.cursorFrom),
        cursorToText: text(l.cursorTo),
      })),
    );
  });

  ui.post('/syncs/:name/dead-letters/retry', async (c) => {
    const name = c.req.param('name');
    ws.sync(name);
    return json(c, await retryLetters(ws, name));
  });

  ui.post('/dead-letters/:id/retry', async (c) => {
    const id = idParam.parse(c.req.param('id'));
    const letter = (await ws.store.listDeadLetters({ limit: 100_000 })).find((l) => l.id === id);
    if (!letter) return fail(c, 404, `no open dead letter ${id}`, 'NOT_FOUND');
    const outcome = await retryLetters(ws, letter.sync, id);
    const after = (await ws.store.listDeadLetters({ sync: letter.sync, limit: 100_000 })).some(
      (l) => l.id === id,
    );
    return json(c, { ...outcome, closed: !after });
  });

  // Values go to the page as JSON text made here, so an integer beyond 2^53 shows as it is kept.
  ui.get('/store', async (c) => {
    const entries = await ws.store.data.list(c.req.query('prefix') || undefined);
    return json(
      c,
      entries.map((e) => ({
        key: e.key,
        text: stringifyJson(e.value, { space: 2 }),
        updatedAt: e.updatedAt,
      })),
    );
  });
  ui.put('/store/:key', async (c) => {
    const text = await readText(c, MAX_BODY_BYTES);
    if (text === null) return fail(c, 413, `body over ${MAX_BODY_BYTES} bytes (16 MiB)`, 'BODY_TOO_LARGE');
    let value: Json;
    try {
      value = parseJson(text) as Json;
    } catch (err) {
      return fail(c, 400, `not JSON: ${(err as Error).message}`, 'BAD_REQUEST');
    }
    await ws.store.data.set(c.req.param('key'), value);
    return json(c, { key: c.req.param('key'), value });
  });
  ui.delete('/store/:key', async (c) => {
    const deleted = await ws.store.data.del(c.req.param('key'));
    return deleted ? c.body(null, 204) : fail(c, 404, 'no such key', 'NOT_FOUND');
  });

  app.route('/ui', ui);
  return feed;
}

/** The live feed of each app the dashboard is mounted on, so closing its server can end the streams. */
const feeds = new WeakMap<Hono, LiveFeed>();

/**
 * Ends the dashboard's live streams on `app` (its server is closing): a page's open stream would
 * otherwise hold the server's close up until the page goes away.
 */
export function endLiveStreams(app: Hono): void {
  feeds.get(app)?.close();
}

/** The token from a sign-in body: a form's `token` field, or JSON `{ "token": … }`. */
function tokenOf(text: string, form: boolean): string | undefined {
  if (form) return new URLSearchParams(text).get('token') ?? undefined;
  try {
    const body = JSON.parse(text) as { token?: unknown };
    return typeof body?.token === 'string' ? body.token : undefined;
  } catch {
    // Not JSON: no token, answered as a wrong one.
    return undefined;
  }
}
