import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { type Job, PgBoss } from 'pg-boss';
import { asSluiceError, SluiceError } from '../../core/errors.ts';
import { currentHolder } from '../../core/holder.ts';
import { nextAttempt } from '../../core/policy.ts';
import type { NewRunRequest, RunRequest } from '../../core/ports.ts';
import type { Json, RunTrigger } from '../../core/types.ts';
import { endedFields, executeRequest } from '../execute.ts';
import { bundleIndex, laneOf } from '../lanes.ts';
import type { Runtime, RuntimeEvents } from '../port.ts';
import { Scheduler } from '../scheduler.ts';
import { Ticks } from '../ticks.ts';
import type { Workspace } from '../workspace.ts';

export type PgBossRuntimeOptions = {
  /** Runs at once in this process. @defaultValue config `runtime.concurrency` */
  concurrency?: number;
  /** How often an idle worker looks for work besides being woken. @defaultValue config `runtime.poll` */
  pollMs?: number;
  /** Grace after maxRunDuration before a run is aborted. @defaultValue config `runtime.grace` */
  graceMs?: number;
  holder?: string;
  /** The PostgreSQL schema pg-boss keeps its jobs in. @defaultValue the store's schema + `_pgboss` */
  schema?: string;
};

/** One queue holds every requested run; its singleton key is the run's lane. */
const QUEUE = 'sluice-runs';
// A run whose sync is busy elsewhere (a CLI run, another lane) is queued again this much later.
const BUSY_RETRY_MS = 250;
// pg-boss polls no faster than this.
const MIN_POLL_MS = 500;
// A finished job's row is kept this long: history lives in the store's runs, not in the queue.
const KEEP_FINISHED_SECONDS = 3600;

/** How a run's job is sent: its lane, a name where a schedule's firing makes it, when it is due. */
type JobOptions = { singletonKey: string; id?: string; startAfter?: Date; expireInSeconds: number };

/** A requested run as a pg-boss job carries it. */
type RunJob = {
  requestId: number;
  sync: string;
  lane: string;
  /** Epoch ms: when it was queued, and when it is due. */
  createdAt: number;
  notBefore: number;
  trigger: RunTrigger;
  payload: Json | null;
  attempt: number;
  setAsideReason: string | null;
};

/**
 * The distributed runtime: requested runs are pg-boss jobs in the store's PostgreSQL database, so any
 * number of `sluice serve` and `sluice worker` processes on any number of machines share them.
 *
 * - A lane is the job's singleton key in a `key_strict_fifo` queue: one active job per lane across
 *   every worker, and a lane's jobs in the order they were queued, so a backfill's successor waits
 *   behind the other syncs of its bundle as in the local runtime.
 * - A worker that dies stops sending the job's heartbeat; pg-boss's supervisor fails the job and
 *   retries it at once, and whichever worker fetches it takes the lane over (the store's run lease
 *   closes the dead run `abandoned` first, and the run resumes from the checkpoint).
 * - A run's outcome is settled by Sluice's own policies (core/policy), as in every runtime: the job
 *   completes and its successor (a rerun, a retry after backoff, a set-aside batch) is a new job.
 *   pg-boss retries a job only when its worker died, overran it, or was stopped past its grace.
 */
export class PgBossRuntime extends EventEmitter<RuntimeEvents> implements Runtime {
  private readonly ws: Workspace;
  private readonly boss: PgBoss;
  private readonly concurrency: number;
  private readonly pollMs: number;
  private readonly graceMs: number;
  private readonly leaseMs: number;
  private readonly holder: string;
  private readonly bundles: Map<string, string>;
  private readonly scheduler = new Scheduler();
  private readonly ticks: Ticks;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly stopController = new AbortController();
  private readonly killController = new AbortController();
  private readonly workIds: string[] = [];
  private stopping = false;
  private started = false;
  private starting: Promise<void> | null = null;
  /** Whether a sync has a job in given states (pg-boss's job table), and the store's request id sequence. */
  private readonly waitingJobSql: string;
  private readonly pool: pg.Pool;
  private readonly requestIds: string;

