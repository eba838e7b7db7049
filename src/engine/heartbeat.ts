import { RunFencedError } from '../core/errors.ts';
import type { RunRecord, Store } from '../core/ports.ts';

/**
 * Keeps a run's lease alive while it runs: every third of the lease it is extended, so a process
 * that dies stops renewing and any live process may take the run's lane over once the lease runs
 * out. When a renewal finds the run no longer held (timed out, taken over by another process),
 * `signal` aborts: the run stops, and the store refuses whatever it still tries to save.
 */
export class Heartbeat {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private beating: Promise<void> | null = null;

  constructor(store: Store, run: RunRecord, leaseMs: number) {
    this.timer = setInterval(
      () => {
        // One renewal at a time: a slow store must not pile them up.
        this.beating ??= this.renew(store, run, leaseMs).finally(() => {
          this.beating = null;
        });
      },
      Math.max(10, Math.floor(leaseMs / 3)),
    );
    // The heartbeat never keeps a process alive on its own.
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  private async renew(store: Store, run: RunRecord, leaseMs: number): Promise<void> {
    try {
      if (await store.renewRun(run.id, run.holder, leaseMs)) return;
      this.controller.abort(new RunFencedError(run.sync, run.id, 'the batch in hand'));
    } catch {
      // The store is momentarily unreachable (busy, a dropped connection): the lease has two more
      // renewals of slack, and a lease that does run out only lets another process take over.
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
