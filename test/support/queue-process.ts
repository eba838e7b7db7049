/**
 * One process working the run queue of a shared SQLite store file, for tests that drive the queue
 * from several processes at once. It opens the store, prints `{"op":"ready"}`, then answers each
 * command read from stdin (one JSON object a line) with one JSON line on stdout:
 *
 * - `{"op":"claim","limit":n,"leaseMs":ms}` → `{"op":"claim","claimed":[RunRequest…]}`
 * - `{"op":"recover"}` → `{"op":"recover","recovered":[RunRequest…]}`
 * - `{"op":"finish","ids":[…]}` → `{"op":"finish"}`
 * - `{"op":"drain","seed":n,"ledger":path}` → `{"op":"drain","claimed":n}`: claims and finishes
 *   requests until none is queued, holding each a few milliseconds. Around each one it writes to the
 *   ledger, a second SQLite file shared by the processes: the claim (a request claimed twice breaks
 *   its primary key) and the occupation of its lane, taken after the claim and given back before the
 *   finish (a lane occupied twice breaks its primary key). Either is recorded as a violation.
 *
 *   node test/support/queue-process.ts <store.db>
 *
 * Import only its types: importing it runs it.
 */

import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { currentHolder } from '../../src/core/holder.ts';
import { claimOf } from '../../src/core/ports.ts';
import { SqliteStore } from '../../src/store/sqlite/store.ts';
import { prng } from './seed.ts';

export type QueueCommand =
  | { op: 'claim'; limit: number; leaseMs: number }
  | { op: 'recover' }
  | { op: 'finish'; ids: number[] }
  | { op: 'drain'; seed: number; ledger: string };

const LEDGER_SCHEMA = `PRAGMA journal_mode = WAL;
  CREATE TABLE IF NOT EXISTS claims (request_id INTEGER PRIMARY KEY, lane TEXT NOT NULL, holder TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS occupied (lane TEXT PRIMARY KEY, request_id INTEGER NOT NULL, holder TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS violations (seq INTEGER PRIMARY KEY, what TEXT NOT NULL)`;

const holder = currentHolder();
const store = SqliteStore.open(process.argv[2]!);
const queue = store.queue;
const reply = (message: object) => process.stdout.write(`${JSON.stringify(message)}\n`);

async function drain(seed: number, ledgerPath: string): Promise<number> {
  const random = prng(seed);
  const ledger = new DatabaseSync(ledgerPath, { timeout: 10_000 });
  // Both processes make the ledger at once: switching a new file to WAL does not wait on the busy
  // timeout, so the one that loses that race tries again.
  for (let attempt = 1; ; attempt++) {
    try {
      ledger.exec(LEDGER_SCHEMA);
      break;
    } catch (err) {
      if ((err as { errcode?: number }).errcode !== 5 || attempt >= 50) throw err;
      await sleep(10);
    }
  }
  const violation = (what: string) => ledger.prepare('INSERT INTO violations (what) VALUES (?)').run(what);
  let claimed = 0;
  try {
    while (true) {
      const taken = (await queue.claim({ holder, leaseMs: 60_000, limit: 1 + Math.floor(random() * 3) })).map(
        (c) => c.request,
      );
      if (taken.length === 0) {
        // Nothing due for us: lanes busy in the other process, or the queue is empty.
        if ((await queue.list({ status: 'queued', limit: 1 })).length === 0) return claimed;
        await sleep(1);
        continue;
      }
      claimed += taken.length;
      await Promise.all(
        taken.map(async (request) => {
          try {
            ledger
              .prepare('INSERT INTO claims (request_id, lane, holder) VALUES (?, ?, ?)')
              .run(request.id, request.lane, holder);
          } catch (err) {
            violation(`request ${request.id} claimed again by ${holder}: ${(err as Error).message}`);
          }
          let occupying = true;
          try {
            ledger
              .prepare('INSERT INTO occupied (lane, request_id, holder) VALUES (?, ?, ?)')
              .run(request.lane, request.id, holder);
          } catch (err) {
            occupying = false;
            const by = ledger
              .prepare('SELECT request_id, holder FROM occupied WHERE lane = ?')
              .get(request.lane);
            violation(
              `lane ${request.lane}: request ${request.id} (${holder}) running while ${JSON.stringify(by)} was: ${(err as Error).message}`,
            );
          }
          // Held a while, as a run would be, so the other process's claims overlap with it.
          await sleep(Math.floor(random() * 4));
          if (occupying)
            ledger
              .prepare('DELETE FROM occupied WHERE lane = ? AND request_id = ?')
              .run(request.lane, request.id);
          await queue.finish(claimOf(request), { status: 'done' });
        }),
      );
    }
  } finally {
    ledger.close();
  }
}

async function handle(command: QueueCommand): Promise<object> {
  switch (command.op) {
    case 'claim':
      return { op: 'claim', claimed: (await queue.claim({ holder, ...command })).map((c) => c.request) };
    case 'recover':
      return { op: 'recover', recovered: await queue.recover() };
    case 'finish':
      for (const id of command.ids) {
        const request = await queue.get(id);
        if (request) await queue.finish(claimOf(request), { status: 'done' });
      }
      return { op: 'finish' };
    case 'drain':
      return { op: 'drain', claimed: await drain(command.seed, command.ledger) };
  }
}

reply({ op: 'ready', holder });
for await (const line of createInterface({ input: process.stdin })) {
  reply(await handle(JSON.parse(line) as QueueCommand));
}
await store.close();
