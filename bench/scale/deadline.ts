import { readdirSync, readFileSync } from 'node:fs';

/** This process's direct children (Linux: `/proc/self/task/<tid>/children`); empty elsewhere. */
function childPids(): number[] {
  try {
    return readdirSync('/proc/self/task').flatMap((tid) =>
      readFileSync(`/proc/self/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    // Not Linux: no deadline can be enforced on the children; the bench runs to the end.
    return [];
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone: nothing to stop.
  }
}

/**
 * Runs `fn`, which starts child processes of this one (a `sluice backfill`); if it has not settled
 * within `ms`, every direct child started meanwhile — not those in `keep`, nor those running before —
 * is sent SIGTERM (Sluice stops after the batch in hand), and SIGKILL 10 s later. `fn`'s promise
 * then rejects as the child exits, with a message saying the deadline stopped it.
 */
export async function withDeadline<T>(ms: number, keep: readonly number[], fn: () => Promise<T>): Promise<T> {
  const before = new Set([...childPids(), ...keep]);
  let hit = false;
  const stopped: number[] = [];
  let kill: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    hit = true;
    for (const pid of childPids()) {
      if (before.has(pid)) continue;
      stopped.push(pid);
      signal(pid, 'SIGTERM');
    }
    kill = setTimeout(() => {
      for (const pid of stopped) signal(pid, 'SIGKILL');
    }, 10_000);
  }, ms);
  try {
    return await fn();
  } catch (err) {
    if (hit) throw new Error(`stopped at its deadline (${Math.round(ms / 1000)} s)`, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
    clearTimeout(kill);
  }
}
