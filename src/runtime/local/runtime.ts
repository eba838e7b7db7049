import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { asSluiceError, SluiceError } from '../../core/errors.ts';
import { afterRun, type RunResult } from '../../core/policy.ts';
import {
  type Claim,
  claimOf,
  type NewRunRequest,
  type RunQueue,
  type RunRecord,
  type RunRequest,
} from '../../core/ports.ts';
import type { Json, RunTrigger } from '../../core/types.ts';
import { currentHolder } from '../../store/holder.ts';
import { bundleIndex, laneOf } from '../lanes.ts';
import type { RunEnded, Runtime, RuntimeEvents } from '../port.ts';
import type { Workspace } from '../workspace.ts';
import { type Schedule, Scheduler } from './scheduler.ts';

export type LocalRuntimeOptions = {
  /** Runs at once across all lanes. @defaultValue config `runtime.concurrency` */
  concurrency?: number;
  /** Queue poll interval besides being woken. @defaultValue config `runtime.poll` */
  pollMs?: number;
  /** Grace after maxRunDuration before a run is aborted. @defaultValue config `runtime.grace` */
  graceMs?: number;
  holder?: string;
};

const PRUNE_EVERY_MS = 3_600_000;
// Each sync keeps at least its newest runs, whatever their age: status and lag read them.
const KEEP_RUNS = 100;

/** A run under way: its claim on the request, its run once recorded, and the promise that ends with it. */
type InFlight = { claim: Claim; done: Promise<void>; run: RunRecord | null };

// A run whose sync is busy elsewhere (a CLI run, another lane) waits this long before trying again.
const BUSY_RETRY_MS = 250;

/**
 * The in-process runtime on the embedded store: a durable queue in the store's SQLite file, lanes
 * that run one request at a time, schedules, and the rerun and retry policies of core/policy.
 */
export class LocalRuntime extends EventEmitter<RuntimeEvents> implements Runtime {
  private readonly ws: Workspace;
  private readonly queue: RunQueue;
  private readonly concurrency: number;
  private readonly pollMs: number;
  private readonly graceMs: number;
  private readonly holder: string;
  private readonly bundles: Map<string, string>;
  private readonly leaseMs: number;
  private readonly scheduler = new Scheduler();
  /** Runs under way, by claim (a request claimed again after a freeze is another entry). */
  private readonly inFlight = new Map<string, InFlight>();
  private readonly stopController = new AbortController();
  /** Aborted when a shutdown's grace runs out: the runs still going stop at once. */
  private readonly killController = new AbortController();
  private renewals: NodeJS.Timeout | null = null;
  private pruning: NodeJS.Timeout | null = null;
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  private loopDone: Promise<void> | null = null;

  constructor(ws: Workspace, options: LocalRuntimeOptions = {}) {
    super();
    if (!ws.store.queue) {
      throw new SluiceError(
        'RUNTIME_NEEDS_QUEUE',
        'the local runtime keeps its queue in the embedded SQLite store; set store to a SQLite path',
      );
    }
    this.ws = ws;
    this.queue = ws.store.queue;
    const runtime = ws.config.config.runtime;
    this.concurrency = options.concurrency ?? runtime.concurrency;
    this.pollMs = options.pollMs ?? runtime.poll;
    this.graceMs = options.graceMs ?? runtime.grace;
    this.holder = options.holder ?? currentHolder();
    this.leaseMs = runtime.lease;
    this.bundles = bundleIndex(ws.config.config.bundles);
  }

  async start(): Promise<void> {
    await this.queue.recover();
    for (const name of this.ws.syncNames()) await this.continueChain(name, 'recovery');

    this.schedule();
    // The requests this process runs keep their lease while they run; a dead process's lapse.
    this.renewals = setInterval(() => this.renewLeases(), Math.max(10, Math.floor(this.leaseMs / 3)));
    this.renewals.unref();
    this.prune();
    this.pruning = setInterval(() => this.prune(), PRUNE_EVERY_MS);
    this.pruning.unref();
    this.loopDone = this.loop();
  }

  /** History past `runtime.retention` goes, so the store and its per-poll queries stay small. */
  private prune(): void {
    const { retention } = this.ws.config.config.runtime;
    this.ws.store.prune(Date.now() - retention, KEEP_RUNS).catch((err) => this.report(null, err));
  }

  private renewLeases(): void {
    for (const { claim } of this.inFlight.values()) {
      this.queue.renew(claim, this.leaseMs).catch((err) => this.report(null, err));
    }
  }

  /** An error the runtime could not act on: an event for listeners (a host), a line on stderr otherwise. */
  private report(sync: string | null, err: unknown): void {
    const error = asSluiceError(err);
    if (this.listenerCount('error') > 0) this.emit('error', { sync, error });
    else process.stderr.write(`sluice runtime: ${sync ? `${sync}: ` : ''}${error.code}: ${error.message}\n`);
  }

