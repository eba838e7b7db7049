import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalRuntime } from '../../src/runtime/local/runtime.ts';
import { Workspace } from '../../src/runtime/workspace.ts';
import { createApp } from '../../src/server/app.ts';
import { sign } from '../../src/server/auth.ts';
import { digest, execSql, seedContacts } from '../support/contacts.ts';
import { listen } from '../support/server.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';

const SECRET_OLD = 'old-secret-being-rotated-out';
const SECRET_NEW = 'new-secret';

async function setUp() {
  const dir = tempDir('serve');
  seedContacts(join(dir, 'a.db'), 500);
  const ws = await Workspace.fromConfig(
    {
      connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' } },
      syncs: {
        contacts: {
          source: { connection: 'a', table: 'contacts' },
          target: { connection: 'b', table: 'contacts' },
          key: 'id',
          cursor: 'updated_at',
          webhook: { secrets: [SECRET_NEW, SECRET_OLD], tokens: ['hook-token'] },
          map: async (
            r: Record<string, unknown>,
            ctx: { payload: unknown; data: { set(k: string, v: unknown): Promise<void> } },
          ) => {
            if (ctx.payload !== null) await ctx.data.set('last-payload', ctx.payload);
            return r;
          },
        },
      },
      server: { apiTokens: ['api-token'] },
      runtime: { poll: '20ms' },
    },
    dir,
  );
  const runtime = new LocalRuntime(ws);
  const url = await listen(createApp(ws, runtime));
  const requests = async () => ws.store.queue!.list({ sync: 'contacts' });
  const stop = async () => {
    await runtime.stop();
    await ws.close();
  };
  return { dir, ws, runtime, url, requests, stop };
}

function signed(body: string, secret: string, at = Math.floor(Date.now() / 1000)) {
  const timestamp = String(at);
  return {
    method: 'POST',
    body,
    headers: {
      'content-type': 'application/json',
      'x-sluice-timestamp': timestamp,
      'x-sluice-signature': `v1=${sign(secret, timestamp, body)}`,
    },
  };
}

describe('webhooks', () => {
  it('refuses a wrong signature, a stale timestamp, a replay and a missing or wrong token with 401, starting nothing', async () => {
    const t = await setUp();
    try {
      const body = JSON.stringify({ contact: 1 });
      const hook = `${t.url}/hooks/contacts`;
      const bad = await fetch(hook, signed(body, 'not-the-secret'));
      expect(bad.status).toBe(401);
      expect(((await bad.json()) as { error: string }).error).toMatch(/signature does not match/);
      const stale = await fetch(hook, signed(body, SECRET_NEW, Math.floor(Date.now() / 1000) - 301));
      expect(stale.status).toBe(401);
      expect(((await stale.json()) as { error: string }).error).toMatch(/outside the 5-minute window/);
      const tampered = signed(body, SECRET_NEW);
      expect((await fetch(hook, { ...tampered, body: JSON.stringify({ contact: 2 }) })).status).toBe(401);
      expect((await fetch(hook, { method: 'POST', body })).status).toBe(401);
      expect(
        (await fetch(hook, { method: 'POST', body, headers: { authorization: 'Bearer wrong' } })).status,
      ).toBe(401);
      expect(await t.requests()).toEqual([]);

      const valid = signed(body, SECRET_NEW);
      expect((await fetch(hook, valid)).status).toBe(202);
      const replay = await fetch(hook, valid);
      expect(replay.status).toBe(401);
      expect(((await replay.json()) as { error: string }).error).toMatch(/replay/);
      expect(await t.requests()).toHaveLength(1);
    } finally {
      await t.stop();
    }
  });

  it('starts a run for a valid signature (either secret during a rotation) or token, and returns its id', async () => {
    const t = await setUp();
    try {
      await t.runtime.start();
      // Ended, not only past its backfill: the same run goes on into incremental, and a change made
      // before it ends would be read by it rather than by the webhook's run.
      await until(
        'the first backfill to end',
        async () =>
          (await t.ws.store.getCheckpoint('contacts'))?.phase === 'incremental' &&
          (await t.ws.store.listRuns({ sync: 'contacts', limit: 1 }))[0]?.status === 'succeeded',
      );
      execSql(
        join(t.dir, 'a.db'),
        "UPDATE contacts SET company = 'Hooked', updated_at = '2030-01-01T00:00:00Z' WHERE id = 42",
      );
      const body = JSON.stringify({ contact: 42, event: 'contact.updated' });
      const res = await fetch(`${t.url}/hooks/contacts`, signed(body, SECRET_OLD));
      expect(res.status).toBe(202);
      const { requestId, lane } = (await res.json()) as { requestId: number; lane: string };
      expect(lane).toBe('webhook:contacts');
      const done = await until('the webhook run', async () => {
        const r = await t.ws.store.queue!.get(requestId);
        return r?.status === 'done' ? r : null;
      });
      const run = await t.ws.store.getRun(done!.runId!);
      expect(run).toMatchObject({ trigger: 'webhook', status: 'succeeded' });
      expect(await t.ws.store.data.get('last-payload')).toEqual({ contact: 42, event: 'contact.updated' });

      const byToken = await fetch(`${t.url}/hooks/contacts`, {
        method: 'POST',
        body: '{}',
        headers: { authorization: 'Bearer hook-token' },
      });
      expect(byToken.status).toBe(202);
      expect((await fetch(`${t.url}/hooks/nope`, signed(body, SECRET_NEW))).status).toBe(404);
      expect(digest(join(t.dir, 'b.db'))).toEqual(digest(join(t.dir, 'a.db')));
    } finally {
      await t.stop();
    }
  });
});