  constructor(ws: Workspace, options: PgBossRuntimeOptions = {}) {
    super();
    const location = ws.config.config.store;
    const schema = (ws.store as { schema?: unknown }).schema;
    if (!/^postgres(ql)?:\/\//.test(location) || typeof schema !== 'string') {
      throw new SluiceError(
        'RUNTIME_NEEDS_POSTGRES',
        "the pg-boss runtime keeps its queue in the store's PostgreSQL database; set store to a postgres:// URL",
      );
    }
    this.ws = ws;
    const runtime = ws.config.config.runtime;
    this.concurrency = options.concurrency ?? runtime.concurrency;
    this.pollMs = Math.max(MIN_POLL_MS, options.pollMs ?? runtime.poll);
    this.graceMs = options.graceMs ?? runtime.grace;
    this.leaseMs = runtime.lease;
    this.holder = options.holder ?? currentHolder();
    this.bundles = bundleIndex(ws.config.config.bundles);
    // Takeover follows the lease: the supervisor looks for dead workers' jobs twice a lease.
    const superviseSeconds = Math.max(1, Math.round(this.leaseMs / 2000));
    const bossSchema = options.schema ?? `${schema}_pgboss`;
    this.waitingJobSql = `SELECT 1 FROM ${quoteIdent(bossSchema)}.job WHERE name = $1 AND data->>'sync' = $2
      AND state::text = ANY($3::text[]) LIMIT 1`;
    // A connection of its own for the transactions pg-boss's API does not open (see sendUnlessQueued).
    this.pool = new pg.Pool({ connectionString: location, max: 2 });
    this.pool.on('error', () => undefined);
    this.requestIds = `${quoteIdent(schema)}.run_request_ids`;
    this.boss = new PgBoss({
      connectionString: location,
      schema: bossSchema,
      application_name: `sluice ${this.holder}`,
      useListenNotify: true,
      superviseIntervalSeconds: superviseSeconds,
      monitorIntervalSeconds: superviseSeconds,
      instanceName: this.holder,
      max: this.concurrency + 3,
    });
    this.boss.on('error', (err: unknown) => this.report(null, err));
    this.ticks = new Ticks(ws, this.bundles, {
      busy: (sync) => this.busy(sync),
      nextAttempt: async (sync) => nextAttempt(await ws.store.listRuns({ sync, limit: 100 })),
      enqueue: async (request, tick) => {
        await this.send(request, tick);
      },
    });
  }

  async start(): Promise<void> {
    // A request made while starting (a webhook a server took before the runtime was up) waits for it.
    this.starting = this.begin();
    await this.starting;
  }

  private async begin(): Promise<void> {
    await this.boss.start();
    // Every worker process creates the queue; the first one wins and the others find it there.
    if (!(await this.boss.getQueue(QUEUE))) {
      await this.boss
        .createQueue(QUEUE, {
          policy: 'key_strict_fifo',
          notify: true,
          // Only a dead or stopped worker's job is retried (see the class comment): at once, always.
          retryLimit: 1_000_000,
          retryDelay: 0,
          heartbeatSeconds: Math.max(10, Math.ceil(this.leaseMs / 1000)),
          deleteAfterSeconds: KEEP_FINISHED_SECONDS,
        })
        .catch(async (err: unknown) => {
          if (!(await this.boss.getQueue(QUEUE))) throw err;
        });
    }
    this.started = true;
    // Runs that stopped part-way (a process that died, a stop) resume; new syncs start their backfill.
    for (const name of this.ws.syncNames()) await this.ticks.continueChain(name, 'recovery');
    this.ticks.schedule(this.scheduler, (sync, tick) => () => {
      if (this.stopping) return;
      tick().catch((err) => this.report(sync, err));
    });
    // One worker per run slot, each registered on its own, so a run's end can wake the very worker
    // that ran it to fetch its lane's next job at once instead of at the next poll.
    for (let i = 0; i < this.concurrency; i++) {
      let workId = '';
      workId = await this.boss.work<RunJob>(
        QUEUE,
        // With NOTIFY on, pg-boss polls at `notifyPollingIntervalSeconds` (30 s by default), not at
        // `pollingIntervalSeconds`: and a dead worker's job put back for retry, or a job whose
        // `startAfter` comes, wakes nobody. `runtime.poll` bounds both.
        {
          pollingIntervalSeconds: this.pollMs / 1000,
          notifyPollingIntervalSeconds: this.pollMs / 1000,
          batchSize: 1,
        },
        ([job]) => this.handle(job!, workId),
      );
      this.workIds.push(workId);
    }
  }

  async request(
    sync: string,
    options: { trigger?: RunTrigger; payload?: Json | null } = {},
  ): Promise<RunRequest> {
    this.ws.sync(sync);
    await this.starting;
    const trigger = options.trigger ?? 'api';
    return this.send({
      sync,
      lane: laneOf(sync, this.bundles, trigger),
      trigger,
      payload: options.payload ?? null,
    });
  }