  async request(
    sync: string,
    options: { trigger?: RunTrigger; payload?: Json | null } = {},
  ): Promise<RunRequest> {
    this.ws.sync(sync);
    const trigger = options.trigger ?? 'api';
    const request = await this.queue.enqueue({
      sync,
      lane: laneOf(sync, this.bundles, trigger),
      trigger,
      payload: options.payload ?? null,
    });
    this.wake();
    return request;
  }

  /**
   * Stops taking runs and lets the batches in hand finish and checkpoint, for `timeoutMs` at most
   * (`runtime.grace` by default). Past it the runs still going are stopped at once: recorded
   * `abandoned` with the reason, their requests put back in the queue (the next start resumes them
   * from their checkpoints). Resolves true when everything finished within the grace.
   */
  async stop(options: { timeoutMs?: number } = {}): Promise<boolean> {
    if (this.stopping) return true;
    this.stopping = true;
    this.scheduler.stop();
    this.stopController.abort();
    this.wake();
    const drained = Promise.allSettled([...[...this.inFlight.values()].map((r) => r.done), this.loopDone]);
    const timeoutMs = options.timeoutMs ?? this.graceMs;
    const clean = await Promise.race([drained.then(() => true), sleep(timeoutMs, false, { ref: false })]);
    if (!clean) {
      this.killController.abort(
        new SluiceError(
          'RUN_KILLED',
          `the process stopped and its shutdown grace of ${timeoutMs} ms ran out`,
        ),
      );
      const settled = await Promise.race([drained.then(() => true), sleep(2_000, false, { ref: false })]);
      // A run that ignores even that (a `map` awaiting something that never ends) is ended here:
      // recorded abandoned, its request back in the queue; the process may exit under it.
      if (!settled) await this.abandonInFlight(timeoutMs);
    }
    if (this.renewals) clearInterval(this.renewals);
    if (this.pruning) clearInterval(this.pruning);
    return clean;
  }

  private wake(): void {
    this.wakeUp?.();
  }

  private async loop(): Promise<void> {
    let recoveredAt = 0;
    while (!this.stopping) {
      try {
        // A lane whose holder died (its lease ran out, or its process is gone) is taken over here,
        // within one poll: its request goes back in the queue and resumes from the checkpoint.
        if (Date.now() - recoveredAt >= this.pollMs) {
          recoveredAt = Date.now();
          const recovered = await this.queue.recover();
          if (recovered.length > 0) this.emit('recovered', { requests: recovered });
        }
        const free = this.concurrency - this.inFlight.size;
        if (free > 0) {
          const claimed = await this.queue.claim({ holder: this.holder, leaseMs: this.leaseMs, limit: free });
          for (const request of claimed) this.launch(request);
          // Fewer than asked for: nothing else is claimable until a run ends or a request falls due.
          if (claimed.length === free) continue;
        }
      } catch (err) {
        // The store is busy or unwell: say so and try again at the next poll, never die undrained.
        this.report(null, err);
      }
      const waitMs = await this.untilNextDue();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = null;
    }
  }

  private async abandonInFlight(graceMs: number): Promise<void> {
    const reason = `the process stopped and its shutdown grace of ${graceMs} ms ran out; the run ignored its abort`;
    for (const { claim, run } of this.inFlight.values()) {
      try {
        if (run) {
          await this.ws.store.finishRun(run.id, {
            holder: run.holder,
            status: 'abandoned',
            more: true,
            errorCode: 'RUN_KILLED',
            errorMessage: reason,
          });
        }
        await this.queue.release(claim, Date.now());
      } catch (err) {
        this.report(run?.sync ?? null, err);
      }
    }
  }

  /** A poll, or less where a queued request falls due sooner (a retry's backoff, a busy lane's wait). */
  private async untilNextDue(): Promise<number> {
    const next = await this.queue.nextDue(this.holder).catch(() => null);
    return next === null ? this.pollMs : Math.min(this.pollMs, Math.max(1, next - Date.now()));
  }

  private launch(request: RunRequest): void {
    const key = `${request.id}@${request.startedAt}`;
    const done = this.execute(request, (run) => {
      const entry = this.inFlight.get(key);
      if (entry) entry.run = run;
    })
      .catch((err) => this.report(request.sync, err))
      .finally(() => {
        this.inFlight.delete(key);
        this.wake();
      });
    this.inFlight.set(key, { claim: claimOf(request), done, run: null });
  }

