import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { describe, expect, it } from 'vitest';
import { JsonlTarget } from '../../src/connectors/files/target.ts';
import type { Store, Target } from '../../src/core/ports.ts';
import { retryDeadLetters } from '../../src/engine/retry.ts';
import { executeRun } from '../../src/engine/run.ts';
import { digest, execSql, iso, seedContacts } from '../support/contacts.ts';
import { type Pair, sqlitePair } from '../support/harness.ts';
import { tempDir } from '../support/tmp.ts';

/**
 * The edges where records were lost or duplicated while runs said `succeeded` (issue 10): each test
 * here failed on the engine before lookback sweeps, strict incremental reads, fingerprints, fences
 * and retries from the source.
 */

const CHECKED_EMAIL =
  "CREATE TABLE contacts (id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT CHECK (email LIKE '%@%'), company TEXT, score REAL, updated_at TEXT)";

/** One run of the pair's source into a JSON Lines file (an append target), opened and closed for it. */
async function runIntoJsonl(pair: Pair, file: string) {
  const source = await pair.openSource();
  const target = await JsonlTarget.open(file);
  try {
    return await executeRun({
      spec: pair.spec,
      source,
      target,
      store: pair.store,
      trigger: 'run',
      holder: 't:1',
    });
  } finally {
    await source.close?.();
    await target.close?.();
  }
}

/** `sluice dead-letters retry` of the pair's sync, with its source and target opened for it. */
async function retryIn(pair: Pair, store: Store = pair.store) {
  const source = await pair.openSource();
  const target = await pair.openTarget();
  try {
    return await retryDeadLetters({ spec: pair.spec, source, target, store, holder: 't:1' });
  } finally {
    await source.close?.();
    await target.close?.();
  }
}

/** A target that moves the run's clock on by `stepMs` for each batch it writes. */
function ticking(clock: { t: number }, stepMs: number) {
  return (t: Target): Target => ({
    write: (records, req) => {
      clock.t += stepMs;
      return t.write(records, req);
    },
  });
}

function newestUpdatedAt(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Date.parse(String(db.prepare('SELECT max(updated_at) AS m FROM contacts').get()?.m));
  } finally {
    db.close();
  }
}

