/**
 * Dashboard benchmark: the page's first load (bytes) and its render time in Debian's chromium.
 *
 *   node bench/dashboard.ts [--syncs 200] [--rounds 5] [--json]
 *
 * Serves a workspace of `--syncs` syncs (SQLite, one bundle; nothing runs) with `createApp` on
 * 127.0.0.1, signs a headless chromium in, and loads `/` `--rounds` times in fresh pages (cold cache
 * each: a new browser context). Prints:
 *   - first load: the bytes of every response the page needs to draw (HTML, CSS, script, its first
 *     snapshot; the live stream counted up to that snapshot), beside the goal, 300 KB;
 *   - render: from navigation start to the syncs table holding a row per sync, as the page's own
 *     clock (performance.now) says, median and worst, beside the goal, 500 ms;
 *   - beside it, its peer: an empty HTML page from the same server in the same browser, which says
 *     what the machine allows at that moment (it is shared; the load average is printed too);
 *   - the snapshot read on the server for that many syncs (median), which every live update costs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { LocalRuntime } from '../src/runtime/local/runtime.ts';
import { Workspace } from '../src/runtime/workspace.ts';
import { createApp } from '../src/server/app.ts';
import { LiveFeed } from '../src/server/dashboard/live.ts';
import { listen } from '../src/server/listen.ts';
import { seedContacts } from '../test/support/contacts.ts';

const { values } = parseArgs({
  options: {
    syncs: { type: 'string', default: '200' },
    rounds: { type: 'string', default: '5' },
    json: { type: 'boolean', default: false },
  },
});
const SYNCS = Number(values.syncs);
const ROUNDS = Number(values.rounds);
const TOKEN = 'bench-token';
const GOAL_BYTES = 300 * 1024;
const GOAL_MS = 500;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-bench-dashboard-'));
  seedContacts(join(dir, 'a.db'), 10);
  const names = Array.from({ length: SYNCS }, (_, i) => `contacts-${String(i).padStart(3, '0')}`);
  const ws = await Workspace.fromConfig(
    {
      connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' } },
      syncs: Object.fromEntries(
        names.map((name, i) => [
          name,
          {
            source: { connection: 'a', table: 'contacts' },
            target: { connection: 'b', table: `t${i}` },
            key: 'id',
            cursor: 'updated_at',
            incremental: { every: '5m' },
          },
        ]),
      ),
      bundles: { crm: { syncs: names } },
      server: { apiTokens: [TOKEN] },
    },
    dir,
  );
  const runtime = new LocalRuntime(ws);
  const app = createApp(ws, runtime);
  // The peer: an empty page from the same server, in the same browser — the floor this machine's
  // browser sets at the moment (it is shared: the load average is printed too).
  app.get('/bench/blank', (c) => c.html('<!doctype html><title>blank</title><p>blank</p>'));
  const { server, address } = await listen(app, '127.0.0.1', 0);
  const url = `http://127.0.0.1:${address.port}`;
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const load = loadavg()[0]!;
  const rounds: { bytes: number; renderMs: number; blankMs: number; parts: Record<string, number> }[] = [];
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      await context.addCookies([{ name: 'sluice_session', value: TOKEN, url }]);
      // The page's own clock, the moment the table holds every sync.
      await context.addInitScript(`(() => {
        const want = ${SYNCS};
        new MutationObserver((_, observer) => {
          const rows = document.querySelectorAll('#sync-rows tr').length;
          if (rows >= want && window.renderedAt === undefined) {
            window.renderedAt = performance.now();
            observer.disconnect();
          }
        }).observe(document, { subtree: true, childList: true });
      })()`);
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await cdp.send('Network.enable');
      const parts: Record<string, number> = {};
      cdp.on(
        'Network.dataReceived',
        (e: { requestId: string; encodedDataLength: number; dataLength: number }) => {
          parts[e.requestId] = (parts[e.requestId] ?? 0) + e.dataLength;
        },
      );
      const names = new Map<string, string>();
      cdp.on('Network.requestWillBeSent', (e: { requestId: string; request: { url: string } }) =>
        names.set(e.requestId, new URL(e.request.url).pathname),
      );
      await page.goto(url);
      await page.waitForFunction('window.renderedAt !== undefined', undefined, { timeout: 60_000 });
      const renderMs = (await page.evaluate('window.renderedAt')) as number;
      const byPath: Record<string, number> = {};
      for (const [id, bytes] of Object.entries(parts)) byPath[names.get(id) ?? id] = bytes;
      await context.close();
      const blank = await browser.newContext();
      const blankPage = await blank.newPage();
      await blankPage.goto(`${url}/bench/blank`);
      const blankMs = (await blankPage.evaluate(
        "performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd",
      )) as number;
      await blank.close();
      rounds.push({
        bytes: Object.values(byPath).reduce((a, b) => a + b, 0),
        renderMs,
        blankMs,
        parts: byPath,
      });
    }
  } finally {
    // launch() gives the browser a fresh profile in a temp dir of its own, removed on close.
    await browser.close();
  }

  // The server's side of a live update: one snapshot read for every sync.
  const feed = new LiveFeed(ws, runtime);
  const reads: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    await feed.read();
    reads.push(performance.now() - t0);
  }
  feed.close();
  server.close();
  await ws.close();
  rmSync(dir, { recursive: true, force: true });

  const result = {
    syncs: SYNCS,
    rounds: ROUNDS,
    firstLoadBytes: median(rounds.map((r) => r.bytes)),
    firstLoadParts: rounds[0]!.parts,
    renderMsMedian: Math.round(median(rounds.map((r) => r.renderMs))),
    renderMsWorst: Math.round(Math.max(...rounds.map((r) => r.renderMs))),
    blankPageMsMedian: Math.round(median(rounds.map((r) => r.blankMs))),
    snapshotReadMsMedian: Math.round(median(reads)),
    load1: Number(load.toFixed(2)),
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KB`;
  const parts = Object.entries(result.firstLoadParts)
    .map(([path, bytes]) => `${path} ${kb(bytes)}`)
    .join(', ');
  process.stdout.write(
    [
      `dashboard, ${SYNCS} syncs, ${ROUNDS} cold loads in chromium (load average ${result.load1})`,
      `  first load  ${kb(result.firstLoadBytes)}   goal < ${kb(GOAL_BYTES)}  ${result.firstLoadBytes < GOAL_BYTES ? 'ok' : 'OVER'}`,
      `              (${parts})`,
      `  render      ${result.renderMsMedian} ms median, ${result.renderMsWorst} ms worst   goal < ${GOAL_MS} ms  ${result.renderMsMedian < GOAL_MS ? 'ok' : 'OVER'}`,
      `  blank page  ${result.blankPageMsMedian} ms median to DOMContentLoaded (the peer: an empty page, same server, same browser)`,
      `  snapshot    ${result.snapshotReadMsMedian} ms to read on the server (median of 10), at most once per 400 ms`,
      '',
    ].join('\n'),
  );
}

await main();
