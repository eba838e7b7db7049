import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { sluice, sluiceChild, writeContactsConfig } from '../support/cli.ts';
import { digest, seedContacts } from '../support/contacts.ts';
import { seeded, seeds } from '../support/seed.ts';
import { tempDir } from '../support/tmp.ts';

const KILLS = 6;

function runsByStatus(dir: string, status: string): number[] {
  const db = new DatabaseSync(join(dir, '.sluice', 'state.db'), { readOnly: true });
  try {
    return db
      .prepare('SELECT id FROM runs WHERE status = ? ORDER BY id')
      .all(status)
      .map((r) => Number(r.id));
  } finally {
    db.close();
  }
}

describe('sluice backfill under SIGKILL', () => {
  it.each(seeds(20261201))(
    'ends with source and target equal by key and content after kills at random moments ($label)',
    async ({ seed }) => {
      const random = seeded(seed);
      const dir = tempDir();
      // Enough rows for all the kills on a quick machine: the test needs one inside a run, and a kill
      // between two runs (or before the first) lands outside one (300,000 rows left room for three).
      seedContacts(join(dir, 'a.db'), 600_000, { perSecond: 5_000 });
      writeContactsConfig(dir, { batch: 2000, maxRunDuration: '150ms' });
      const delays: number[] = [];
      // Runs each kill left `running` in the store: the next start must close every one as abandoned.
      const leftRunning: number[] = [];
      for (let i = 0; i < KILLS; i++) {
        const child = sluiceChild(dir, 'backfill', 'contacts');
        let stderr = '';
        child.stderr?.on('data', (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
          child.on('exit', (code, signal) => resolve(signal ?? code)),
        );
        // Once the backfill reports progress it is inside a run; the kill lands anywhere in the next 0.4 s.
        await Promise.race([new Promise((resolve) => child.stderr?.once('data', resolve)), exited]);
        const delay = Math.floor(random() * 400);
        delays.push(delay);
        await sleep(delay);
        child.kill('SIGKILL');
        const ended = await exited;
        // On a quick machine the backfill may finish before a late kill: nothing is left to kill.
        if (ended === 0) break;
        expect(
          ended,
          `kill ${i + 1} after ${delay} ms: the backfill failed before it: ${stderr.slice(-500)}`,
        ).toBe('SIGKILL');
        leftRunning.push(...runsByStatus(dir, 'running'));
      }
      const kills = `kills after ${delays.join(', ')} ms`;
      // Without a kill inside a run this test would check nothing about recovery.
      expect(leftRunning.length, `${kills}: no kill landed inside a run`).toBeGreaterThan(0);

      const finish = sluice(dir, 'backfill', 'contacts');
      expect(finish.status, `${kills}: ${finish.stderr}`).toBe(0);
      const target = digest(join(dir, 'b.db'));
      expect(target.keys, kills).toBe(600_000);
      expect(target, kills).toEqual(digest(join(dir, 'a.db')));

      // Every run a kill left running was closed as abandoned by the next start; none is left running.
      expect(runsByStatus(dir, 'running'), kills).toEqual([]);
      const abandoned = new Set(runsByStatus(dir, 'abandoned'));
      expect(
        leftRunning.filter((id) => !abandoned.has(id)),
        `${kills}: runs left running by a kill and not closed as abandoned`,
      ).toEqual([]);
      expect(runsByStatus(dir, 'succeeded').length, kills).toBeGreaterThan(0);
    },
    // Seven CLI starts and a 300,000-row backfill: 23-69 s per case at load 10 on 2 cores.
    150_000,
  );
});
