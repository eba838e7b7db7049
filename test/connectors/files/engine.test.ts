import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { filesConnector } from '../../../src/connectors/files/index.ts';
import { sqliteConnector } from '../../../src/connectors/sqlite/index.ts';
import type { SyncShape } from '../../../src/core/ports.ts';
import { executeRun, type RunOutcome, type RunSpec } from '../../../src/engine/run.ts';
import { SqliteStore } from '../../../src/store/sqlite/store.ts';
import { tempDir } from '../../support/tmp.ts';

/** A files → SQLite sync in `dir`, each run with a freshly opened source and target, as the CLI runs it. */
function filesToSqlite(dir: string, sourceOptions: Record<string, unknown>, spec: Partial<RunSpec>) {
  const store = SqliteStore.open(join(dir, 'state.db'));
  const shape: SyncShape = { sync: 'people', key: ['id'], cursorField: null, baseDir: dir };
  const fullSpec: RunSpec = {
    name: 'people',
    key: ['id'],
    cursorField: null,
    batchSize: 1000,
    maxRunDurationMs: 600_000,
    lookbackMs: 0,
    map: null,
    ...spec,
  };
  const options = filesConnector.source!.options.parse(sourceOptions);
  return {
    store,
    async run(stopAfterBackfill = false): Promise<RunOutcome> {
      const source = await filesConnector.source!.open({ dir: '.' }, options, shape);
      const target = await sqliteConnector.target!.open(
        { path: 'b.db' },
        { table: 'people', mode: 'upsert', synchronous: 'NORMAL' },
        shape,
      );
      try {
        return await executeRun({
          spec: fullSpec,
          source,
          target,
          store,
          trigger: 'run',
          holder: 'test:1',
          stopAfterBackfill,
        });
      } finally {
        await source.close?.();
        await target.close?.();
      }
    },
  };
}

function tableRows(dir: string): Record<string, unknown>[] {
  const db = new DatabaseSync(join(dir, 'b.db'));
  try {
    return db.prepare('SELECT * FROM people ORDER BY id').all() as Record<string, unknown>[];
  } finally {
    db.close();
  }
}

describe('files source through the engine into SQLite', () => {
  it('moves a 50,000-line JSON Lines file in many time-boxed runs, then tails what is appended', async () => {
    const dir = tempDir();
    const people = Array.from({ length: 50_000 }, (_, i) => ({
      id: i + 1,
      name: `Person ${i + 1} é日🙂`,
      score: i % 97,
    }));
    writeFileSync(join(dir, 'a.jsonl'), `${people.map((p) => JSON.stringify(p)).join('\n')}\n`);
    // A budget of 0 ms: every run moves exactly one batch, so this takes 50 runs.
    const sync = filesToSqlite(dir, { path: 'a.jsonl' }, { batchSize: 1000, maxRunDurationMs: 0 });
    const outcomes: RunOutcome[] = [];
    for (let i = 0; i < 100; i++) {
      const outcome = await sync.run(true);
      outcomes.push(outcome);
      if (outcome.checkpoint.phase === 'incremental') break;
    }
    expect(outcomes).toHaveLength(50);
    const checkpoint = outcomes.at(-1)!.checkpoint;
    expect(checkpoint.totals).toMatchObject({ read: 50_000, written: 50_000, rejected: 0 });
    expect(checkpoint.backfillEstimate).toBe(50_000);
    expect(tableRows(dir)).toEqual(people);

    writeFileSync(
      join(dir, 'a.jsonl'),
      '{"id":50001,"name":"late","score":1}\n{"id":2,"name":"changed","score":2}\n{"id":',
      {
        flag: 'a',
      },
    );
    const tail = await sync.run();
    expect(tail.run.counters).toMatchObject({ read: 2, written: 2 });
    const rows = tableRows(dir);
    expect(rows).toHaveLength(50_001);
    expect(rows[1]).toEqual({ id: 2, name: 'changed', score: 2 });
    await sync.store.close();
  }, 60_000);

  it('moves a CSV file in small batches, and malformed records end in the dead letters, not nowhere', async () => {
    const dir = tempDir();
    const lines = ['id,name,note'];
    const expected: Record<string, unknown>[] = [];
    for (let i = 1; i <= 3000; i++) {
      if (i % 1000 === 500) {
        lines.push(`${i},bro"ken`);
        continue;
      }
      const name = i % 3 === 0 ? `"multi\nline, ""${i}"""` : `name ${i}`;
      lines.push(`${i},${name},é${i}`);
      expected.push({
        id: String(i),
        name: i % 3 === 0 ? `multi\nline, "${i}"` : `name ${i}`,
        note: `é${i}`,
      });
    }
    writeFileSync(join(dir, 'a.csv'), `${lines.join('\r\n')}\r\n`);
    const sync = filesToSqlite(dir, { path: 'a.csv', chunkSize: 1024 }, { batchSize: 70 });
    for (let i = 0; i < 10; i++) {
      const outcome = await sync.run(true);
      if (outcome.checkpoint.phase === 'incremental') break;
    }
    const rows = tableRows(dir).map((r) => ({ ...r, id: String(r.id) }));
    expect(rows.sort((a, b) => Number(a.id) - Number(b.id))).toEqual(expected);
    const letters = await sync.store.listDeadLetters({ sync: 'people' });
    expect(letters.map((l) => (l.record as { raw: string }).raw)).toEqual([
      '500,bro"',
      '1500,bro"',
      '2500,bro"',
    ]);
    expect(letters.every((l) => l.reason.startsWith('malformed record: ') && l.key === null)).toBe(true);
    await sync.store.close();
  }, 60_000);

  it('a JSON Lines file renamed over by a larger one between runs fails the run and keeps the checkpoint; with onReplace "restart" every new record arrives', async () => {
    const dir = tempDir();
    const path = join(dir, 'a.jsonl');
    const lines = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => `${JSON.stringify({ id: from + i, name: `p${from + i}` })}\n`).join(
        '',
      );
    writeFileSync(path, lines(1, 1000));
    const failing = filesToSqlite(dir, { path: 'a.jsonl' }, { batchSize: 100, maxRunDurationMs: 0 });
    for (let i = 0; i < 3; i++) await failing.run(true);
    const before = await failing.store.getCheckpoint('people');
    expect(before?.totals.read).toBe(300);
    writeFileSync(`${path}.new`, lines(5001, 2000));
    renameSync(`${path}.new`, path);
    await expect(failing.run(true)).rejects.toMatchObject({
      code: 'SOURCE_FILE_REPLACED',
      message: expect.stringContaining('sluice reset people'),
    });
    expect(await failing.store.getCheckpoint('people')).toEqual(before);
    expect(tableRows(dir)).toHaveLength(300);
    await failing.store.close();

    const restarting = filesToSqlite(dir, { path: 'a.jsonl', onReplace: 'restart' }, { batchSize: 100 });
    for (let i = 0; i < 5; i++) {
      const outcome = await restarting.run();
      if (!outcome.more && outcome.checkpoint.phase === 'incremental') break;
    }
    const rows = tableRows(dir);
    expect(rows.map((r) => r.id)).toEqual([
      ...Array.from({ length: 300 }, (_, i) => i + 1),
      ...Array.from({ length: 2000 }, (_, i) => 5001 + i),
    ]);
    expect(rows.at(-1)).toEqual({ id: 7000, name: 'p7000' });
    await restarting.store.close();
  }, 60_000);
});
