/**
 * A SQLite → SQLite backfill of `<dir>/a.db` into `<dir>/b.db` (store `<dir>/state.db`) in a process
 * of its own, for tests that SIGKILL it. It drives the engine as the CLI does, through one of its
 * two write paths:
 *
 * - `native`: no `map`, so the SQLite target copies each batch from the source file itself;
 * - `ordinary`: with a `map` (a copy of each record), so records pass through Sluice and `write`.
 *
 * It prints one JSON line per event on stdout, so the parent can tell which path each batch took
 * (only the native path calls `copyFrom`; only the ordinary one calls `map` and `write`) and where
 * it is. With `--hang-after-write <n>` it stops dead once the target confirmed its n-th batch and
 * before the checkpoint of that batch is saved: a synchronous wait nothing can interrupt but a
 * signal, so the parent's SIGKILL finds it exactly there.
 *
 *   node test/support/backfill-child.ts <dir> native|ordinary [--hang-after-write <n>]
 */

import { currentHolder } from '../../src/core/holder.ts';
import type { Target } from '../../src/core/ports.ts';
import type { Row } from '../../src/core/types.ts';
import { sqlitePair } from './harness.ts';

export type ChildEvent =
  | { event: 'start'; pid: number }
  | { event: 'copy'; batch: number; after: unknown[] | null; upTo: unknown[] | null }
  | { event: 'copied'; batch: number; written: number | null }
  | { event: 'write'; batch: number; first: unknown; last: unknown; count: number }
  | { event: 'written'; batch: number; written: number }
  | { event: 'hanging'; batch: number }
  | { event: 'done'; maps: number; runs: number };

const [dir, path, flag, value] = process.argv.slice(2);
if (!dir || (path !== 'native' && path !== 'ordinary')) {
  process.stderr.write('usage: backfill-child.ts <dir> native|ordinary [--hang-after-write <n>]\n');
  process.exit(2);
}
const hangAfter = flag === '--hang-after-write' ? Number(value) : null;

const emit = (event: ChildEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);

let maps = 0;
let batch = 0;

/** Past the target's confirmation of batch `n`, before the engine saves its checkpoint. */
function confirmed(n: number): void {
  if (n !== hangAfter) return;
  emit({ event: 'hanging', batch: n });
  // Blocks this thread for good: no timer, no promise, no checkpoint runs until the SIGKILL.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

/** The real target, reporting each batch; it offers `copyFrom` exactly where the real one does. */
function reporting(target: Target): Target {
  const copyFrom = target.copyFrom?.bind(target);
  return {
    async write(records, req) {
      batch += 1;
      emit({ event: 'write', batch, first: records[0]?.id, last: records.at(-1)?.id, count: records.length });
      const result = await target.write(records, req);
      emit({ event: 'written', batch, written: result.written });
      confirmed(batch);
      return result;
    },
    ...(copyFrom
      ? {
          async copyFrom(location, range, req) {
            batch += 1;
            const { after, upTo } = range as { after: unknown[] | null; upTo: unknown[] | null };
            emit({ event: 'copy', batch, after, upTo });
            const result = await copyFrom(location, range, req);
            emit({ event: 'copied', batch, written: result?.written ?? null });
            if (result) confirmed(batch);
            return result;
          },
        }
      : {}),
    ...(target.database !== undefined ? { database: target.database } : {}),
    close: () => target.close?.() ?? Promise.resolve(),
  };
}

const map =
  path === 'ordinary'
    ? (record: Row) => {
        maps += 1;
        return { ...record };
      }
    : null;
const pair = sqlitePair(dir, { batchSize: 1000, map });
emit({ event: 'start', pid: process.pid });
let runs = 0;
// As `sluice backfill` does: runs until the backfill is done, each under this process's holder, so
// a later process finds the holder of a run this one left behind gone.
while ((await pair.store.getCheckpoint('contacts'))?.phase !== 'incremental') {
  runs += 1;
  await pair.run({
    stopAfterBackfill: true,
    trigger: 'backfill',
    holder: currentHolder(),
    wrapTarget: reporting,
  });
}
await pair.store.close();
emit({ event: 'done', maps, runs });
