import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { asSluiceError, SluiceError } from '../../core/errors.ts';
import { afterRun, type RunResult } from '../../core/policy.ts';
import type { RunQueue, RunRecord, RunRequest } from '../../core/ports.ts';
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
  private readonly scheduler = new Scheduler();
  private readonly inFlight = new Map<number, Promise<void>>();
  private readonly stopController = new AbortController();
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
    this.bundles = bundleIndex(ws.config.config.bundles);
  }

  async start(): Promise<void> {
    await this.queue.recover();
    for (const name of this.ws.syncNames()) await this.continueChain(name, 'recovery');

    this.schedule();
    this.loopDone = this.loop();
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

  async stop(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.scheduler.stop();
    this.stopController.abort();
    this.wake();
    const drained = Promise.allSettled([...this.inFlight.values(), this.loopDone]);
    // Past the timeout the runs still going are left `running` in the queue: the next start
    // finds their holder gone and requeues them, and they resume from their checkpoints.
    await Promise.race([drained, sleep(options.timeoutMs ?? 10_000, undefined, { ref: false })]);
  }

  private wake(): void {
    this.wakeUp?.();
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      const free = this.concurrency - this.inFlight.size;
      if (free > 0) {
        const claimed = await this.queue.claim({ holder: this.holder, leaseMs: this.leaseMs(), limit: free });
        for (const request of claimed) this.launch(request);
        if (claimed.length > 0) continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, this.pollMs);
        this.wakeUp = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeUp = null;
    }
  }

  /** The longest a claimed request may run before another process may take its lane. */
  private leaseMs(): number {
    let longest = 0;
    for (const sync of this.ws.config.syncs.values()) longest = Math.max(longest, sync.maxRunDurationMs);
    return longest + this.graceMs + 10_000;
  }

  private launch(request: RunRequest): void {
    const done = this.execute(request)
      .catch((err) => {
        this.emit('error', { sync: request.sync, error: asSluiceError(err) });
      })
      .finally(() => {
        this.inFlight.delete(request.id);
        this.wake();
      });
    this.inFlight.set(request.id, done);
  }

  private async execute(request: RunRequest): Promise<void> {
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
      await this.queue.finish(request.id, {
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
          onStart: (run) => {
            started = run;
          },
          ...(request.setAsideReason ? { setAside: { reason: request.setAsideReason } } : {}),
          onProgress: (p) => this.emit('run:progress', p),
        }),
        sync.maxRunDurationMs + this.graceMs + 5_000,
        () => started,
        abandon,
      );
      await this.queue.finish(request.id, { status: 'done', runId: outcome.run.id });
      ended({
        runId: outcome.run.id,
        ok: true,
        status: 'succeeded',
        counters: outcome.run.counters,
        more: outcome.more,
        errorCode: null,
        errorMessage: null,
      });
      result = { ok: true, more: outcome.more };
      if (outcome.more || outcome.checkpoint.phase === 'backfill') {
        await this.followPolicy(request, result, { cursor: outcome.checkpoint.cursor });
      }
      return;
    } catch (err) {
      const error = asSluiceError(err);
      // Busy elsewhere (a CLI run of the sync, or of another sync in its bundle): try again shortly.
      if (error.code === 'SYNC_BUSY' || error.code === 'LANE_BUSY') {
        await this.queue.release(request.id, Date.now() + BUSY_RETRY_MS);
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
      await this.queue.finish(request.id, {
        status: 'failed',
        runId,
        errorCode: error.code,
        errorMessage: error.message,
        attempt,
      });
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
      result = { ok: false, errorCode: error.code, errorMessage: error.message };
      await this.followPolicy({ ...request, attempt }, result, null);
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

  private async followPolicy(request: RunRequest, result: RunResult, payload: Json | null): Promise<void> {
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
        await this.queue.enqueue({
          sync: request.sync,
          lane,
          trigger: step.trigger,
          attempt: step.attempt,
          notBefore: Date.now() + step.delayMs,
          payload,
        });
        this.wake();
        return;
      case 'skip-batch':
        await this.queue.enqueue({ sync: request.sync, lane, trigger: 'retry', setAsideReason: step.reason });
        this.wake();
        return;
      case 'chain-broken':
        this.emit('chain:broken', { sync: request.sync, reason: step.reason });
        return;
      case 'wait':
        return;
    }
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
        tick().catch((err) => this.emit('error', { sync: name, error: asSluiceError(err) }));
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
