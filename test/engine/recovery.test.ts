import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Target } from '../../src/core/ports.ts';
import { SqliteStore } from '../../src/store/sqlite/store.ts';
import type { ChildEvent } from '../support/backfill-child.ts';
import { digest, execSql, seedContacts } from '../support/contacts.ts';
import { recordingSource, sqlitePair } from '../support/harness.ts';
import { tempDir } from '../support/tmp.ts';
import { until } from '../support/until.ts';

const CHILD = fileURLToPath(new URL('../support/backfill-child.ts', import.meta.url));
const ROWS = 20_000;
/** Batches are 1,000 rows with ids in order, so batch 8 holds ids 7,001 to 8,000. */
const CRASH_BATCH = 8;
const BEFORE_CRASH = (CRASH_BATCH - 1) * 1000;

type Path = 'native' | 'ordinary';

/** `backfill-child.ts` in a process of its own, its stdout events collected as they come. */
function backfillChild(dir: string, path: Path, ...args: string[]) {
  const child: ChildProcess = spawn(process.execPath, [CHILD, dir, path, ...args], { stdio: 'pipe' });
  const events: ChildEvent[] = [];
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    const lines = stdout.split('\n');
    stdout = lines.pop()!;
    for (const line of lines) events.push(JSON.parse(line) as ChildEvent);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  let ended = false;
  void exited.then(() => {
    ended = true;
  });
  // A test that fails before its kill must not leave a child spinning in the stalled trigger.
  onTestFinished(() => {
    if (!ended) child.kill('SIGKILL');
  });
  return {
    child,
    events,
    exited,
    stderr: () => stderr,
    /** Waits for an event; fails at once, with the child's stderr, if the child ends first. */
    waitFor(what: string, match: (e: ChildEvent) => boolean, timeoutMs = 30_000) {
      return until(
        what,
        () => {
          const found = events.find(match);
          if (!found && ended) throw new Error(`the child ended before ${what}: ${stderr}`);
          return found;
        },
        timeoutMs,
      );
    },
  };
}

/** True while another connection holds the write lock of `path` (a write transaction is open). */
function writeLocked(path: string): boolean {
  const db = new DatabaseSync(path, { timeout: 0 });
  try {
    db.exec('BEGIN IMMEDIATE');
    db.exec('ROLLBACK');
    return false;
  } catch (err) {
    if (/locked|busy/i.test((err as Error).message)) return true;
    throw err;
  } finally {
    db.close();
  }
}

/**
 * The target table, made as the source's, with a trigger that, once the row with `id` is inserted,
 * runs a query of 10^12 steps: whoever writes that row stays inside its write transaction, with
 * half its batch inserted, until it is killed.
 */
function stallTargetAt(targetPath: string, id: number): void {
  seedContacts(targetPath, 0);
  execSql(
    targetPath,
    `CREATE TABLE spin (n INTEGER);
     WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 1000) INSERT INTO spin SELECT n FROM c;
     CREATE TRIGGER stall AFTER INSERT ON contacts WHEN NEW.id = ${id}
       BEGIN SELECT count(*) FROM spin a, spin b, spin c, spin d; END;`,
  );
}

async function storeState(dir: string) {
  const store = SqliteStore.open(join(dir, 'state.db'));
  try {
    return { checkpoint: await store.getCheckpoint('contacts'), runs: await store.listRuns({ limit: 100 }) };
  } finally {
    await store.close();
  }
}

/** Only the native path calls `copyFrom`; only the ordinary one calls `map` and `write`. */
function assertPath(path: Path, events: ChildEvent[]): void {
  const kinds = new Set(
    events.map((e) => e.event).filter((e) => e !== 'start' && e !== 'hanging' && e !== 'done'),
  );
  if (path === 'native') {
    expect(kinds, 'native path: batches copied by the target, none written').toEqual(
      new Set(['copy', 'copied']),
    );
    // A copy answered null would have sent its batch the ordinary way.
    expect(events.filter((e) => e.event === 'copied' && e.written === null)).toEqual([]);
  } else {
    expect(kinds, 'ordinary path: batches written, none copied').toEqual(new Set(['write', 'written']));
  }
}

/**
 * Resumes the backfill in a new process on the same path after `killed` was SIGKILLed, and checks
 * that the target equals the source by key and content with every record counted once.
 */
async function resumeAndCheck(dir: string, path: Path, killedAt: Awaited<ReturnType<typeof storeState>>) {
  const [killedRun] = killedAt.runs;
  expect(killedRun?.status, 'the kill left its run running').toBe('running');
  const done = killedAt.checkpoint?.backfillDone ?? 0;
  expect(done).toBe(BEFORE_CRASH);

  const resumed = backfillChild(dir, path);
  expect(await resumed.exited, resumed.stderr()).toBe(0);
  assertPath(path, resumed.events);
  const end = resumed.events.find((e) => e.event === 'done');
  // The map saw each record from the checkpoint on once: nothing before it was read again.
  expect(end).toMatchObject({ event: 'done', maps: path === 'ordinary' ? ROWS - done : 0 });
  // The batch in hand at the kill is the first one done again, from the checkpoint.
  const first = resumed.events.find((e) => e.event === 'copy' || e.event === 'write');
  if (first?.event === 'copy') expect(first.after).toEqual([done]);
  else expect(first).toMatchObject({ event: 'write', first: done + 1 });

  const after = await storeState(dir);
  // The new process found the killed run's holder gone and closed it before taking the sync over.
  expect(after.runs.find((r) => r.id === killedRun!.id)).toMatchObject({
    status: 'abandoned',
    errorCode: 'HOLDER_GONE',
  });
  const newRuns = after.runs.filter((r) => r.id > killedRun!.id);
  expect(newRuns.map((r) => r.status)).toEqual(newRuns.map(() => 'succeeded'));
  expect(newRuns.reduce((n, r) => n + r.counters.read, 0)).toBe(ROWS - done);
  expect(after.checkpoint).toMatchObject({ phase: 'incremental', backfillDone: ROWS });

  const target = digest(join(dir, 'b.db'));
  expect(target.count).toBe(ROWS);
  expect(target.keys).toBe(ROWS);
  expect(target).toEqual(digest(join(dir, 'a.db')));
}

