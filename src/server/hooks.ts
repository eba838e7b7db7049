import type { Hono } from 'hono';
import type { Json } from '../core/types.ts';
import type { Runtime } from '../runtime/port.ts';
import type { Workspace } from '../runtime/workspace.ts';
import {
  checkSignature,
  REPLAY_WINDOW_MS,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  tokenAccepted,
} from './auth.ts';

const MAX_BODY_BYTES = 1024 * 1024;

/**
 * `POST /hooks/<sync>`: a signed (HMAC-SHA256 over `<timestamp>.<body>`) or bearer-authenticated
 * request queues a webhook run with the body as its payload. Anything else is refused with 401
 * and starts nothing; a signature already used inside the replay window is refused too.
 */
export function mountHooks(app: Hono, ws: Workspace, runtime: Runtime, now: () => number = Date.now): void {
  app.post('/hooks/:sync', async (c) => {
    const name = c.req.param('sync');
    const sync = ws.config.syncs.get(name);
    if (!sync?.webhook) return c.json({ error: `no webhook for sync "${name}"` }, 404);
    const length = Number(c.req.header('content-length') ?? 0);
    if (length > MAX_BODY_BYTES) return c.json({ error: 'body over 1 MiB' }, 413);
    const body = await c.req.text();
    if (Buffer.byteLength(body) > MAX_BODY_BYTES) return c.json({ error: 'body over 1 MiB' }, 413);

    const signatureHeader = c.req.header(SIGNATURE_HEADER);
    const authorization = c.req.header('authorization');
    let accepted = false;
    if (signatureHeader !== undefined && sync.webhook.secrets) {
      const check = checkSignature(
        { signature: signatureHeader, timestamp: c.req.header(TIMESTAMP_HEADER) },
        body,
        sync.webhook.secrets,
        now(),
      );
      if (!check.ok) return c.json({ error: `unauthorized: ${check.reason}` }, 401);
      const fresh = ws.store.claimNonce
        ? await ws.store.claimNonce(`${name}:${check.signature}`, now() + REPLAY_WINDOW_MS)
        : true;
      if (!fresh) return c.json({ error: 'unauthorized: this request was already received (replay)' }, 401);
      accepted = true;
    } else if (authorization !== undefined && sync.webhook.tokens) {
      accepted = tokenAccepted(authorization, sync.webhook.tokens);
    }
    if (!accepted)
      return c.json({ error: 'unauthorized: a valid signature or bearer token is required' }, 401);

    const request = await runtime.request(name, { trigger: 'webhook', payload: parsePayload(body) });
    return c.json({ requestId: request.id, sync: name, lane: request.lane, status: request.status }, 202);
  });
}

function parsePayload(body: string): Json {
  if (body === '') return null;
  try {
    return JSON.parse(body) as Json;
  } catch {
    return body;
  }
}