  private async execute(request: RunRequest, onStart: (run: RunRecord) => void): Promise<void> {
    const startedAt = Date.now();
    this.emit('run:start', {
      request,
      laneWaitMs: Math.max(
        0,
        (request.startedAt ?? startedAt) - Math.max(request.createdAt, request.notBefore),
      ),
    });
    const sync = this.ws.config.syncs.get(request.sync);
    if (!sync) {
      await this.queue.finish(claimOf(request), {
        status: 'cancelled',
        errorCode: 'SYNC_UNKNOWN',
        errorMessage: `no sync named "${request.sync}" in the config`,
      });
      return;
    }
    const ended = (fields: Omit<RunEnded, 'request' | 'durationMs'>) =>
      this.emit('run:end', { request, durationMs: Date.now() - startedAt, ...fields });
    let result: RunResult;
    let started: RunRecord | null = null;
    const abandon = new AbortController();
    try {
      const outcome = await this.withDeadline(
        this.ws.run(request.sync, {
          trigger: request.trigger,
          stop: this.stopController.signal,
          payload: request.payload,
          graceMs: this.graceMs,
          abandon: abandon.signal,
          kill: this.killController.signal,
          onStart: (run) => {
            started = run;
            onStart(run);
          },
          ...(request.setAsideReason ? { setAside: { reason: request.setAsideReason } } : {}),
          onProgress: (p) => this.emit('run:progress', p),
        }),
        sync.maxRunDurationMs + this.graceMs + 5_000,
        () => started,
        abandon,
      );
      result = { ok: true, more: outcome.more };
      const after =
        outcome.resumeAt !== undefined
          ? // A spent API budget: the successor waits for the reset, whatever the rerun mode.
            {
              next: {
                sync: request.sync,
                lane: laneOf(request.sync, this.bundles, 'rerun'),
                trigger: 'rerun' as const,
                notBefore: outcome.resumeAt,
                coalesce: true,
              },
              broken: null,
            }
          : outcome.more || outcome.checkpoint.phase === 'backfill'
            ? this.successorOf(request, result, { cursor: outcome.checkpoint.cursor })
            : { next: null, broken: null };
      await this.queue.finish(
        claimOf(request),
        { status: 'done', runId: outcome.run.id },
        after.next ?? undefined,
      );
      ended({
        runId: outcome.run.id,
        ok: true,
        status: 'succeeded',
        counters: outcome.run.counters,
        more: outcome.more,
        errorCode: null,
        errorMessage: null,
      });
      this.followed(request.sync, after);
      return;
    } catch (err) {
      const error = asSluiceError(err);
      // Cut short by a shutdown past its grace: back in the queue, to resume at the next start.
      if (error.code === 'RUN_KILLED') {
        await this.queue.release(claimOf(request), Date.now());
        ended({
          runId: (started as RunRecord | null)?.id ?? null,
          ok: false,
          status: 'abandoned',
          counters: null,
          more: true,
          errorCode: error.code,
          errorMessage: error.message,
        });
        return;
      }
      // Busy elsewhere (a CLI run of the sync, or of another sync in its bundle): try again shortly.
      if (error.code === 'SYNC_BUSY' || error.code === 'LANE_BUSY') {
        await this.queue.release(claimOf(request), Date.now() + BUSY_RETRY_MS);
        ended({
          runId: null,
          ok: false,
          status: 'requeued',
          counters: null,
          more: true,
          errorCode: error.code,
          errorMessage: error.message,
        });
        return;
      }
      const runId = (started as RunRecord | null)?.id ?? null;
      const run = runId === null ? null : await this.ws.store.getRun(runId);
      // A run that saved batches before failing failed at a new batch: its first attempt there.
      const attempt = run && run.counters.batches > 0 ? 1 : request.attempt;
      result = { ok: false, errorCode: error.code, errorMessage: error.message };
      const after = this.successorOf({ ...request, attempt }, result, null);
      await this.queue.finish(
        claimOf(request),
        { status: 'failed', runId, errorCode: error.code, errorMessage: error.message, attempt },
        after.next ?? undefined,
      );
      const status = error.code === 'RUN_TIMED_OUT' ? 'timed_out' : 'failed';
      ended({
        runId,
        ok: false,
        status,
        counters: run?.counters ?? null,
        more: true,
        errorCode: error.code,
        errorMessage: error.message,
      });
      this.followed(request.sync, after);
    }
  }