describe.each([{ path: 'native' as const }, { path: 'ordinary' as const }])(
  'crash recovery, $path path: a backfill SIGKILLed in the middle of a batch',
  ({ path }) => {
    it('killed once the target confirmed the batch, before its checkpoint: the resumed run writes it again, once', async () => {
      const dir = tempDir('crash');
      seedContacts(join(dir, 'a.db'), ROWS, { perSecond: 100 });
      seedContacts(join(dir, 'b.db'), 0);
      const crashing = backfillChild(dir, path, '--hang-after-write', String(CRASH_BATCH));
      await crashing.waitFor(`batch ${CRASH_BATCH} confirmed`, (e) => e.event === 'hanging');
      crashing.child.kill('SIGKILL');
      expect(await crashing.exited).toBe('SIGKILL');
      assertPath(path, crashing.events);
      // The batch reached the target but its checkpoint did not: the target is one batch ahead.
      expect(digest(join(dir, 'b.db')).count).toBe(CRASH_BATCH * 1000);
      await resumeAndCheck(dir, path, await storeState(dir));
    });

    it("killed inside the target's write transaction: the half-written batch is rolled back, then written whole", async () => {
      const dir = tempDir('crash');
      seedContacts(join(dir, 'a.db'), ROWS, { perSecond: 100 });
      stallTargetAt(join(dir, 'b.db'), BEFORE_CRASH + 500);
      const crashing = backfillChild(dir, path);
      const started = (e: ChildEvent) =>
        (e.event === 'copy' || e.event === 'write') && e.batch === CRASH_BATCH;
      await crashing.waitFor(`batch ${CRASH_BATCH} started`, started);
      // The trigger holds the writer inside its transaction for good: kill it there.
      await until('the target write-locked by the stalled batch', () => writeLocked(join(dir, 'b.db')));
      crashing.child.kill('SIGKILL');
      expect(await crashing.exited).toBe('SIGKILL');
      assertPath(path, crashing.events);
      expect(
        crashing.events.filter((e) => 'batch' in e && e.batch === CRASH_BATCH).map((e) => e.event),
      ).toEqual([path === 'native' ? 'copy' : 'write']);
      execSql(join(dir, 'b.db'), 'DROP TRIGGER stall');
      // The rows of the batch inserted before the kill were never committed.
      expect(digest(join(dir, 'b.db')).count).toBe(BEFORE_CRASH);
      await resumeAndCheck(dir, path, await storeState(dir));
    });
  },
);

describe('crash recovery', () => {
  it('stops a run at its budget and resumes exactly where it stopped', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 100, maxRunDurationMs: 2500 });
    seedContacts(pair.sourcePath, 1_000);
    // A clock that advances one second per batch written, so the budget is spent after three batches.
    let clock = 0;
    const now = () => clock;
    const written: unknown[][] = [];
    const tick = (t: Target): Target => ({
      write: async (records, req) => {
        clock += 1000;
        written.push(records.map((r) => r.id));
        return t.write(records, req);
      },
    });
    const reads: { cursor: unknown; ids: unknown[] }[] = [];
    const first = await pair.run({ now, wrapTarget: tick, stopAfterBackfill: true });
    expect(first.more).toBe(true);
    expect(first.run.counters.batches).toBe(3);
    expect(first.checkpoint.cursor).toEqual({ key: [300] });
    expect(written.flat()).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));

    const second = await pair.run({
      now,
      wrapTarget: tick,
      wrapSource: (s) => recordingSource(s, reads),
      stopAfterBackfill: true,
    });
    expect(reads[0]?.cursor).toEqual({ key: [300] });
    expect(second.run.counters.read).toBe(300);
    while ((await pair.store.getCheckpoint('contacts'))?.phase !== 'incremental') {
      await pair.run({ now, wrapTarget: tick, stopAfterBackfill: true });
    }
    // Every record written exactly once across the runs, in key order: nothing skipped, nothing repeated.
    expect(written.flat()).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));
  });
});

describe('changes during a backfill', () => {
  it('brings records updated and inserted while the backfill runs through the incremental phase', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 1000 });
    seedContacts(pair.sourcePath, 5_000, { perSecond: 100 });
    let batches = 0;
    const meddle = (s: Parameters<typeof recordingSource>[0]) => ({
      ...recordingSource(s, []),
      read: async (req: Parameters<typeof s.read>[0]) => {
        batches += 1;
        if (batches === 3) {
          // Already copied rows change, and new rows arrive past the backfill's high-water mark.
          execSql(
            pair.sourcePath,
            "UPDATE contacts SET company = 'Updated', updated_at = '2030-01-01T00:00:00Z' WHERE id IN (10, 20, 1500)",
          );
          seedContacts(pair.sourcePath, 3, { firstId: 9_000, start: Date.UTC(2030, 0, 1) });
        }
        return s.read(req);
      },
    });
    const backfill = await pair.run({ stopAfterBackfill: true, wrapSource: meddle });
    expect(backfill.checkpoint.phase).toBe('incremental');
    // The backfill stopped at its high-water mark: the new rows are not in it.
    expect(digest(pair.targetPath).count).toBe(5_000);
    await pair.run();
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));
    expect(digest(pair.targetPath).count).toBe(5_003);
  });
});