describe('engine edges: nothing lost, nothing duplicated', () => {
  it('reads a lookback window holding far more than one run can, across runs, and only then says caught up', async () => {
    // The finding: lookback 60 s, runs of 300 ms, batches of 997; 20,000 rows committed late with an
    // updated_at 45 s behind the newest; runs alternated "more" / "caught up" and 15,015 stayed stale.
    const clock = { t: 0 };
    const pair = sqlitePair(tempDir(), { batchSize: 997, maxRunDurationMs: 300, lookbackMs: 60_000 });
    seedContacts(pair.sourcePath, 30_000, { perSecond: 100 });
    await pair.backfill();
    let caughtUp = false;
    for (let i = 0; i < 80 && !caughtUp; i++)
      caughtUp = !(await pair.run({ now: () => clock.t, wrapTarget: ticking(clock, 100) })).more;
    expect(caughtUp).toBe(true);
    const late = iso(newestUpdatedAt(pair.sourcePath) - 45_000);
    execSql(
      pair.sourcePath,
      `UPDATE contacts SET company = 'late', updated_at = '${late}' WHERE id <= 20000`,
    );
    const more: boolean[] = [];
    for (let i = 0; i < 80; i++) {
      const outcome = await pair.run({ now: () => clock.t, wrapTarget: ticking(clock, 100) });
      more.push(outcome.more);
      if (!outcome.more) break;
    }
    // Every run but the last says there is more: the window's sweep goes on where it stopped.
    expect(more.at(-1)).toBe(false);
    expect(more.slice(0, -1).every(Boolean)).toBe(true);
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));
  });

  it('sweeps the window on a sync whose every run spends its budget', async () => {
    // A sync that never catches up (its runs always end on their budget) still reads late rows.
    const clock = { t: 0 };
    const pair = sqlitePair(tempDir(), { batchSize: 100, maxRunDurationMs: 200, lookbackMs: 30_000 });
    seedContacts(pair.sourcePath, 2000, { perSecond: 20 });
    await pair.backfill();
    const newest = newestUpdatedAt(pair.sourcePath);
    // A steady stream of new rows, more than a run moves, and one late commit inside the window.
    seedContacts(pair.sourcePath, 5000, { firstId: 10_001, perSecond: 50, start: newest + 1000 });
    execSql(
      pair.sourcePath,
      `UPDATE contacts SET company = 'late', updated_at = '${iso(newest - 10_000)}' WHERE id = 3`,
    );
    for (let i = 0; i < 40; i++) await pair.run({ now: () => clock.t, wrapTarget: ticking(clock, 100) });
    const target = new DatabaseSync(pair.targetPath, { readOnly: true });
    expect(target.prepare('SELECT company FROM contacts WHERE id = 3').get()).toEqual({ company: 'late' });
    target.close();
  });

  it('goes on strictly after the high-water mark: no record at its updated_at is read twice', async () => {
    // The finding: 7,000 rows sharing the newest updated_at, into an append target: 7,000 duplicates;
    // into an upsert target the totals said `written 302,000` for 300,000 rows.
    const dir = tempDir();
    const pair = sqlitePair(dir, { batchSize: 1500, map: (r) => r });
    seedContacts(pair.sourcePath, 3000, { perSecond: 1000 });
    seedContacts(pair.sourcePath, 7000, { firstId: 3001, perSecond: 7000, start: Date.UTC(2025, 0, 1) });
    const file = join(dir, 'out.jsonl');
    const runInto = () => runIntoJsonl(pair, file);
    const first = await runInto();
    expect(first.checkpoint.phase).toBe('incremental');
    await runInto();
    const ids = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { id: number }).id);
    expect(ids).toHaveLength(10_000);
    expect(new Set(ids).size).toBe(10_000);
    const cp = await pair.store.getCheckpoint('contacts');
    expect(cp?.totals).toMatchObject({ read: 10_000, written: 10_000, unchanged: 0, rejected: 0 });
  });

  it('counts a record re-read unchanged by the lookback as unchanged, and does not append it again', async () => {
    const dir = tempDir();
    const pair = sqlitePair(dir, { batchSize: 1000, map: (r) => r, lookbackMs: 5000 });
    seedContacts(pair.sourcePath, 3000, { perSecond: 500 });
    const file = join(dir, 'out.jsonl');
    const runInto = () => runIntoJsonl(pair, file);
    await runInto();
    // One row changes inside the window (a late commit), one after it.
    const newest = newestUpdatedAt(pair.sourcePath);
    execSql(
      pair.sourcePath,
      `UPDATE contacts SET company = 'late', updated_at = '${iso(newest - 2000)}' WHERE id = 10`,
    );
    execSql(
      pair.sourcePath,
      `UPDATE contacts SET company = 'new', updated_at = '${iso(newest + 1000)}' WHERE id = 11`,
    );
    const again = await runInto();
    // The window (the last 5 s: 3,000 rows at 500 a second) is read again; only the two changes are written.
    expect(again.run.counters).toMatchObject({ written: 2, rejected: 0 });
    expect(again.run.counters.unchanged).toBeGreaterThanOrEqual(2000);
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; company: string });
    expect(lines).toHaveLength(3002);
    expect(
      lines
        .slice(-2)
        .map((l) => [l.id, l.company])
        .sort(),
    ).toEqual([
      [10, 'late'],
      [11, 'new'],
    ]);
  });

  it('closes a dead letter once a later run writes its record, and retries only with what the source holds now', async () => {
    // The finding: a record dead-lettered in run 1, fixed in the source and written by run 2, was
    // overwritten by `dead-letters retry` with the copy in its letter; letters stayed open.
    const pair = sqlitePair(tempDir(), { batchSize: 50 });
    seedContacts(pair.sourcePath, 200);
    execSql(pair.sourcePath, "UPDATE contacts SET email = 'broken' WHERE id IN (7, 120)");
    execSql(pair.targetPath, CHECKED_EMAIL);
    await pair.backfill();
    expect((await pair.store.getCheckpoint('contacts'))?.totals.rejected).toBe(2);
    // 7 is fixed the ordinary way (its updated_at moves); 120 is fixed without touching updated_at,
    // so no incremental run sees it, and only a retry that re-reads the source can send the fix.
    execSql(
      pair.sourcePath,
      `UPDATE contacts SET email = 'seven@x.com', updated_at = '${iso(Date.UTC(2025, 0, 1))}' WHERE id = 7`,
    );
    execSql(pair.sourcePath, "UPDATE contacts SET email = 'hundred-twenty@x.com' WHERE id = 120");
    const second = await pair.run();
    const letters = await pair.store.listDeadLetters({ sync: 'contacts', includeClosed: true });
    expect(letters.map((l) => [l.key, l.closedByRun, l.resolution])).toEqual([
      [[7], second.run.id, `written by run ${second.run.id}`],
      [[120], null, null],
    ]);
    // The retry sends 120 as the source holds it now; 7 is not sent again (its letter is closed).
    const outcome = await retryIn(pair);
    expect(outcome).toMatchObject({ retried: 1, written: 1, rejectedAgain: 0, gone: 0 });
    expect(await pair.store.listDeadLetters({ sync: 'contacts' })).toEqual([]);
    expect(digest(pair.targetPath)).toEqual(digest(pair.sourcePath));
    // Totals follow: every record written once, the two refusals counted; no letter left open.
    expect((await pair.store.getCheckpoint('contacts'))?.totals).toMatchObject({ written: 200, rejected: 2 });
    expect(await pair.store.countOpenDeadLetters('contacts')).toBe(0);
  });

  it('closes the letter of a record gone from the source instead of writing its old copy', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 50 });
    seedContacts(pair.sourcePath, 100);
    execSql(pair.sourcePath, "UPDATE contacts SET email = 'broken' WHERE id = 9");
    execSql(pair.targetPath, CHECKED_EMAIL);
    await pair.backfill();
    execSql(pair.sourcePath, 'DELETE FROM contacts WHERE id = 9');
    const outcome = await retryIn(pair);
    expect(outcome).toMatchObject({ retried: 1, written: 0, gone: 1 });
    const [letter] = await pair.store.listDeadLetters({ sync: 'contacts', includeClosed: true });
    expect(letter?.resolution).toMatch(/gone from the source/);
  });

  it('never moves the checkpoint back from a dead-letter retry that raced a run', async () => {
    // The finding: the retry read the checkpoint before it held the sync, and wrote that copy back.
    const pair = sqlitePair(tempDir(), { batchSize: 50 });
    seedContacts(pair.sourcePath, 100);
    execSql(pair.sourcePath, "UPDATE contacts SET email = 'broken' WHERE id = 9");
    execSql(pair.targetPath, CHECKED_EMAIL);
    await pair.backfill();
    seedContacts(pair.sourcePath, 100, { firstId: 1001, start: Date.UTC(2025, 0, 1) });
    let raced = false;
    const racing: Store = Object.create(pair.store, {
      getCheckpoint: {
        value: async (sync: string) => {
          const read = await pair.store.getCheckpoint(sync);
          if (!raced) {
            raced = true;
            await pair.run();
          }
          return read;
        },
      },
    });
    await retryIn(pair, racing);
    expect(raced).toBe(true);
    const cp = await pair.store.getCheckpoint('contacts');
    expect(cp?.cursor).toMatchObject({ k: [iso(Date.UTC(2025, 0, 1)), 1100] });
    await pair.run();
    // Every row but the one still refused (9) is in the target: none was lost to a moved-back cursor.
    expect(digest(pair.targetPath).count).toBe(199);
  });

  it('refuses the late batch of a run that lost its hold: the checkpoint stays where the next run left it', async () => {
    const pair = sqlitePair(tempDir(), { batchSize: 100 });
    seedContacts(pair.sourcePath, 500);
    let release: () => void = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let firstWrite = true;
    const stalling = (t: Target): Target => ({
      write: async (records, req) => {
        if (firstWrite) {
          firstWrite = false;
          await held;
        }
        return t.write(records, req);
      },
    });
    let runId = 0;
    const stuck = pair.run({ wrapTarget: stalling, onStart: (run) => (runId = run.id) });
    while (runId === 0) await new Promise((r) => setTimeout(r, 5));
    // The runtime gives up on it (past its deadline) and the lane goes to another run.
    await pair.store.finishRun(runId, { holder: `test:${process.pid}`, status: 'timed_out', more: true });
    await pair.backfill();
    const after = await pair.store.getCheckpoint('contacts');
    release();
    await expect(stuck).rejects.toMatchObject({ code: 'RUN_FENCED' });
    expect(await pair.store.getCheckpoint('contacts')).toEqual(after);
    expect((await pair.store.getRun(runId))?.status).toBe('timed_out');
  });

  it('moves records keyed by integers beyond 2^53 exactly, checkpoints and dead letters included', async () => {
    // The finding: `Value is too large to be represented as a JavaScript number [INTERNAL]`.
    const pair = sqlitePair(tempDir(), { batchSize: 2, map: (r) => r });
    execSql(
      pair.sourcePath,
      'CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT, updated_at TEXT NOT NULL)',
    );
    const ids = ['9007199254740993', '9007199254740995', '9223372036854775807', '42', '9007199254740994'];
    for (const id of ids)
      execSql(pair.sourcePath, `INSERT INTO contacts VALUES (${id}, 'e${id}@x.com', '2024-01-01T00:00:00Z')`);
    execSql(pair.sourcePath, "UPDATE contacts SET email = 'broken' WHERE id = 9007199254740995");
    execSql(
      pair.targetPath,
      "CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT CHECK (email LIKE '%@%'), updated_at TEXT)",
    );
    const outcome = await pair.run();
    expect(outcome.run.counters).toMatchObject({ read: 5, written: 4, rejected: 1 });
    const target = new DatabaseSync(pair.targetPath, { readOnly: true });
    const rows = target.prepare('SELECT CAST(id AS TEXT) AS id FROM contacts ORDER BY id').all();
    target.close();
    expect(rows.map((r) => r.id)).toEqual([
      '42',
      '9007199254740993',
      '9007199254740994',
      '9223372036854775807',
    ]);
    const [letter] = await pair.store.listDeadLetters({ sync: 'contacts' });
    expect(letter?.key).toEqual([9007199254740995n]);
    const cp = await pair.store.getCheckpoint('contacts');
    expect(cp?.highWaterMark).toMatchObject({ key: [9223372036854775807n] });
  });
});
