import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sign } from '../../src/server/auth.ts';
import { seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';
import {
  API_TOKEN,
  type Exchange,
  HOOK_TOKEN,
  rssDuring,
  startServe,
  streamPost,
  writeServeConfig,
} from './process.ts';

const MiB = 1024 * 1024;
const HOSTILE = 300 * MiB;

/** Signature headers with a fresh timestamp that match no body (the body is never the signed one). */
function forgedSignature(): Record<string, string> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  return {
    'x-sluice-timestamp': timestamp,
    'x-sluice-signature': `v1=${sign('not-the-secret', timestamp, 'x')}`,
  };
}

type Case = { name: string; headers: () => Record<string, string>; status: number; error: RegExp | null };

const CASES: Case[] = [
  { name: 'no credentials, chunked', headers: () => ({}), status: 401, error: /^unauthorized: / },
  {
    name: 'a wrong bearer token, chunked',
    headers: () => ({ authorization: 'Bearer wrong' }),
    status: 401,
    error: /^unauthorized: /,
  },
  {
    name: 'a valid bearer token, chunked',
    headers: () => ({ authorization: `Bearer ${HOOK_TOKEN}` }),
    status: 413,
    error: /^body over .*1 MiB/,
  },
  { name: 'signature headers, chunked', headers: forgedSignature, status: 413, error: /^body over .*1 MiB/ },
  {
    name: 'a valid bearer token, an honest Content-Length of 300 MiB',
    headers: () => ({ authorization: `Bearer ${HOOK_TOKEN}`, 'content-length': String(HOSTILE) }),
    status: 413,
    error: /^body over .*1 MiB/,
  },
];

/**
 * 1,000 bytes are the body; Node's HTTP parser takes the rest for a next request, finds it
 * malformed and closes the connection with a 400 (which the reset may beat to the client), before
 * the webhook's own 401 is written.
 */
const LYING: Case = {
  name: 'signature headers, a lying Content-Length of 1000',
  headers: () => ({ ...forgedSignature(), 'content-length': '1000' }),
  status: 400,
  error: null,
};

const MB = (bytes: number) => Math.round(bytes / 1e5) / 10;

/**
 * Starts `sluice serve`, warms it up, then sends the case's request with a 300 MiB body and measures
 * the process's RSS meanwhile. One process per case, so each body's cost is measured alone: memory
 * one body left behind could otherwise hide what the next one took.
 */
async function hostileBody(c: Case) {
  const dir = tempDir('hostile');
  seedContacts(join(dir, 'a.db'), 200);
  writeServeConfig(dir);
  const serve = await startServe(dir);
  const hook = `${serve.url}/hooks/contacts`;
  const api = (path: string) =>
    fetch(`${serve.url}/api${path}`, { headers: { authorization: `Bearer ${API_TOKEN}` } });

  // Warm up: the first backfill, a webhook run, and the same request with a 2 MiB body, so code
  // run for the first time (and memory that stays with it) is not counted against the 300 MiB.
  await until(
    'the first backfill',
    async () => ((await (await api('/syncs/contacts')).json()) as { phase: string }).phase === 'incremental',
  );
  const warm = await fetch(hook, {
    method: 'POST',
    body: '{}',
    headers: { authorization: `Bearer ${HOOK_TOKEN}` },
  });
  expect(warm.status).toBe(202);
  for (let i = 0; i < 3; i++) await streamPost(hook, c.headers(), 2 * MiB);

  let exchange: Exchange | null = null;
  const rss = await rssDuring(serve.pid, async () => {
    exchange = await streamPost(hook, c.headers(), HOSTILE);
  });
  const { status, error } = exchange!;
  const report = `RSS ${MB(rss.before)} MB before, ${MB(rss.peak)} MB at its peak; answer ${status ?? error}`;
  console.log(`${c.name}: ${report}`);

  /** Still serving, no hostile request started a run, and a SIGTERM stops it cleanly. */
  const unharmed = async () => {
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
    const { runs } = (await (await api('/syncs/contacts')).json()) as { runs: { trigger: string }[] };
    expect(runs.filter((r) => r.trigger === 'webhook')).toHaveLength(1);
    serve.child.kill('SIGTERM');
    expect((await serve.exited).code).toBe(0);
  };
  return { exchange: exchange!, growthMB: MB(rss.peak - rss.before), report, unharmed };
}

describe('sluice serve under a hostile webhook body', () => {
  it.each(CASES)(
    '300 MiB with $name: answered $status while still sending, RSS moved by less than 20 MB',
    async (c) => {
      const { exchange, growthMB, report, unharmed } = await hostileBody(c);
      expect(growthMB, report).toBeLessThan(20);
      // Answered while the client was still sending: the server stopped reading (or never started).
      expect(exchange.bodyEndedFirst, report).toBe(false);
      expect(exchange.sentBeforeAnswer!, report).toBeLessThan(HOSTILE);
      expect(exchange.status, report).toBe(c.status);
      expect(JSON.parse(exchange.body).error, report).toMatch(c.error!);
      await unharmed();
    },
    120_000,
  );

  it(`300 MiB with ${LYING.name}: refused as malformed, RSS moved by less than 20 MB`, async () => {
    const { exchange, growthMB, report, unharmed } = await hostileBody(LYING);
    expect(growthMB, report).toBeLessThan(20);
    expect(exchange.sent, report).toBeLessThan(HOSTILE);
    // Node's answer to a malformed request is a 400 and a closed connection; the reset of the
    // unread bytes may reach the client before the 400 does.
    if (exchange.status === null) expect(exchange.error, report).toMatch(/ECONNRESET|EPIPE/);
    else expect(exchange.status, report).toBe(400);
    await unharmed();
  }, 120_000);

  it('refuses a request with neither a valid token nor signature headers without waiting for its body', async () => {
    const dir = tempDir('hostile');
    seedContacts(join(dir, 'a.db'), 10);
    writeServeConfig(dir);
    const serve = await startServe(dir);
    // 64 KiB sent, then the body is held open for up to 10 s: the answer must come in that pause.
    const refused: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong' },
      { 'x-sluice-signature': 'v1=00' },
    ];
    for (const headers of refused) {
      const exchange = await streamPost(`${serve.url}/hooks/contacts`, headers, 128 * 1024, {
        after: 64 * 1024,
        ms: 10_000,
      });
      expect(exchange.status, JSON.stringify(headers)).toBe(401);
      expect(exchange.bodyEndedFirst, JSON.stringify(headers)).toBe(false);
    }
  }, 60_000);
});
