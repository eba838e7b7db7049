import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { digest, seedContacts } from '../support/contacts.ts';
import { sluice, sluiceChild, writeContactsConfig } from '../support/cli.ts';
import { tempDir } from '../support/tmp.ts';

describe('sluice backfill under SIGKILL', () => {
  it('ends with source and target equal by key and content after kills at random moments', async () => {
    const dir = tempDir();
    seedContacts(join(dir, 'a.db'), 60_000, { perSecond: 5_000 });
    writeContactsConfig(dir, { batch: 700, maxRunDuration: '150ms' });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const child = sluiceChild(dir, 'backfill', 'contacts');
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
      // Node takes ~150 ms to start; the kills land anywhere from start-up to well into the runs.
      const delay = 150 + Math.floor(Math.random() * 500);
      delays.push(delay);
      await sleep(delay);
      child.kill('SIGKILL');
      await exited;
    }
    const finish = sluice(dir, 'backfill', 'contacts');
    expect(finish.status, `kills after ${delays.join(', ')} ms: ${finish.stderr}`).toBe(0);
    const target = digest(join(dir, 'b.db'));
    expect(target.keys).toBe(60_000);
    expect(target, `kills after ${delays.join(', ')} ms`).toEqual(digest(join(dir, 'a.db')));

    // Every killed run was closed as abandoned by the next start, none left running.
    const state = new DatabaseSync(join(dir, '.sluice', 'state.db'), { readOnly: true });
    const statuses = state.prepare('SELECT status, count(*) AS n FROM runs GROUP BY status').all();
    state.close();
    expect(statuses.find((s) => s.status === 'running')).toBeUndefined();
    expect(statuses.find((s) => s.status === 'succeeded')).toBeDefined();
    // At least one kill landed inside a run (its holder was found dead and the run closed).
    expect(Number(statuses.find((s) => s.status === 'abandoned')?.n ?? 0), `kills after ${delays.join(', ')} ms`).toBeGreaterThan(0);
  });
});
