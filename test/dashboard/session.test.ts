import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/runtime/port.ts';
import { Workspace } from '../../src/runtime/workspace.ts';
import { createApp } from '../../src/server/app.ts';
import { LiveFeed } from '../../src/server/dashboard/live.ts';
import { listen as listenOn } from '../../src/server/listen.ts';
import { seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';
import { servedWorkspace, TOKEN } from './setup.ts';

/** A session cookie for `url`, from signing in as the page does. */
async function signIn(url: string, token = TOKEN): Promise<Response> {
  return fetch(`${url}/ui/session`, {
    method: 'POST',
    headers: { origin: url, 'content-type': 'application/json' },
    body: JSON.stringify({ token }),
  });
}

const cookieOf = (res: Response) => res.headers.get('set-cookie')!.split(';')[0]!;

describe('dashboard sessions', () => {
  it('explains how to set a token when none is configured, and opens nothing', async () => {
    const t = await servedWorkspace({ rows: 10, tokens: [] });
    try {
      const page = await fetch(`${t.url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toMatch(/needs an API token[\s\S]*server: \{ apiTokens/);
      expect((await signIn(t.url, '')).status).toBe(401);
      expect((await fetch(`${t.url}/ui/snapshot`)).status).toBe(401);
    } finally {
      await t.stop();
    }
  });

  it('signs in with a token into an HttpOnly SameSite=Strict cookie, refusing a wrong one', async () => {
    const t = await servedWorkspace({ rows: 10 });
    try {
      expect(await (await fetch(`${t.url}/`)).text()).toMatch(/id="sign-in"/);
      const wrong = await signIn(t.url, 'wrong');
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('set-cookie')).toBeNull();
      const right = await signIn(t.url);
      expect(right.status).toBe(200);
      expect(right.headers.get('set-cookie')).toMatch(
        /^sluice_session=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/,
      );
      const cookie = cookieOf(right);
      const page = await fetch(`${t.url}/`, { headers: { cookie } });
      expect(page.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
      expect(await page.text()).toMatch(/data-page="app"/);
      expect((await fetch(`${t.url}/ui/snapshot`, { headers: { cookie } })).status).toBe(200);
      expect(
        (await fetch(`${t.url}/ui/snapshot`, { headers: { cookie: 'sluice_session=wrong' } })).status,
      ).toBe(401);
    } finally {
      await t.stop();
    }
  });

  it('signs in from the plain form too (no script): a redirect with the cookie, or the form again with the reason', async () => {
    const t = await servedWorkspace({ rows: 10 });
    try {
      const form = (token: string) =>
        fetch(`${t.url}/ui/session`, {
          method: 'POST',
          redirect: 'manual',
          headers: { origin: t.url, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ token }).toString(),
        });
      const wrong = await form('wrong');
      expect(wrong.status).toBe(401);
      expect(wrong.headers.get('set-cookie')).toBeNull();
      expect(await wrong.text()).toMatch(/id="sign-in"[\s\S]*that token is not one of server\.apiTokens/);
      const right = await form(TOKEN);
      expect(right.status).toBe(303);
      expect(right.headers.get('location')).toBe('/');
      expect(right.headers.get('set-cookie')).toMatch(/^sluice_session=.*HttpOnly; SameSite=Strict/);
    } finally {
      await t.stop();
    }
  });

  it('refuses a change that does not come from the page itself (CSRF), and leaves the API to bearer tokens', async () => {
    const t = await servedWorkspace({ rows: 10 });
    try {
      // Signing in from another site is refused too.
      const elsewhere = await fetch(`${t.url}/ui/session`, {
        method: 'POST',
        headers: { origin: 'http://evil.example', 'content-type': 'application/json' },
        body: JSON.stringify({ token: TOKEN }),
      });
      expect(elsewhere.status).toBe(403);
      const cookie = cookieOf(await signIn(t.url));
      const run = (headers: Record<string, string>) =>
        fetch(`${t.url}/ui/syncs/tick/runs`, { method: 'POST', headers: { cookie, ...headers } });
      expect((await run({})).status).toBe(403);
      expect((await run({ origin: 'http://evil.example' })).status).toBe(403);
      expect((await run({ origin: 'null' })).status).toBe(403);
      expect((await run({ 'sec-fetch-site': 'cross-site', 'x-sluice-dashboard': '1' })).status).toBe(403);
      expect((await run({ 'sec-fetch-site': 'same-site', origin: t.url })).status).toBe(403);
      expect(await t.ws.store.queue!.list({ sync: 'tick' })).toEqual([]);
      expect((await run({ 'x-sluice-dashboard': '1' })).status).toBe(202);
      expect((await run({ origin: t.url, 'sec-fetch-site': 'same-origin' })).status).toBe(202);

      // The cookie opens the dashboard, not the API; the API still wants its bearer token.
      expect((await fetch(`${t.url}/api/syncs`, { headers: { cookie } })).status).toBe(401);
      expect(
        (await fetch(`${t.url}/api/syncs`, { headers: { authorization: `Bearer ${TOKEN}` } })).status,
      ).toBe(200);
      // And a bearer token does not open the dashboard's routes.
      expect(
        (await fetch(`${t.url}/ui/snapshot`, { headers: { authorization: `Bearer ${TOKEN}` } })).status,
      ).toBe(401);
    } finally {
      await t.stop();
    }
  });

  it('validates a data store value as JSON before storing it, keeping big integers exact', async () => {
    const t = await servedWorkspace({ rows: 10 });
    try {
      const cookie = cookieOf(await signIn(t.url));
      const put = (body: string) =>
        fetch(`${t.url}/ui/store/k`, { method: 'PUT', headers: { cookie, 'x-sluice-dashboard': '1' }, body });
      const bad = await put('{ "a": ');
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: string }).error).toMatch(/not JSON/);
      expect(await t.ws.store.data.get('k')).toBeUndefined();
      expect((await put('{ "a": 12345678901234567890 }')).status).toBe(200);
      expect(await t.ws.store.data.get('k')).toEqual({ a: 12345678901234567890n });
      const list = (await (await fetch(`${t.url}/ui/store`, { headers: { cookie } })).json()) as {
        text: string;
      }[];
      expect(list[0]!.text).toContain('12345678901234567890');
    } finally {
      await t.stop();
    }
  });
});

describe('the live feed', () => {
  it('pushes a snapshot within a second of an event, and reads the store once per interval for 200 syncs', async () => {
    const dir = tempDir('dashboard-feed');
    seedContacts(join(dir, 'a.db'), 10);
    const syncs = Object.fromEntries(
      Array.from({ length: 200 }, (_, i) => [
        `s${String(i).padStart(3, '0')}`,
        {
          source: { connection: 'a', table: 'contacts' },
          target: { connection: 'b', table: `t${i}` },
          key: 'id',
          cursor: 'updated_at',
        },
      ]),
    );
    const ws = await Workspace.fromConfig(
      {
        connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' } },
        syncs,
        bundles: { all: { syncs: Object.keys(syncs) } },
      },
      dir,
    );
    const runtime = new EventEmitter() as unknown as Runtime & EventEmitter;
    const feed = new LiveFeed(ws, runtime, { minIntervalMs: 400, refreshMs: 60_000 });
    try {
      const snapshots: { at: number; syncs: number }[] = [];
      let first: () => void;
      const firstSnapshot = new Promise<void>((resolve) => (first = resolve));
      const stop = feed.listen((event, data) => {
        if (event !== 'snapshot') return;
        snapshots.push({ at: Date.now(), syncs: (JSON.parse(data) as { syncs: unknown[] }).syncs.length });
        first();
      });
      await firstSnapshot;
      expect(snapshots[0]!.syncs).toBe(200);

      // A storm of batch checkpoints: 200 syncs × 10 batches each, over about two seconds.
      const started = Date.now();
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 200; i++) {
          const sync = `s${String(i).padStart(3, '0')}`;
          runtime.emit('run:progress', {
            sync,
            runId: i + 1,
            phase: 'backfill',
            run: {
              batches: round + 1,
              read: (round + 1) * 100,
              written: (round + 1) * 100,
              unchanged: 0,
              rejected: 0,
            },
            backfillDone: (round + 1) * 100,
            backfillEstimate: 1_000,
            estimateExact: true,
            rate: 500,
            etaMs: 1_000,
            elapsedMs: 200,
          });
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const elapsed = Date.now() - started;
      // Wait for the last coalesced snapshot after the storm.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      const pushed = snapshots.filter((s) => s.at >= started);
      // At most one read per interval (and one after the storm), not one per event (2,000).
      expect(pushed.length).toBeLessThanOrEqual(Math.ceil((elapsed + 1_500) / 400) + 2);
      expect(pushed.length).toBeGreaterThanOrEqual(2);
      // The first came within a second of the first event.
      expect(pushed[0]!.at - started).toBeLessThan(1_000);
      stop();
      expect(feed.listening).toBe(0);
    } finally {
      feed.close();
      await ws.close();
    }
  });
});

describe('the live feed without events', () => {
  it('sees what other processes do by reading every refreshMs, and sends only what moved', async () => {
    const t = await servedWorkspace({ rows: 10 });
    const feed = new LiveFeed(t.ws, new EventEmitter() as unknown as Runtime, { refreshMs: 150 });
    try {
      const snapshots: { state: string }[][] = [];
      const stop = feed.listen((event, data) => {
        if (event === 'snapshot') snapshots.push((JSON.parse(data) as { syncs: { state: string }[] }).syncs);
      });
      await until('the first snapshot', () => snapshots.length === 1);
      // Several refreshes find nothing new: nothing more is sent.
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(snapshots).toHaveLength(1);
      // Another process queues a run of tick (no event reaches this feed): the next refresh sends it.
      await t.ws.store.queue!.enqueue({ sync: 'tick', lane: 'bundle:crm', trigger: 'api' });
      const moved = await until('the queued run on the feed', () =>
        snapshots.find((syncs) => syncs.some((s) => s.state === 'queued')),
      );
      expect(moved).toBeDefined();
      stop();
    } finally {
      feed.close();
      await t.stop();
    }
  });
});

describe('closing the server', () => {
  it('ends the open live streams, so a page left open does not hold the close up', async () => {
    const t = await servedWorkspace({ rows: 10 });
    const app = createApp(t.ws, t.runtime);
    const { server, address } = await listenOn(app, '127.0.0.1', 0);
    const url = `http://127.0.0.1:${address.port}`;
    try {
      const cookie = cookieOf(await signIn(url));
      const res = await fetch(`${url}/ui/events`, { headers: { cookie } });
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
      const reader = res.body!.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(first).toMatch(/^event: snapshot\ndata: \{"now":/);
      const started = Date.now();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      expect(Date.now() - started).toBeLessThan(1_500);
      // The stream ended: the rest reads to its end.
      while (!(await reader.read()).done);
    } finally {
      await t.stop();
    }
  });
});
