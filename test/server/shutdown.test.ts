import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';
import { API_TOKEN, startServe, writeServeConfig } from './process.ts';

/**
 * SIGTERM is bounded by `runtime.grace` (issue 12, item 5): a hard-coded 30 s was ignored, the
 * process went on past it, exited 0 at 47 s and left its run `running` with a batch written but
 * not checkpointed. Past the grace the run is now cut short, recorded, requeued, and serve exits 1.
 */
describe('sluice serve shutdown', () => {
  it('stops within its grace even when a map never ends, records the run abandoned and requeues it', async () => {
    const dir = tempDir();
    seedContacts(join(dir, 'a.db'), 100);
    // A map that ignores ctx.signal and waits for a minute: the worst a user's code can do.
    writeServeConfig(dir, {
      sync: 'map: async (r) => { await new Promise((ok) => setTimeout(ok, 60_000)); return r; },',
      top: "runtime: { grace: '1s', poll: '50ms' },",
    });
    const serve = await startServe(dir);
    const api = (path: string) =>
      fetch(`${serve.url}/api${path}`, { headers: { authorization: `Bearer ${API_TOKEN}` } });
    await until('the run to be under way', async () => {
      const { runs } = (await (await api('/syncs/contacts')).json()) as { runs: { status: string }[] };
      return runs.some((r) => r.status === 'running');
    });
    const signalled = Date.now();
    serve.child.kill('SIGTERM');
    const { code } = await serve.exited;
    const tookMs = Date.now() - signalled;
    expect(code, serve.output().stdout).toBe(1);
    // The grace (1 s), a moment for the abort to land (2 s), and a busy machine's slack.
    expect(tookMs).toBeLessThan(15_000);
    const db = new DatabaseSync(join(dir, '.sluice', 'state.db'), { readOnly: true });
    try {
      const runs = db.prepare('SELECT status, error_code, error_message FROM runs').all();
      expect(runs).toEqual([expect.objectContaining({ status: 'abandoned', error_code: 'RUN_KILLED' })]);
      expect(String(runs[0]?.error_message)).toMatch(/shutdown grace of 1000 ms ran out/);
      const requests = db.prepare("SELECT status FROM run_requests WHERE status <> 'done'").all();
      expect(requests.map((r) => r.status)).toEqual(['queued']);
    } finally {
      db.close();
    }
  });
});