describe('REST API, health and metrics', () => {
  it('answers only with the API token, and triggers runs, reads history, the data store and dead letters', async () => {
    const t = await setUp();
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${t.url}/api${path}`, {
        ...init,
        headers: { authorization: 'Bearer api-token', ...init.headers },
      });
    try {
      expect((await fetch(`${t.url}/api/syncs`)).status).toBe(401);
      expect((await fetch(`${t.url}/api/syncs`, { headers: { authorization: 'Bearer nope' } })).status).toBe(
        401,
      );
      expect(await (await fetch(`${t.url}/healthz`)).json()).toEqual({ ok: true });

      const syncs = await (await api('/syncs')).json();
      expect(syncs).toEqual([
        expect.objectContaining({ sync: 'contacts', phase: 'new', rerun: 'triggered', webhook: true }),
      ]);
      expect((await api('/syncs/nope')).status).toBe(404);

      const started = await api('/syncs/contacts/runs', {
        method: 'POST',
        body: JSON.stringify({ payload: { why: 'test' } }),
      });
      expect(started.status).toBe(202);
      const { requestId } = (await started.json()) as { requestId: number };
      await t.runtime.start();
      const request = await until('the API run', async () => {
        const r = (await (await api(`/requests/${requestId}`)).json()) as { status: string; runId: number };
        return r.status === 'done' ? r : null;
      });
      const runs = (await (await api('/runs?sync=contacts')).json()) as { id: number }[];
      expect(runs.find((r) => r.id === request!.runId)).toMatchObject({
        trigger: 'api',
        status: 'succeeded',
      });
      const detail = await (await api('/syncs/contacts')).json();
      expect(detail).toMatchObject({ sync: 'contacts', phase: 'incremental', progress: 1 });

      expect((await api('/store/owner', { method: 'PUT', body: JSON.stringify({ id: 7 }) })).status).toBe(
        200,
      );
      expect(await (await api('/store/owner')).json()).toEqual({ key: 'owner', value: { id: 7 } });
      expect((await api('/store/owner', { method: 'DELETE' })).status).toBe(204);
      expect((await api('/store/owner')).status).toBe(404);
      expect(await (await api('/dead-letters?sync=contacts')).json()).toEqual([]);
      expect((await api('/runs?limit=-1')).status).toBe(400);

      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      // 500 in the backfill; the same run's incremental phase goes on strictly after the high-water mark.
      expect(metrics).toMatch(/sluice_records_written_total\{sync="contacts"\} 500/);
      expect(metrics).toMatch(/sluice_records_unchanged_total\{sync="contacts"\} 0/);
      expect(metrics).toMatch(/sluice_dead_letters_open\{sync="contacts"\} 0/);
      expect(metrics).toMatch(/sluice_backfill_progress_ratio\{sync="contacts"\} 1/);
      expect(metrics).toMatch(/sluice_lane_wait_seconds_count\{lane="sync:contacts"\} 1/);
      expect(metrics).toMatch(/sluice_run_duration_seconds_count\{sync="contacts",status="succeeded"\} 1/);
    } finally {
      await t.stop();
    }
  });
});
