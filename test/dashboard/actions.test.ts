import { describe, expect, it } from 'vitest';
import { until } from '../support/until.ts';
import { servedWorkspace, TOKEN } from './setup.ts';

describe("the dashboard's actions", () => {
  it('filters runs by status, retries all of a sync’s dead letters, and resets a sync only when it is not running', async () => {
    const t = await servedWorkspace({ rows: 1_000 });
    try {
      const signIn = await fetch(`${t.url}/ui/session`, {
        method: 'POST',
        headers: { origin: t.url, 'content-type': 'application/json' },
        body: JSON.stringify({ token: TOKEN }),
      });
      const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
      const get = async <T>(path: string) => {
        const res = await fetch(`${t.url}${path}`, { headers: { cookie } });
        return { status: res.status, body: (await res.json()) as T };
      };
      const post = async <T>(path: string) => {
        const res = await fetch(`${t.url}${path}`, {
          method: 'POST',
          headers: { cookie, 'x-sluice-dashboard': '1' },
        });
        return { status: res.status, body: (await res.json()) as T };
      };

      await t.runtime.start();
      await until(
        'big and tick caught up',
        async () =>
          (await t.ws.store.getCheckpoint('big'))?.phase === 'incremental' &&
          (await t.ws.store.getCheckpoint('tick'))?.phase === 'incremental',
        60_000,
      );
      await t.runtime.stop();

      const succeeded = await get<{ status: string; sync: string }[]>('/ui/runs?status=succeeded&sync=big');
      expect(succeeded.body.length).toBeGreaterThan(0);
      expect(succeeded.body.every((r) => r.status === 'succeeded' && r.sync === 'big')).toBe(true);
      expect((await get<unknown[]>('/ui/runs?status=failed')).body).toEqual([]);
      expect((await get('/ui/runs?status=bogus')).status).toBe(400);
      expect((await get('/ui/runs?sync=nope')).status).toBe(404);

      // Both refused records are fixed at the source's side (the map takes them now): retry all.
      expect(await t.ws.store.countOpenDeadLetters('big')).toBe(2);
      t.broken.clear();
      const retried = await post<{ retried: number; written: number }>('/ui/syncs/big/dead-letters/retry');
      expect(retried).toMatchObject({ status: 200, body: { retried: 2, written: 2 } });
      expect(await t.ws.store.countOpenDeadLetters('big')).toBe(0);
      expect((await post('/ui/dead-letters/999999/retry')).status).toBe(404);

      // A sync with a run going is not reset under it.
      await t.ws.store.startRun({
        sync: 'tick',
        trigger: 'run',
        phase: 'incremental',
        holder: 'test',
        leaseMs: 60_000,
      });
      const refused = await post<{ code: string }>('/ui/syncs/tick/reset');
      expect(refused).toMatchObject({ status: 409, body: { code: 'SYNC_RUNNING' } });
      expect(await t.ws.store.getCheckpoint('tick')).not.toBeNull();
      expect((await post('/ui/syncs/big/reset')).status).toBe(200);
      expect(await t.ws.store.getCheckpoint('big')).toBeNull();
      expect((await post('/ui/syncs/nope/reset')).status).toBe(404);
    } finally {
      await t.stop();
    }
  }, 120_000);
});
