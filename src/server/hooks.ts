import type { Context, Hono } from 'hono';
import { parseJson } from '../core/json.ts';
import type { Json } from '../core/types.ts';
import type { Runtime } from '../runtime/port.ts';
import type { Workspace } from '../runtime/workspace.ts';
import {
  checkSignature,
  checkSignatureHeaders,
  REPLAY_WINDOW_MS,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
  tokenAccepted,
} from './auth.ts';
import { declaredOver, fail, json, readBody } from './body.ts';

const MAX_BODY_BYTES = 1024 * 1024;

type Caller =
  | { by: 'token' }
  | { by: 'signature'; claimNonce: (nonce: string, expiresAt: number) => Promise<boolean> };

/**
 * `POST /hooks/<sync>`: a signed (HMAC-SHA256 over `<timestamp>.<body>`) or bearer-authenticated
 * request queues a webhook run with the body as its payload. Anything else is refused with 401
 * and starts nothing; a signature already used inside the replay window is refused too.
 *
 * Who is calling is settled from the headers before a byte of the body is read: a request with
 * neither a valid token nor a fresh signature's headers is refused unread, and a body is read only
 * up to 1 MiB, however long it is or says it is.
 */
export function mountHooks(app: Hono, ws: Workspace, runtime: Runtime, now: () => number = Date.now): void {
  app.post('/hooks/:sync', async (c) => {
    const name = c.req.param('sync');
    const webhook = ws.config.syncs.get(name)?.webhook;
    if (!webhook) return fail(c, 404, `no webhook for sync "${name}"`, 'WEBHOOK_UNKNOWN');

    const caller = identify(c, ws, webhook, now);
    if (caller instanceof Response) return caller;
    const tooLarge = `body over ${MAX_BODY_BYTES} bytes (1 MiB)`;
    if (declaredOver(c, MAX_BODY_BYTES)) return fail(c, 413, tooLarge, 'BODY_TOO_LARGE');
    const body = await readBody(c, MAX_BODY_BYTES);
    if (body === null) return fail(c, 413, tooLarge, 'BODY_TOO_LARGE');

    if (caller.by === 'signature') {
      const check = checkSignature(
        { signature: c.req.header(SIGNATURE_HEADER), timestamp: c.req.header(TIMESTAMP_HEADER) },
        body,
        webhook.secrets ?? [],
        now(),
      );
      if (!check.ok) return fail(c, 401, `unauthorized: ${check.reason}`, 'UNAUTHORIZED');
      const fresh = await caller.claimNonce(`${name}:${check.signature}`, now() + REPLAY_WINDOW_MS);
      if (!fresh)
        return fail(c, 401, 'unauthorized: this request was already received (replay)', 'UNAUTHORIZED');
    }

    const request = await runtime.request(name, { trigger: 'webhook', payload: parsePayload(body) });
    return json(c, { requestId: request.id, sync: name, lane: request.lane, status: request.status }, 202);
  });
}

/**
 * The caller, from the headers alone, or the refusal to send without reading the body. A valid
 * bearer token is enough; otherwise the signature headers must be there with a fresh timestamp, and
 * the store must keep receipts of signatures (`claimNonce`), without which a replay would pass.
 */
function identify(
  c: Context,
  ws: Workspace,
  webhook: { secrets?: readonly string[]; tokens?: readonly string[] },
  now: () => number,
): Caller | Response {
  const tokens = webhook.tokens ?? [];
  const secrets = webhook.secrets ?? [];
  const authorization = c.req.header('authorization');
  if (tokens.length > 0 && authorization !== undefined && tokenAccepted(authorization, tokens))
    return { by: 'token' };
  const signature = c.req.header(SIGNATURE_HEADER);
  if (secrets.length === 0 || signature === undefined)
    return fail(c, 401, 'unauthorized: a valid signature or bearer token is required', 'UNAUTHORIZED');
  const headers = checkSignatureHeaders({ signature, timestamp: c.req.header(TIMESTAMP_HEADER) }, now());
  if (!headers.ok) return fail(c, 401, `unauthorized: ${headers.reason}`, 'UNAUTHORIZED');
  const store = ws.store;
  if (!store.claimNonce)
    return fail(
      c,
      503,
      'signed webhooks are refused: the configured store keeps no receipts of the signatures it has ' +
        'accepted, so a replayed request could not be told apart (a store of your own without ' +
        '`claimNonce`); authenticate with a bearer token (webhook.tokens) until it does',
      'WEBHOOK_REPLAY_UNPROTECTED',
    );
  return { by: 'signature', claimNonce: store.claimNonce.bind(store) };
}

/** The body as `ctx.payload`: JSON (integers beyond 2^53 kept exact), else its text, else null. */
function parsePayload(body: Uint8Array): Json {
  if (body.byteLength === 0) return null;
  const text = new TextDecoder().decode(body);
  try {
    return parseJson(text) as Json;
  } catch {
    // Not JSON: a webhook may send any text (form data, XML), and the sync's map gets it as is.
    return text;
  }
}
