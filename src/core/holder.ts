import { hostname } from 'node:os';

// Asked once: the host's name is a system call, and a run asks for its holder several times.
let host: string | null = null;
const thisHost = (): string => (host ??= hostname());

// Who holds something (a run, a lane, a file) is named by its process, and whether it is still there
// is asked of the operating system: the one thing core asks it, no data moves.

/** Names the process that holds a run (or a file): `host:pid`. */
export function currentHolder(): string {
  return `${thisHost()}:${process.pid}`;
}

/**
 * True when a run's holder is certainly gone: its lease expired, or it ran on this host and its
 * process no longer exists (a SIGKILLed `sluice backfill` need not wait out its lease).
 */
export function isHolderGone(holder: string, leaseUntil: number, now: number): boolean {
  if (leaseUntil < now) return true;
  const at = holder.lastIndexOf(':');
  const pid = Number(holder.slice(at + 1));
  if (holder.slice(0, at) !== thisHost() || !Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
