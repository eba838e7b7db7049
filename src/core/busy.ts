import { setTimeout as sleep } from 'node:timers/promises';

/**
 * SQLite waits for another connection's lock synchronously, holding up the event loop: connections
 * keep its own wait short (`SQLITE_BUSY_WAIT_MS`) and longer waits are awaited here, between tries,
 * so webhooks, /healthz and other lanes go on while another process holds a file.
 */
export const SQLITE_BUSY_WAIT_MS = 20;

/** SQLITE_BUSY or SQLITE_LOCKED: another connection holds the lock for now. */
export function isSqliteBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown } | null)?.errcode;
  return typeof code === 'number' && ((code & 0xff) === 5 || (code & 0xff) === 6);
}

/**
 * Runs `begin` (a `BEGIN IMMEDIATE`) until it gets the lock, then `body` at once, in the same turn of
 * the event loop: nothing else on the connection can start between them. After a busy answer it
 * waits a little longer each time (2 ms doubling to 100 ms), for `giveUpMs` at most, or until
 * `signal` aborts; then the last busy error is thrown, wrapped by `giveUp`.
 */
export async function whileBusy<T>(
  begin: () => void,
  body: () => T,
  options: { giveUpMs: number; signal?: AbortSignal; giveUp: (err: unknown) => Error },
): Promise<T> {
  const started = Date.now();
  for (let pause = 2; ; pause = Math.min(pause * 2, 100)) {
    try {
      begin();
    } catch (err) {
      if (!isSqliteBusy(err)) throw err;
      if (Date.now() - started > options.giveUpMs) throw options.giveUp(err);
      await sleep(pause, undefined, options.signal ? { signal: options.signal } : {});
      continue;
    }
    return body();
  }
}
