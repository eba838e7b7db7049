import type { NewRunRequest } from '../core/ports.ts';
import type { RunTrigger } from '../core/types.ts';
import { laneOf } from './lanes.ts';
import type { Schedule, Scheduler } from './scheduler.ts';
import type { Workspace } from './workspace.ts';

/** What the schedules need of a runtime's queue. */
export interface TickQueue {
  /** The sync has a run queued or running. */
  busy(sync: string): Promise<boolean>;
  /** The attempt a scheduled run of the sync makes at the batch now at its checkpoint (1 for a first try). */
  nextAttempt(sync: string): Promise<number>;
  /**
   * Queues a request. `tick` names the schedule's firing (sync, kind, time): runtimes whose processes
   * each run the schedules queue one request per firing, not one per process.
   */
  enqueue(request: NewRunRequest, tick?: string): Promise<void>;
}

/**
 * The runs schedules bring, the same in every runtime: a scheduled backfill's next run (or its next
 * attempt at a failing batch), a watchdog restarting a broken triggered chain, and an incremental
 * sync's runs once caught up.
 */
export class Ticks {
  private readonly ws: Workspace;
  private readonly bundles: ReadonlyMap<string, string>;
  private readonly queue: TickQueue;

  constructor(ws: Workspace, bundles: ReadonlyMap<string, string>, queue: TickQueue) {
    this.ws = ws;
    this.bundles = bundles;
    this.queue = queue;
  }

  /** Adds every sync's schedules to `scheduler`; `guard` wraps each tick (stopping, error reports). */
  schedule(scheduler: Scheduler, guard: (sync: string, tick: () => Promise<void>) => () => void): void {
    for (const [name, sync] of this.ws.config.syncs) {
      if (sync.rerun.mode === 'scheduled') {
        const every = sync.rerun.every;
        const schedule: Schedule = every !== undefined ? { every } : { cron: sync.rerun.cron! };
        scheduler.add(
          schedule,
          guard(name, () => this.scheduled(name, firing(name, 'schedule', schedule))),
        );
      } else if (sync.rerun.watchdog) {
        const schedule = sync.rerun.watchdog;
        scheduler.add(
          schedule,
          guard(name, () => this.continueChain(name, 'watchdog', firing(name, 'watchdog', schedule))),
        );
      }
      if (sync.incremental) {
        const schedule = sync.incremental;
        scheduler.add(
          schedule,
          guard(name, () => this.incremental(name, firing(name, 'incremental', schedule))),
        );
      }
    }
  }

  /** Queues each request whose sync has nothing queued or running (a partitioned backfill's partitions). */
  async enqueueIdle(requests: readonly NewRunRequest[]): Promise<void> {
    for (const request of requests) {
      if (!(await this.queue.busy(request.sync))) await this.queue.enqueue(request);
    }
  }

  /** Starts or resumes a sync whose backfill is not done and that has nothing queued or running. */
  async continueChain(sync: string, trigger: RunTrigger, tick?: string): Promise<void> {
    if (this.ws.sync(sync).rerun.mode !== 'triggered') return;
    const checkpoint = await this.ws.store.getCheckpoint(sync);
    if (checkpoint?.phase === 'incremental') return;
    if (await this.queue.busy(sync)) return;
    // A sync that never ran starts its backfill; one that stopped part-way resumes it.
    const why: RunTrigger = checkpoint ? trigger : 'backfill';
    await this.queue.enqueue({ sync, lane: laneOf(sync, this.bundles, why), trigger: why }, tick);
  }

  /** A scheduled backfill's tick: the next run, or another attempt at the batch that failed. */
  private async scheduled(sync: string, tick: string): Promise<void> {
    const checkpoint = await this.ws.store.getCheckpoint(sync);
    if (checkpoint?.phase === 'incremental') return;
    if (await this.queue.busy(sync)) return;
    const attempt = await this.queue.nextAttempt(sync);
    // Out of attempts with nothing set aside (a failure before the first batch): failed, until a
    // user requests a run.
    if (attempt > this.ws.sync(sync).retries.attempts) return;
    await this.queue.enqueue(
      {
        sync,
        lane: laneOf(sync, this.bundles, 'schedule'),
        trigger: attempt > 1 ? 'retry' : 'schedule',
        attempt,
        coalesce: true,
      },
      tick,
    );
  }

  private async incremental(sync: string, tick: string): Promise<void> {
    const checkpoint = await this.ws.store.getCheckpoint(sync);
    if (checkpoint?.phase !== 'incremental') return;
    await this.queue.enqueue(
      { sync, lane: laneOf(sync, this.bundles, 'schedule'), trigger: 'schedule', coalesce: true },
      tick,
    );
  }
}

/**
 * Names a schedule's firing so that processes ticking the same schedule agree on it: the interval
 * it falls in (epoch-aligned) for `every`, the second for a cron expression (croner fires on it).
 */
function firing(sync: string, kind: string, schedule: Schedule): string {
  const slot =
    'every' in schedule
      ? Math.floor(Date.now() / Math.max(1, schedule.every))
      : Math.floor(Date.now() / 1000);
  return `${sync}\u0000${kind}\u0000${slot}`;
}
