import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { sluice, sluiceChild, writeContactsConfig } from '../support/cli.ts';
import { digest, seedContacts } from '../support/contacts.ts';
import { tempDir } from '../support/tmp.ts';

describe('sluice backfill under SIGKILL', () => {
  it('ends with source and target equal by key and content after kills at random moments', async () => {
    const dir = tempDir();
    seedContacts(join(dir, 'a.db'), 300_000, { perSecond: 5_000 });
    writeContactsConfig(dir, { batch: 2000, maxRunDuration: '150ms' });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const child = sluiceChild(dir, 'backfill', 'contacts');
      const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
        child.on('exit', (code, signal) => resolve(signal ?? code)),
      );
      // Once the backfill reports progress it is inside a run; the kill lands anywhere in the next 0.4 s.
      await Promise.race([new Promise((resolve) => child.stderr?.once('data', resolve)), exited]);
      const delay = Math.floor(Math.random() * 400);
      delays.push(delay);
      await sleep(delay);
      child.kill('SIGKILL');
      await exited;
    }
    const finish = sluice(dir, 'backfill', 'contacts');
    expect(finish.status, `kills after ${delays.join(', ')} ms: ${finish.stderr}`).toBe(0);
    const target = digest(join(dir, 'b.db'));
    expect(target.keys).toBe(300_000);
    expect(target, `kills after ${delays.join(', ')} ms`).toEqual(digest(join(dir, 'a.db')));

    // Every killed run was closed as abandoned by the next start, none left running.
    const state = new DatabaseSync(join(dir, '.sluice', 'state.db'), { readOnly: true });
    const statuses = state.prepare('SELECT status, count(*) AS n FROM runs GROUP BY status').all();
    state.close();
    expect(statuses.find((s) => s.status === 'running')).toBeUndefined();
    expect(statuses.find((s) => s.status === 'succeeded')).toBeDefined();
    // At least one kill landed inside a run (its holder was found dead and the run closed).
    expect(
      Number(statuses.find((s) => s.status === 'abandoned')?.n ?? 0),
      `kills after ${delays.join(', ')} ms`,
    ).toBeGreaterThan(0);
  });
});