  /**
   * Stops taking runs and lets the batches in hand finish and checkpoint, for `timeoutMs` at most
   * (`runtime.grace` by default). Past it the runs still going stop at once, recorded `abandoned`;
   * their jobs fail and pg-boss hands them to the next worker (or this one's next start).
   */
  async stop(options: { timeoutMs?: number } = {}): Promise<boolean> {
    if (this.stopping) return true;
    this.stopping = true;
    this.scheduler.stop();
    this.stopController.abort();
    if (!this.started) {
      await this.boss.stop({ graceful: false, close: true }).catch(() => undefined);
      await this.pool.end().catch(() => undefined);
      return true;
    }
    // No new fetches; the runs in hand go on.
    await Promise.all(this.workIds.map((id) => this.boss.offWork(QUEUE, { id, wait: false })));
    const timeoutMs = options.timeoutMs ?? this.graceMs;
    const drained = Promise.allSettled([...this.inFlight]);
    const clean = await Promise.race([drained.then(() => true), sleep(timeoutMs, false, { ref: false })]);
    if (!clean) {
      this.killController.abort(
        new SluiceError(
          'RUN_KILLED',
          `the process stopped and its shutdown grace of ${timeoutMs} ms ran out`,
        ),
      );
      await Promise.race([drained, sleep(2_000, undefined, { ref: false })]);
    }
    await this.boss
      .stop({ graceful: true, timeout: 2_000, close: true })
      .catch((err) => this.report(null, err));
    await this.pool.end().catch(() => undefined);
    return clean;
  }

  private wakeWorkers(): void {
    if (this.stopping) return;
    for (const id of this.workIds) this.boss.notifyWorker(id);
  }

  private async handle(job: Job<RunJob>, workId: string): Promise<void> {
    const work = this.execute(job);
    this.inFlight.add(work);
    try {
      await work;
    } finally {
      this.inFlight.delete(work);
      // The lane's next job becomes fetchable once this one completes, right after we return.
      if (!this.stopping) this.boss.notifyWorker(workId);
    }
  }

  private async execute(job: Job<RunJob>): Promise<void> {
    const startedAt = Date.now();
    const request = requestOf(job, this.holder, startedAt);
    this.emit('run:start', {
      request,
      laneWaitMs: Math.max(0, startedAt - Math.max(request.createdAt, request.notBefore)),
    });
    if (!this.ws.hasSync(request.sync)) return;
    const end = await executeRequest(this.ws, request, {
      stop: this.stopController.signal,
      // pg-boss aborts the job's signal when the job is no longer this worker's (overrun, taken
      // over): the run stops at once, as it does when the shutdown's grace runs out.
      kill: AbortSignal.any([this.killController.signal, killedBy(job.signal, request.sync)]),
      graceMs: this.graceMs,
      bundles: this.bundles,
      onProgress: (p) => this.emit('run:progress', p),
    });
    if (end.kind === 'busy') {
      await this.send(
        {
          sync: request.sync,
          lane: request.lane,
          trigger: request.trigger,
          payload: request.payload,
          attempt: request.attempt,
          setAsideReason: request.setAsideReason,
          notBefore: Date.now() + BUSY_RETRY_MS,
        },
        undefined,
        false,
      );
    } else if (end.kind !== 'killed' && end.successor.next) {
      // No other worker is woken: the one that ran this job fetches again once it completes.
      await this.send(end.successor.next, undefined, false);
    }
    // A partitioned backfill's partitions, each a job of its own (for any worker) where none waits or runs.
    if (end.kind === 'succeeded') await this.ticks.enqueueIdle(end.successor.partitions ?? []);
    this.emit('run:end', { request, durationMs: Date.now() - startedAt, ...endedFields(end) });
    if ((end.kind === 'succeeded' || end.kind === 'failed') && end.successor.broken !== null)
      this.emit('chain:broken', { sync: request.sync, reason: end.successor.broken });
    // Failing the job hands it back: pg-boss retries it at once, here or on another worker.
    if (end.kind === 'killed') throw end.error;
  }

