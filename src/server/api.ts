import { type Context, Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from 'zod';
import { parseJson, stringifyJson } from '../core/json.ts';
import type { Json } from '../core/types.ts';
import type { Runtime } from '../runtime/port.ts';
import type { Workspace } from '../runtime/workspace.ts';
import { tokenAccepted } from './auth.ts';

const limitParam = z.coerce.number().int().positive().max(10_000).default(50);
const runBody = z.strictObject({ payload: z.json().optional() }).default({});

/** A JSON answer that keeps integers beyond 2^53 exact (a key, a cursor). */
function json(c: Context, value: unknown, status: ContentfulStatusCode = 200): Response {
  return c.body(stringifyJson(value), status, { 'content-type': 'application/json; charset=UTF-8' });
}

/** The REST API under `/api`, behind the configured API tokens. */
export function apiRoutes(ws: Workspace, runtime: Runtime): Hono {
  const api = new Hono();
  const tokens = ws.config.config.server.apiTokens;

  api.use('*', async (c, next) => {
    if (tokens.length === 0)
      return json(c, { error: 'unauthorized: no API token is configured (server.apiTokens)' }, 401);
    if (!tokenAccepted(c.req.header('authorization'), tokens))
      return json(c, { error: 'unauthorized: bearer token required' }, 401);
    await next();
  });

  api.onError((err, c) => {
    const code = (err as { code?: string }).code;
    if (code === 'SYNC_UNKNOWN') return json(c, { error: err.message, code }, 404);
    if (err instanceof z.ZodError) return json(c, { error: z.prettifyError(err), code: 'BAD_REQUEST' }, 400);
    return json(c, { error: err.message, code: code ?? 'INTERNAL' }, 500);
  });

  api.get('/syncs', async (c) => json(c, await syncViews(ws)));

  api.get('/syncs/:name', async (c) => {
    const name = c.req.param('name');
    ws.sync(name);
    const [view] = await syncViews(ws, name);
    const runs = await ws.store.listRuns({ sync: name, limit: 20 });
    const pending = (await ws.store.queue?.pending(name)) ?? [];
    return json(c, { ...view, pending, runs });
  });

  api.post('/syncs/:name/runs', async (c) => {
    const name = c.req.param('name');
    ws.sync(name);
    const text = await c.req.text();
    const body = runBody.parse(text ? parseJson(text) : {});
    const request = await runtime.request(name, { trigger: 'api', payload: (body.payload ?? null) as Json });
    return json(c, { requestId: request.id, sync: name, lane: request.lane, status: request.status }, 202);
  });

  api.get('/requests/:id', async (c) => {
    const request = await ws.store.queue?.get(Number(c.req.param('id')));
    return request ? json(c, request) : json(c, { error: 'no such request' }, 404);
  });

  api.get('/runs', async (c) => {
    const sync = c.req.query('sync');
    if (sync) ws.sync(sync);
    const limit = limitParam.parse(c.req.query('limit'));
    return json(c, await ws.store.listRuns({ ...(sync ? { sync } : {}), limit }));
  });

  api.get('/store', async (c) => json(c, await ws.store.data.list(c.req.query('prefix'))));
  api.get('/store/:key', async (c) => {
    const value = await ws.store.data.get(c.req.param('key'));
    return value === undefined
      ? json(c, { error: 'no such key' }, 404)
      : json(c, { key: c.req.param('key'), value });
  });
  api.put('/store/:key', async (c) => {
    const value = z.json().parse(parseJson(await c.req.text())) as Json;
    await ws.store.data.set(c.req.param('key'), value);
    return json(c, { key: c.req.param('key'), value });
  });
  api.delete('/store/:key', async (c) => {
    const deleted = await ws.store.data.del(c.req.param('key'));
    return deleted ? c.body(null, 204) : json(c, { error: 'no such key' }, 404);
  });

  api.get('/dead-letters', async (c) => {
    const sync = c.req.query('sync');
    if (sync) ws.sync(sync);
    const limit = limitParam.parse(c.req.query('limit'));
    return json(
      c,
      await ws.store.listDeadLetters({
        ...(sync ? { sync } : {}),
        limit,
        includeClosed: c.req.query('all') === 'true',
      }),
    );
  });

  return api;
}

async function syncViews(ws: Workspace, only?: string) {
  const bundles = Object.entries(ws.config.config.bundles);
  return (await ws.status())
    .filter((s) => !only || s.sync === only)
    .map((s) => {
      const sync = ws.sync(s.sync);
      return {
        ...s,
        bundle: bundles.find(([, b]) => b.syncs.includes(s.sync))?.[0] ?? null,
        rerun: sync.rerun.mode,
        webhook: sync.webhook !== null,
      };
    });
}
