import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { RunRequest } from '../../src/core/ports.ts';
import { SqliteStore } from '../../src/store/sqlite/store.ts';
import type { QueueCommand } from '../support/queue-process.ts';
import { seeded, seeds } from '../support/seed.ts';
import { tempDir } from '../support/tmp.ts';

const CHILD = fileURLToPath(new URL('../support/queue-process.ts', import.meta.url));

type Reply = { op: string; holder?: string; claimed?: RunRequest[] | number; recovered?: RunRequest[] };

/** `queue-process.ts` on `storePath`: send a command, get its answer; fails with its stderr if it dies. */
async function queueProcess(storePath: string) {
  const child = spawn(process.execPath, [CHILD, storePath], { stdio: 'pipe' });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const replies: Reply[] = [];
  const waiting: ((r: Reply) => void)[] = [];
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      const reply = JSON.parse(line) as Reply;
      const next = waiting.shift();
      if (next) next(reply);
      else replies.push(reply);
    }
  });
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.on('exit', (code, signal) => resolve(signal ?? code)),
  );
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  onTestFinished(() => {
    if (!gone) child.kill('SIGKILL');
  });
  const answer = () =>
    Promise.race([
      new Promise<Reply>((resolve) => {
        const ready = replies.shift();
        if (ready) resolve(ready);
        else waiting.push(resolve);
      }),
      exited.then((how) => {
        throw new Error(`queue process ${child.pid} ended (${how}) before answering: ${stderr}`);
      }),
    ]);
  const { holder } = await answer();
  return {
    child,
    holder: holder!,
    exited,
    async send(command: QueueCommand): Promise<Reply> {
      child.stdin.write(`${JSON.stringify(command)}\n`);
      return answer();
    },
  };
}

const ids = (requests: RunRequest[]) => requests.map((r) => r.id).sort((a, b) => a - b);

describe('SqliteStore.queue shared by two processes', () => {
  it.each(seeds(20261203))(
    'claims each request once and never runs two of one lane at once, with both processes claiming ($label)',
    async ({ seed }) => {
      const random = seeded(seed);
      const dir = tempDir('queue');
      const storePath = join(dir, 'state.db');
      const ledgerPath = join(dir, 'ledger.db');
      const store = SqliteStore.open(storePath);
      onTestFinished(() => store.close());
      // 300 requests over 6 lanes in a seeded order: at most 6 can run at once, so the two
      // processes, each taking up to 3 at a time, keep finding lanes the other one holds.
      const lanes = Array.from({ length: 6 }, (_, i) => `bundle:b${i}`);
      const enqueued: number[] = [];
      for (let i = 0; i < 300; i++) {
        const lane = lanes[Math.floor(random() * lanes.length)]!;
        enqueued.push((await store.queue.enqueue({ sync: `s${i % 20}`, lane, trigger: 'api' })).id);
      }
      const [a, b] = await Promise.all([queueProcess(storePath), queueProcess(storePath)]);
      const [fromA, fromB] = await Promise.all([
        a.send({ op: 'drain', seed: seed ^ 0xa, ledger: ledgerPath }),
        b.send({ op: 'drain', seed: seed ^ 0xb, ledger: ledgerPath }),
      ]);

      const ledger = new DatabaseSync(ledgerPath, { readOnly: true });
      const violations = ledger.prepare('SELECT what FROM violations ORDER BY seq').all();
      const claims = ledger.prepare('SELECT request_id, holder FROM claims ORDER BY request_id').all();
      ledger.close();
      expect(violations, 'a request claimed twice, or two requests of one lane running at once').toEqual([]);
      expect(claims.map((c) => Number(c.request_id))).toEqual(enqueued);
      // Both processes took part; otherwise nothing here was concurrent.
      const by = (h: string) => claims.filter((c) => c.holder === h).length;
      expect(
        by(a.holder),
        `claims: ${a.holder} ${by(a.holder)}, ${b.holder} ${by(b.holder)}`,
      ).toBeGreaterThan(10);
      expect(
        by(b.holder),
        `claims: ${a.holder} ${by(a.holder)}, ${b.holder} ${by(b.holder)}`,
      ).toBeGreaterThan(10);
      expect(Number(fromA.claimed) + Number(fromB.claimed)).toBe(300);
      const done = await store.queue.list({ status: 'done', limit: 1000 });
      expect(ids(done)).toEqual(enqueued);
    },
  );

  it('leaves a live holder its requests, and requeues those of a holder SIGKILLed while holding them', async () => {
    const dir = tempDir('queue');
    const storePath = join(dir, 'state.db');
    const store = SqliteStore.open(storePath);
    onTestFinished(() => store.close());
    // Two requests in each of four lanes.
    const lanes = ['bundle:a', 'bundle:b', 'bundle:c', 'bundle:d'];
    for (const round of [1, 2])
      for (const lane of lanes) await store.queue.enqueue({ sync: `${lane}-${round}`, lane, trigger: 'api' });
    const [holding, other] = await Promise.all([queueProcess(storePath), queueProcess(storePath)]);

    const held = (await holding.send({ op: 'claim', limit: 3, leaseMs: 600_000 })).claimed as RunRequest[];
    expect(held).toHaveLength(3);
    const heldLanes = new Set(held.map((r) => r.lane));
    // While the holder lives (and its lease runs), recovery takes nothing from it and claims skip its lanes.
    expect((await other.send({ op: 'recover' })).recovered).toEqual([]);
    const free = (await other.send({ op: 'claim', limit: 8, leaseMs: 600_000 })).claimed as RunRequest[];
    expect(free.map((r) => r.lane)).toEqual(lanes.filter((l) => !heldLanes.has(l)));
    await other.send({ op: 'finish', ids: ids(free) });
    expect((await other.send({ op: 'claim', limit: 8, leaseMs: 600_000 })).claimed).toEqual([
      expect.objectContaining({ lane: lanes.find((l) => !heldLanes.has(l)) }),
    ]);

    holding.child.kill('SIGKILL');
    expect(await holding.exited).toBe('SIGKILL');
    // The holder is gone: the other process's recovery puts exactly its requests back in the queue.
    const recovered = (await other.send({ op: 'recover' })).recovered as RunRequest[];
    expect(ids(recovered)).toEqual(ids(held));
    for (const request of held) {
      expect(await store.queue.get(request.id)).toMatchObject({ status: 'queued', holder: null });
    }
    const retaken = (await other.send({ op: 'claim', limit: 8, leaseMs: 600_000 })).claimed as RunRequest[];
    expect(ids(retaken)).toEqual(ids(held));
    expect(retaken.every((r) => r.holder === other.holder)).toBe(true);
    // Recovery happens once: a second pass finds nothing more.
    expect((await other.send({ op: 'recover' })).recovered).toEqual([]);
  });
});
