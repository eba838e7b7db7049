import { type Context, Hono } from 'hono';
import { z } from 'zod';
import { SluiceError } from '../core/errors.ts';
import { parseJson } from '../core/json.ts';
import type { Json } from '../core/types.ts';
import type { Runtime } from '../runtime/port.ts';
import type { Workspace } from '../runtime/workspace.ts';
import { tokenAccepted } from './auth.ts';
import { fail, json, readText } from './body.ts';

const limitParam = z.coerce.number().int().positive().max(10_000).default(50);
const requestId = z.coerce.number().int().positive();
// The payload is whatever JSON was sent: parseJson gives only JSON values (a bigint for an integer
// beyond 2^53, which z.json() would refuse).
const runBody = z.strictObject({ payload: z.unknown().optional() }).default({});

/** The largest request body the API reads (a data store value, a run's payload). */
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** A request the API cannot act on: answered 400 with the reason. */
class BadRequestError extends SluiceError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BAD_REQUEST', message, options);
    this.name = 'BadRequestError';
  }
}

/**
 * The request's JSON body (integers beyond 2^53 exact), `undefined` when it is empty, or null when
 * it is over the limit. Text that is not JSON is a {@link BadRequestError} naming the parse error.
 */
async function readJson(c: Context): Promise<{ value: unknown } | null> {
  const text = await readText(c, MAX_BODY_BYTES);
  if (text === null) return null;
  if (text.trim() === '') return { value: undefined };
  try {
    return { value: parseJson(text) };
  } catch (err) {
    throw new BadRequestError(`malformed JSON body: ${(err as Error).message}`, { cause: err });
  }
}

const tooLarge = (c: Context) => fail(c, 413, `body over ${MAX_BODY_BYTES} bytes (16 MiB)`, 'BODY_TOO_LARGE');

/** The REST API under `/api`, behind the configured API tokens. */
export function apiRoutes(ws: Workspace, runtime: Runtime): Hono {
  const api = new Hono();
  const tokens = ws.config.config.server.apiTokens;

  api.use('*', async (c, next) => {
    // Refused before the body is read; the connection is closed rather than the body drained.
    if (tokens.length === 0)
      return fail(c, 401, 'unauthorized: no API token is configured (server.apiTokens)', 'UNAUTHORIZED');
    if (!tokenAccepted(c.req.header('authorization'), tokens))
      return fail(c, 401, 'unauthorized: bearer token required', 'UNAUTHORIZED');
    await next();
  });

  api.onError((err, c) => {
    const code = (err as { code?: string }).code;
    if (code === 'SYNC_UNKNOWN') return json(c, { error: err.message, code }, 404);
    if (err instanceof BadRequestError) return json(c, { error: err.message, code: err.code }, 400);
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
    const read = await readJson(c);
    if (read === null) return tooLarge(c);
    const body = runBody.parse(read.value ?? {});
    const request = await runtime.request(name, { trigger: 'api', payload: (body.payload ?? null) as Json });
    return json(c, { requestId: request.id, sync: name, lane: request.lane, status: request.status }, 202);
  });

  api.get('/requests/:id', async (c) => {
    const request = await ws.store.queue?.get(requestId.parse(c.req.param('id')));
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
    const read = await readJson(c);
    if (read === null) return tooLarge(c);
    if (read.value === undefined) throw new BadRequestError('the body must be the JSON value to store');
    const value = read.value as Json;
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
