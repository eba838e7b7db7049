import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunRequest } from '../../src/core/ports.ts';
import type { Json, RunTrigger } from '../../src/core/types.ts';
import type { Runtime, RuntimeEvents } from '../../src/runtime/port.ts';
import { Workspace } from '../../src/runtime/workspace.ts';
import { createApp } from '../../src/server/app.ts';
import { sign } from '../../src/server/auth.ts';
import { seedContacts } from '../support/contacts.ts';
import { freshDatabase } from '../support/pg.ts';
import { listen } from '../support/server.ts';
import { tempDir } from '../support/tmp.ts';

/**
 * Records what the server asks of it. `sluice serve` cannot run on the PostgreSQL store yet (the
 * local runtime keeps its queue in SQLite), so the HTTP side is served here against that store.
 */
class RecordingRuntime extends EventEmitter<RuntimeEvents> implements Runtime {
  readonly requests: { sync: string; trigger: RunTrigger | undefined; payload: Json | null | undefined }[] =
    [];
  async start(): Promise<void> {}
  async stop(): Promise<boolean> {
    return true;
  }
  async request(
    sync: string,
    options: { trigger?: RunTrigger; payload?: Json | null } = {},
  ): Promise<RunRequest> {
    this.requests.push({ sync, trigger: options.trigger, payload: options.payload });
    const now = Date.now();
    return {
      id: this.requests.length,
      sync,
      lane: `webhook:${sync}`,
      trigger: options.trigger ?? 'api',
      payload: options.payload ?? null,
      setAsideReason: null,
      attempt: 1,
      status: 'queued',
      notBefore: now,
      createdAt: now,
      startedAt: null,
      finishedAt: null,
      holder: null,
      owner: null,
      runId: null,
      errorCode: null,
      errorMessage: null,
    };
  }
}

const SECRET = 'hook-secret';

function signed(body: string) {
  const timestamp = String(Math.floor(Date.now() / 1000));
  return {
    method: 'POST',
    body,
    headers: { 'x-sluice-timestamp': timestamp, 'x-sluice-signature': `v1=${sign(SECRET, timestamp, body)}` },
  };
}

describe('webhooks on a store that keeps no signature receipts (PostgreSQL)', () => {
  it('refuses signed requests with 503 saying why, and still accepts bearer tokens', async () => {
    const dir = tempDir('replay');
    seedContacts(join(dir, 'a.db'), 10);
    const db = await freshDatabase('replay', { store: true });
    const ws = await Workspace.fromConfig(
      {
        store: db.url,
        connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' } },
        syncs: {
          contacts: {
            source: { connection: 'a', table: 'contacts' },
            target: { connection: 'b', table: 'contacts' },
            key: 'id',
            cursor: 'updated_at',
            webhook: { secrets: [SECRET], tokens: ['hook-token'] },
          },
        },
      },
      dir,
    );
    try {
      expect(ws.store.claimNonce, 'this store now keeps receipts: test the replay refusal instead').toBe(
        undefined,
      );
      const runtime = new RecordingRuntime();
      const hook = `${await listen(createApp(ws, runtime))}/hooks/contacts`;

      // A valid signature, sent twice: without receipts the second could not be told from the first.
      const request = signed('{"contact":1}');
      for (const attempt of [1, 2]) {
        const res = await fetch(hook, request);
        const answer = (await res.json()) as { error: string; code: string };
        expect(res.status, `attempt ${attempt}: ${answer.error}`).toBe(503);
        expect(answer.code).toBe('WEBHOOK_REPLAY_UNPROTECTED');
        expect(answer.error).toMatch(/keeps no receipts.*replayed request.*bearer token/);
      }
      expect(runtime.requests).toEqual([]);

      const byToken = await fetch(hook, {
        method: 'POST',
        body: '{"contact":2}',
        headers: { authorization: 'Bearer hook-token' },
      });
      expect(byToken.status).toBe(202);
      expect(runtime.requests).toEqual([{ sync: 'contacts', trigger: 'webhook', payload: { contact: 2 } }]);
    } finally {
      await ws.close();
    }
  }, 60_000);
});
