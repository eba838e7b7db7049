import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sluice } from '../support/cli.ts';
import { seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';
import { API_TOKEN, HOOK_TOKEN, startServe, writeServeConfig } from './process.ts';

/** A port on 127.0.0.1 held by another listener until the test ends. */
async function busyPort(): Promise<number> {
  const holder: Server = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  return (holder.address() as { port: number }).port;
}

describe('sluice serve as a process', () => {
  it('on a busy port says so in one line, exits non-zero, and starts no run', async () => {
    const dir = tempDir('serve-port');
    seedContacts(join(dir, 'a.db'), 100);
    writeServeConfig(dir);
    const port = await busyPort();

    const result = sluice(dir, 'serve', '--port', String(port));
    const why = `exit ${result.status}\nstderr:\n${result.stderr}\nstdout:\n${result.stdout}`;
    expect(result.status, why).not.toBe(0);
    expect(result.status, why).not.toBeNull(); // exited by itself, not killed
    expect(result.stderr, why).toMatch(
      new RegExp(`^sluice: port ${port} on 127\\.0\\.0\\.1 is in use; [^\\n]+\\n$`),
    );
    // Nothing ran: the port is bound before the runtime starts.
    const state = join(dir, '.sluice', 'state.db');
    if (existsSync(state)) {
      const db = new DatabaseSync(state, { readOnly: true });
      try {
        expect(db.prepare('SELECT count(*) AS n FROM runs').get(), why).toEqual({ n: 0 });
      } finally {
        db.close();
      }
    }
  }, 60_000);

  it('observes each run’s lane wait once, the first run included and busy requeues not counted', async () => {
    const dir = tempDir('serve-metrics');
    seedContacts(join(dir, 'a.db'), 3000);
    // A map slow enough that the first backfill run is still going when the webhook asks for a run.
    writeServeConfig(dir, {
      sync: `batch: { size: 100 },
      map: async (r: Record<string, unknown>) => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        return r;
      },`,
    });
    const serve = await startServe(dir);
    const api = async <T>(path: string): Promise<T> =>
      (await (
        await fetch(`${serve.url}/api${path}`, { headers: { authorization: `Bearer ${API_TOKEN}` } })
      ).json()) as T;

    type Run = { id: number; trigger: string; status: string; endedAt: string | null };
    await until('the backfill run under way', async () =>
      (await api<Run[]>('/runs?sync=contacts')).some((r) => r.status === 'running'),
    );
    const hook = await fetch(`${serve.url}/hooks/contacts`, {
      method: 'POST',
      body: '{}',
      headers: { authorization: `Bearer ${HOOK_TOKEN}` },
    });
    expect(hook.status).toBe(202);
    const { requestId } = (await hook.json()) as { requestId: number };
    const done = await until('the webhook run', async () => {
      const request = await api<{ status: string; createdAt: number; runId: number | null }>(
        `/requests/${requestId}`,
      );
      return request.status === 'done' ? request : null;
    });
    const runs = await api<Run[]>('/runs?sync=contacts');
    const backfill = runs.find((r) => r.trigger === 'backfill')!;
    expect(runs.map((r) => `${r.trigger} ${r.status}`).sort()).toEqual([
      'backfill succeeded',
      'webhook succeeded',
    ]);

    const metrics = await (await fetch(`${serve.url}/metrics`)).text();
    const counts = Object.fromEntries(
      [...metrics.matchAll(/^sluice_lane_wait_seconds_count\{lane="([^"]+)"\} (\d+)$/gm)].map((m) => [
        m[1],
        Number(m[2]),
      ]),
    );
    const requeues = serve
      .output()
      .stdout.split('\n')
      .filter((line) => line.includes('"status":"requeued"')).length;
    const why = `lane wait counts ${JSON.stringify(counts)}; ${requeues} busy requeues of the webhook run`;
    // The webhook run was refused (its sync busy with the backfill) at least once: the case at hand.
    expect(requeues, why).toBeGreaterThan(0);
    expect(counts, why).toEqual({ 'sync:contacts': 1, 'webhook:contacts': 1 });

    // Its wait counts from when it was asked for, across its requeues: at least until the backfill ended.
    const waited = Number(
      metrics.match(/^sluice_lane_wait_seconds_sum\{lane="webhook:contacts"\} ([\d.e+-]+)$/m)?.[1],
    );
    const blockedFor = (Date.parse(backfill.endedAt!) - done!.createdAt) / 1000;
    expect(waited, `${why}; waited ${waited} s, blocked ${blockedFor} s`).toBeGreaterThanOrEqual(
      blockedFor - 0.002,
    );

    serve.child.kill('SIGTERM');
    expect((await serve.exited).code).toBe(0);
  }, 90_000);
});