  /**
   * Backstop for a run that ignores its abort signal: past the deadline that very run is recorded
   * timed out (so every later write of it is refused), its connections are closed, and its lane is
   * released; whatever it does afterwards changes nothing.
   */
  private async withDeadline<T>(
    work: Promise<T>,
    ms: number,
    runOf: () => RunRecord | null,
    abandon: AbortController,
  ): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(async () => {
        const run = runOf();
        try {
          if (run) {
            await this.ws.store.finishRun(run.id, {
              holder: run.holder,
              status: 'timed_out',
              more: true,
              errorCode: 'RUN_TIMED_OUT',
              errorMessage: `no answer ${ms} ms after the run started; lane released`,
            });
          }
        } finally {
          abandon.abort();
          reject(
            new SluiceError(
              'RUN_TIMED_OUT',
              `run ${run?.id ?? '(not started)'} overran maxRunDuration plus grace; lane released`,
              { transient: true },
            ),
          );
        }
      }, ms);
    });
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * What follows a run by the sync's rerun and retry policies: the request to queue with the run's end
   * (`next`), or the reason its triggered chain is broken.
   */
  private successorOf(
    request: RunRequest,
    result: RunResult,
    payload: Json | null,
  ): { next: NewRunRequest | null; broken: string | null } {
    const sync = this.ws.sync(request.sync);
    const step = afterRun(sync.rerun, sync.retries, result, request.attempt);
    // The successor goes to the back of the sync's lane, so other syncs' due runs go first.
    const lane = laneOf(
      request.sync,
      this.bundles,
      request.trigger === 'webhook' ? 'rerun' : request.trigger,
    );
    switch (step.kind) {
      case 'enqueue':
        return {
          next: {
            sync: request.sync,
            lane,
            trigger: step.trigger,
            attempt: step.attempt,
            notBefore: Date.now() + step.delayMs,
            payload,
          },
          broken: null,
        };
      case 'skip-batch':
        return {
          next: { sync: request.sync, lane, trigger: 'retry', setAsideReason: step.reason },
          broken: null,
        };
      case 'chain-broken':
        return { next: null, broken: step.reason };
      case 'wait':
        return { next: null, broken: null };
    }
  }

  /** After a run's end is recorded with its successor: the loop looks for it, or the chain is reported broken. */
  private followed(sync: string, after: { next: NewRunRequest | null; broken: string | null }): void {
    if (after.next) this.wake();
    if (after.broken !== null) this.emit('chain:broken', { sync, reason: after.broken });
  }

  /** Starts or resumes a sync whose backfill is not done and that has nothing queued or running. */
  private async continueChain(sync: string, trigger: RunTrigger): Promise<void> {
    const def = this.ws.sync(sync);
    if (def.rerun.mode !== 'triggered') return;
    const checkpoint = await this.ws.store.getCheckpoint(sync);
    if (checkpoint?.phase === 'incremental') return;
    if ((await this.queue.pending(sync)).length > 0) return;
    // A sync that never ran starts its backfill; one that stopped part-way resumes it.
    const why: RunTrigger = checkpoint ? trigger : 'backfill';
    await this.queue.enqueue({ sync, lane: laneOf(sync, this.bundles, why), trigger: why });
    this.wake();
  }

  private schedule(): void {
    for (const [name, sync] of this.ws.config.syncs) {
      const guarded = (tick: () => Promise<void>) => () => {
        if (this.stopping) return;
        tick().catch((err) => this.report(name, err));
      };
      if (sync.rerun.mode === 'scheduled') {
        const every = sync.rerun.every;
        const schedule: Schedule = every !== undefined ? { every } : { cron: sync.rerun.cron! };
        this.scheduler.add(
          schedule,
          guarded(() => this.scheduledTick(name)),
        );
      } else if (sync.rerun.watchdog) {
        this.scheduler.add(
          sync.rerun.watchdog,
          guarded(() => this.continueChain(name, 'watchdog')),
        );
      }
      if (sync.incremental)
        this.scheduler.add(
          sync.incremental,
          guarded(() => this.incrementalTick(name)),
        );
    }
  }

  /** A scheduled backfill's tick: the next run, or another attempt at the batch that failed. */
  private async scheduledTick(sync: string): Promise<void> {
    const checkpoint = await this.ws.store.getCheckpoint(sync);
    if (checkpoint?.phase === 'incremental') return;
    if ((await this.queue.pending(sync)).length > 0) return;
    const last = await this.queue.lastFinished(sync);
    // A failed request's attempt is its failure's attempt at the batch now at the checkpoint.
    const attempt = last?.status === 'failed' ? last.attempt + 1 : 1;
    await this.queue.enqueue({
      sync,
      lane: laneOf(sync, this.bundles, 'schedule'),
      trigger: attempt > 1 ? 'retry' : 'schedule',
      attempt,
      coalesce: true,
    });
    this.wake();
  }

  private async incrementalTick(sync: string): Promise<void> {
    const checkpoint = await this.ws.store.getCheckpoint(sync);
    if (checkpoint?.phase !== 'incremental') return;
    await this.queue.enqueue({
      sync,
      lane: laneOf(sync, this.bundles, 'schedule'),
      trigger: 'schedule',
      coalesce: true,
    });
    this.wake();
  }
}