  /** Queues a request as a job; `tick` makes it one job per schedule firing across processes. */
  private async send(request: NewRunRequest, tick?: string, wake = true): Promise<RunRequest> {
    const now = Date.now();
    const sync = this.ws.sync(request.sync);
    const notBefore = request.notBefore ?? now;
    const data: RunJob = {
      requestId: await this.nextRequestId(),
      sync: request.sync,
      lane: request.lane,
      createdAt: now,
      notBefore,
      trigger: request.trigger,
      payload: request.payload ?? null,
      attempt: request.attempt ?? 1,
      setAsideReason: request.setAsideReason ?? null,
    };
    const options: JobOptions = {
      singletonKey: request.lane,
      ...(tick ? { id: uuidOf(tick) } : {}),
      ...(notBefore > now ? { startAfter: new Date(notBefore) } : {}),
      // pg-boss gives up on a job past this: later than Sluice's own deadline for the run.
      expireInSeconds: Math.ceil((sync.maxRunDurationMs + this.graceMs + 10_000) / 1000),
    };
    let sent = true;
    if (request.coalesce) sent = await this.sendUnlessQueued(request.sync, data, options);
    else await this.boss.send(QUEUE, data, options);
    // Other processes' workers are woken by pg-boss's NOTIFY; this one's need no round trip.
    if (sent && wake && notBefore <= now) this.wakeWorkers();
    return {
      id: data.requestId,
      sync: request.sync,
      lane: request.lane,
      trigger: request.trigger,
      payload: data.payload,
      setAsideReason: data.setAsideReason,
      attempt: data.attempt,
      status: 'queued',
      notBefore,
      createdAt: now,
      startedAt: null,
      finishedAt: null,
      holder: null,
      owner: null,
      runId: null,
      errorCode: null,
      errorMessage: null,
    };
  }

  /**
   * Sends the job unless the sync has one waiting, as one step: the check and the send share a
   * transaction holding an advisory lock on the sync, so two ticks (of this process, or of two
   * processes) cannot both find nothing queued and both queue a run.
   */
  private async sendUnlessQueued(sync: string, data: RunJob, options: JobOptions): Promise<boolean> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      try {
        await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sluice.enqueue:${sync}`]);
        const waiting = await client.query(this.waitingJobSql, [QUEUE, sync, ['created', 'retry']]);
        if (waiting.rows.length === 0) {
          const db = { executeSql: (text: string, values?: unknown[]) => client.query(text, values) };
          await this.boss.send(QUEUE, data, { ...options, db });
        }
        await client.query('COMMIT');
        return waiting.rows.length === 0;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    } finally {
      client.release();
    }
  }

  private async nextRequestId(): Promise<number> {
    const { rows } = await this.boss
      .getDb()
      .executeSql(`SELECT nextval($1::regclass) AS id`, [this.requestIds]);
    return Number((rows[0] as { id: string }).id);
  }

  /** The sync has a job waiting or under way (its run may not be recorded yet). */
  private async busy(sync: string): Promise<boolean> {
    return this.hasJob(sync, ['created', 'retry', 'active']);
  }

  private async hasJob(sync: string, states: readonly string[]): Promise<boolean> {
    const { rows } = await this.boss.getDb().executeSql(this.waitingJobSql, [QUEUE, sync, states]);
    return rows.length > 0;
  }

  private report(sync: string | null, err: unknown): void {
    const error = asSluiceError(err);
    if (this.listenerCount('error') > 0) this.emit('error', { sync, error });
    else process.stderr.write(`sluice runtime: ${sync ? `${sync}: ` : ''}${error.code}: ${error.message}\n`);
  }
}

/** A job as the runtime's events and the engine see a request. */
function requestOf(job: Job<RunJob>, holder: string, now: number): RunRequest {
  return {
    id: job.data.requestId,
    sync: job.data.sync,
    lane: job.data.lane,
    trigger: job.data.trigger,
    payload: job.data.payload,
    setAsideReason: job.data.setAsideReason,
    attempt: job.data.attempt,
    status: 'running',
    notBefore: job.data.notBefore,
    createdAt: job.data.createdAt,
    startedAt: now,
    finishedAt: null,
    holder,
    owner: null,
    runId: null,
    errorCode: null,
    errorMessage: null,
  };
}

/** An AbortSignal that aborts with RUN_KILLED when pg-boss takes the job away from this worker. */
function killedBy(signal: AbortSignal | undefined, sync: string): AbortSignal {
  const controller = new AbortController();
  if (!signal) return controller.signal;
  const kill = () =>
    controller.abort(
      new SluiceError(
        'RUN_KILLED',
        `the run of ${sync} lost its job: it overran it or another worker took it over`,
      ),
    );
  if (signal.aborted) kill();
  else signal.addEventListener('abort', kill, { once: true });
  return controller.signal;
}

/** A UUID named by `text` (SHA-1, as a name-based UUID is), so every process derives the same one. */
function uuidOf(text: string): string {
  const h = createHash('sha1').update(text).digest('hex');
  const variant = ((Number.parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;
