import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/runtime/port.ts';
import { LiveFeed } from '../../src/server/dashboard/live.ts';
import type { Snapshot } from '../../src/server/dashboard/views.ts';
import { until } from '../support/until.ts';
import { servedWorkspace, TOKEN } from './setup.ts';

/** The snapshots a page receives on `/ui/events`, each with when it arrived. */
async function follow(url: string, cookie: string) {
  const received: { at: number; snapshot: Snapshot }[] = [];
  const controller = new AbortController();
  const res = await fetch(`${url}/ui/events`, { headers: { cookie }, signal: controller.signal });
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const reading = (async () => {
    let buffer = '';
    while (true) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) return;
      buffer += value;
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const message = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(message)?.[1];
        const data = /^data: (.*)$/m.exec(message)?.[1];
        if (event === 'snapshot' && data)
          received.push({ at: Date.now(), snapshot: JSON.parse(data) as Snapshot });
      }
    }
  })();
  return {
    received,
    stop: async () => {
      controller.abort();
      await reading;
    },
  };
}

describe('the live feed of a real backfill', () => {
  it('brings every run start, batch checkpoint and run end to the page within a second, coalesced', async () => {
    const t = await servedWorkspace({ rows: 6_000 });
    try {
      const signIn = await fetch(`${t.url}/ui/session`, {
        method: 'POST',
        headers: { origin: t.url, 'content-type': 'application/json' },
        body: JSON.stringify({ token: TOKEN }),
      });
      const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!;
      const page = await follow(t.url, cookie);
      await until('the first snapshot', () => page.received.length > 0);
      const events: { at: number; what: string }[] = [];
      t.runtime.on('run:start', ({ request }) =>
        events.push({ at: Date.now(), what: `${request.sync} start` }),
      );
      t.runtime.on('run:progress', (p) => events.push({ at: Date.now(), what: `${p.sync} batch` }));
      t.runtime.on('run:end', (e) => events.push({ at: Date.now(), what: `${e.request.sync} end` }));
      await t.runtime.start();
      await until(
        'big to be caught up on the page',
        () => page.received.at(-1)?.snapshot.syncs.find((s) => s.sync === 'big' && s.phase === 'incremental'),
        120_000,
      );
      const last = events.at(-1)!.at;
      await until('a snapshot read after the last event', () =>
        page.received.some((r) => r.snapshot.now >= last),
      );
      await page.stop();

      // For each event, the first snapshot read after it (its `now` is when the server read it)
      // reached the page within a second.
      const late = events
        .map((e) => {
          const next = page.received.find((r) => r.snapshot.now >= e.at);
          return { ...e, delay: next ? next.at - e.at : Number.POSITIVE_INFINITY };
        })
        .filter((e) => e.delay > 1_000);
      expect(late, `${events.length} events, ${page.received.length} snapshots`).toEqual([]);
      expect(events.filter((e) => e.what === 'big batch').length).toBeGreaterThan(10);
      // Coalesced: fewer snapshots than events (a read per interval, not per event).
      expect(page.received.length).toBeLessThan(events.length);
    } finally {
      await t.stop();
    }
  }, 180_000);
});

describe('a broken chain on the live feed', () => {
  it('shows the reason until the sync runs again', async () => {
    const t = await servedWorkspace({ rows: 10 });
    const runtime = new EventEmitter() as unknown as Runtime & EventEmitter;
    const feed = new LiveFeed(t.ws, runtime, { minIntervalMs: 50 });
    try {
      const seen: (string | null)[] = [];
      const stop = feed.listen((event, data) => {
        if (event !== 'snapshot') return;
        const big = (JSON.parse(data) as Snapshot).syncs.find((s) => s.sync === 'big')!;
        seen.push(big.chainBroken);
      });
      await until('the first snapshot', () => seen.length > 0);
      runtime.emit('chain:broken', { sync: 'big', reason: 'failed 3 times: the target refused the batch' });
      await until('the broken chain on the feed', () => seen.at(-1)?.startsWith('failed 3 times'));
      runtime.emit('run:start', { request: { sync: 'big' }, laneWaitMs: 0 });
      await until('the chain mended by a run', () => seen.length > 2 && seen.at(-1) === null);
      stop();
    } finally {
      feed.close();
      await t.stop();
    }
  });
});
