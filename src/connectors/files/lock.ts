import { open, readFile, stat, unlink } from 'node:fs/promises';
import { ConnectorError } from '../../core/errors.ts';
import { currentHolder, isHolderGone } from '../../core/holder.ts';

// A lock file found empty is one being written; older than this, its writer died in between.
const EMPTY_LOCK_STALE_MS = 10_000;

/**
 * The one writer of an append-only file: `<path>.sluice.lock`, created exclusively, holding the
 * writer's `host:pid`. Two writers would each append after the length they last confirmed and cut
 * what the other confirmed (see `JsonlTarget`), so a second writer, in this process or another, is
 * refused with TARGET_BUSY (transient: it may well succeed once the first is done). A lock left by a
 * process that died on this host is taken over; one of another host is only ever released by it.
 */
export class WriterLock {
  private readonly path: string;
  private readonly holder: string;

  private constructor(path: string, holder: string) {
    this.path = path;
    this.holder = holder;
  }

  static async take(file: string): Promise<WriterLock> {
    const path = `${file}.sluice.lock`;
    const holder = currentHolder();
    // Twice at most: once more after removing a dead writer's lock (another taker may win that race).
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await open(path, 'wx');
        try {
          await fh.writeFile(holder);
        } finally {
          await fh.close();
        }
        return new WriterLock(path, holder);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const other = await readFile(path, 'utf8').catch(() => null);
        if (other === null) continue; // released meanwhile
        if (!(await isStale(path, other.trim()))) throw busy(file, other.trim(), path);
        await unlink(path).catch(() => undefined);
      }
    }
    throw busy(file, 'another writer', path);
  }

  /** Removes the lock if it is still this writer's. */
  async release(): Promise<void> {
    const current = await readFile(this.path, 'utf8').catch(() => null);
    if (current?.trim() === this.holder) await unlink(this.path).catch(() => undefined);
  }
}

async function isStale(path: string, holder: string): Promise<boolean> {
  if (holder !== '') return isHolderGone(holder, Number.POSITIVE_INFINITY, Date.now());
  const changed = await stat(path).then(
    (s) => s.mtimeMs,
    () => 0,
  );
  return Date.now() - changed > EMPTY_LOCK_STALE_MS;
}

function busy(file: string, holder: string, lock: string): ConnectorError {
  return new ConnectorError(
    'TARGET_BUSY',
    `${file} is being written by ${holder}: a JSON Lines file has one writer at a time (two syncs, ` +
      `or a backfill's partitions moving at once, cannot share it). If no such writer is running, remove ${lock}.`,
    { transient: true },
  );
}
