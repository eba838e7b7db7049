import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { ConfigError, type ConfigInput, openWorkspace, type RunEnded } from '../../src/index.ts';
import { tempDir } from '../support/tmp.ts';

const ROWS = 1_200;

function seed(dir: string): void {
  const db = new DatabaseSync(join(dir, 'a.db'));
  db.exec('CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, updated_at TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO contacts VALUES (?, ?, ?)');
  db.exec('BEGIN');
  for (let i = 1; i <= ROWS; i++)
    insert.run(i, `u${i}@example.com`, `2024-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`);
  db.exec('COMMIT');
  db.close();
}

function rows(dir: string): number {
  const db = new DatabaseSync(join(dir, 'b.db'), { readOnly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM contacts').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const config = (): ConfigInput => ({
  connections: { a: { type: 'sqlite', path: 'a.db' }, b: { type: 'sqlite', path: 'b.db' } },
  syncs: {
    contacts: {
      source: { connection: 'a', table: 'contacts' },
      target: { connection: 'b', table: 'contacts' },
      key: 'id',
      cursor: 'updated_at',
      batch: { size: 100 },
    },
  },
});

describe('the library API', () => {
  it('backfills with progress, stops on its signal after a checkpointed batch, and resumes there', async () => {
    const dir = tempDir();
    seed(dir);
    await using sluice = await openWorkspace({ config: config(), baseDir: dir });
    expect(sluice.syncs).toEqual(['contacts']);
    const stop = new AbortController();
    const seen: number[] = [];
    const first = await sluice.backfill('contacts', {
      signal: stop.signal,
      onProgress: (p) => {
        seen.push(p.backfillDone);
        if (p.backfillDone >= 300) stop.abort();
      },
    });
    expect(first.done).toBe(false);
    expect(first.checkpoint?.phase).toBe('backfill');
    const stoppedAt = first.checkpoint?.backfillDone ?? 0;
    expect(stoppedAt).toBeGreaterThanOrEqual(300);
    expect(stoppedAt).toBeLessThan(ROWS);
    expect(seen.length).toBeGreaterThan(0);

    const second = await sluice.backfill('contacts');
    expect(second).toMatchObject({ done: true, alreadyDone: false, records: ROWS - stoppedAt });
    expect(rows(dir)).toBe(ROWS);
    expect(await sluice.backfill('contacts')).toMatchObject({ done: true, alreadyDone: true, runs: 0 });

    const { run, more } = await sluice.run('contacts');
    expect(run.status).toBe('succeeded');
    expect(more).toBe(false);
    const [status] = await sluice.status();
    expect(status).toMatchObject({
      sync: 'contacts',
      phase: 'incremental',
      backfillDone: ROWS,
      deadLetters: 0,
    });
    expect(await sluice.deadLetters('contacts')).toEqual([]);
    expect((await sluice.checkpoint('contacts'))?.phase).toBe('incremental');
  });

  it('runs the runtime and the server in this process, and closes them', async () => {
    const dir = tempDir();
    seed(dir);
    const sluice = await openWorkspace({ config: config(), baseDir: dir });
    const server = await sluice.serve({ port: 0 });
    expect(server.port).toBeGreaterThan(0);
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ ok: true });
    const runtime = await sluice.startRuntime();
    const ended = new Promise<RunEnded>((resolve) => runtime.on('run:end', resolve));
    await runtime.request('contacts');
    expect((await ended).status).toBe('succeeded');
    expect(await sluice.close()).toBe(true);
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  it('names every bad field of a config value', async () => {
    const dir = tempDir();
    const bad: ConfigInput = {
      connections: { a: { type: 'sqlite', path: 'a.db' } },
      syncs: {
        contacts: {
          source: { connection: 'a', table: 'c' },
          target: { connection: 'a', table: 'd' },
          key: 'id',
          batch: { size: -5 },
        },
      },
    };
    const err = await openWorkspace({ config: bad, baseDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual([
      'syncs.contacts.batch.size: expected a positive integer, got -5',
    ]);
  });
});
