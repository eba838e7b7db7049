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

/** Records what the server asks of it: the HTTP side alone, against the PostgreSQL store. */
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

describe('signed webhooks on the PostgreSQL store', () => {
  it('accepts a signed request once and refuses its replay, on any server sharing the store; bearer tokens pass', async () => {
    const dir = tempDir('replay');
    seedContacts(join(dir, 'a.db'), 10);
    const db = await freshDatabase('replay', { store: true });
    const config = {
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
    };
    // Two servers on one store, as two `sluice serve` processes behind a load balancer would be.
    const [one, two] = [await Workspace.fromConfig(config, dir), await Workspace.fromConfig(config, dir)];
    try {
      const runtime = new RecordingRuntime();
      const hooks = [
        `${await listen(createApp(one, runtime))}/hooks/contacts`,
        `${await listen(createApp(two, runtime))}/hooks/contacts`,
      ];

      const request = signed('{"contact":1}');
      expect((await fetch(hooks[0]!, request)).status).toBe(202);
      // The same signed request again, to either server: a replay, refused, starting nothing.
      for (const hook of hooks) {
        const res = await fetch(hook, request);
        const answer = (await res.json()) as { error: string; code: string };
        expect(res.status).toBe(401);
        expect(answer.error).toMatch(/already received \(replay\)/);
      }
      expect(runtime.requests).toEqual([{ sync: 'contacts', trigger: 'webhook', payload: { contact: 1 } }]);

      const byToken = await fetch(hooks[1]!, {
        method: 'POST',
        body: '{"contact":2}',
        headers: { authorization: 'Bearer hook-token' },
      });
      expect(byToken.status).toBe(202);
      expect(runtime.requests).toHaveLength(2);
    } finally {
      await one.close();
      await two.close();
    }
  }, 60_000);
});
