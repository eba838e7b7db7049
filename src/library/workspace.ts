import { setTimeout as sleep } from 'node:timers/promises';
import type { ServerType } from '@hono/node-server';
import type { Checkpoint, DeadLetter } from '../core/ports.ts';
import type { Json } from '../core/types.ts';
import type { Progress } from '../engine/progress.ts';
import type { RetryOutcome } from '../engine/retry.ts';
import type { RunOutcome } from '../engine/run.ts';
import { type RetryNotice, runWithRetries } from '../runtime/attempts.ts';
import type { Runtime } from '../runtime/port.ts';
import { type SyncStatus, Workspace } from '../runtime/workspace.ts';
import { type BackfillOptions, type BackfillResult, backfill } from './backfill.ts';
import type { OpenWorkspaceOptions } from './open.ts';

export type RunOptions = {
  /** Aborting stops the run after the batch in hand, checkpointed. */
  signal?: AbortSignal;
  onProgress?: (progress: Progress) => void;
  /** A momentary failure (a dropped connection, a 5xx) is being retried from the checkpoint. */
  onRetry?: (notice: RetryNotice) => void;
  /** What the sync's `map` sees as `ctx.payload`. */
  payload?: Json;
};

export type RuntimeOptions = {
  /** Runs at once across all lanes. @defaultValue config `runtime.concurrency` */
  concurrency?: number;
};

export type ServeOptions = RuntimeOptions & {
  /** @defaultValue config `server.host` (127.0.0.1) */
  host?: string;
  /** 0 for any free port (read it from the result). @defaultValue config `server.port` (4300) */
  port?: number;
};

/** The HTTP server `serve` started: webhooks, REST API, dashboard, /healthz, /metrics. */
export type SluiceServer = {
  /** `http://host:port`, with the port bound (the one chosen for port 0). */
  url: string;
  host: string;
  port: number;
};

/**
 * Sluice inside the host's own process: the syncs of one config and its store. Every method is safe
 * beside `sluice serve` or a CLI run on the same store: runs take their turn in their lanes.
 */
export class SluiceWorkspace {
  readonly #ws: Workspace;
  #runtime: Promise<Runtime & { start(): Promise<void> }> | null = null;
  #started: Promise<void> | null = null;
  #server: ServerType | null = null;
  #closed: Promise<boolean> | null = null;

  private constructor(ws: Workspace) {
    this.#ws = ws;
  }

  static async open(options: OpenWorkspaceOptions): Promise<SluiceWorkspace> {
    const extra = options.connectors ? { connectors: options.connectors } : {};
    const ws =
      options.configFile !== undefined
        ? await Workspace.open(options.configFile, extra)
        : await Workspace.fromConfig(options.config, options.baseDir ?? process.cwd(), extra);
    return new SluiceWorkspace(ws);
  }

  /** The syncs of the config, by name. */
  get syncs(): string[] {
    return this.#ws.syncNames();
  }

  /**
   * One run of a sync, as `sluice run`: batches until its `maxRunDuration` is spent or it has caught
   * up; momentary failures are retried from the checkpoint. Rejects with a `SluiceError` (its `code`
   * says why) when the run fails.
   */
  async run(sync: string, options: RunOptions = {}): Promise<RunOutcome> {
    return runWithRetries(
      this.#ws,
      sync,
      {
        trigger: 'run',
        ...(options.signal ? { stop: options.signal } : {}),
        ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        ...(options.payload !== undefined ? { payload: options.payload } : {}),
      },
      options.onRetry,
    );
  }

  /** Runs a sync until its backfill is done, as `sluice backfill`, or until `signal` aborts. */
  backfill(sync: string, options: BackfillOptions = {}): Promise<BackfillResult> {
    return backfill(this.#ws, sync, options);
  }

  /** Every sync: phase, backfill progress, totals, last run, dead letters and lag, as `sluice status`. */
  status(): Promise<SyncStatus[]> {
    return this.#ws.status();
  }

  /** A sync's checkpoint (phase, cursor, totals); null before its first run. */
  checkpoint(sync: string): Promise<Checkpoint | null> {
    this.#ws.sync(sync);
    return this.#ws.store.getCheckpoint(sync);
  }

  /** Dead letters still open (or all of them with `includeClosed`), oldest first; every sync's without `sync`. */
  deadLetters(
    sync?: string,
    options: { limit?: number; includeClosed?: boolean } = {},
  ): Promise<DeadLetter[]> {
    if (sync !== undefined) this.#ws.sync(sync);
    return this.#ws.store.listDeadLetters({
      ...(sync !== undefined ? { sync } : {}),
      limit: options.limit ?? 100,
      includeClosed: options.includeClosed ?? false,
    });
  }

  /** Sends a sync's open dead letters to its target again, as the source holds each record now. */
  retryDeadLetters(sync: string): Promise<RetryOutcome> {
    return this.#ws.retryDeadLetters(sync);
  }

  /**
   * Starts the runtime in this process, as `sluice worker`: schedules, triggered reruns, retries and
   * queued requests run here until `close()`. Listen to its events (`run:start`, `run:end`,
   * `run:progress`, `error`…) and queue runs with `request(sync)`. The runtime is the one the store
   * calls for: the local one on SQLite, pg-boss on PostgreSQL.
   * Calling it again returns the same runtime.
   */
  async startRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
    const runtime = await this.#runtimeOf(options);
    await this.#start(runtime);
    return runtime;
  }

  /**
   * Starts the runtime and the HTTP server in this process, as `sluice serve`. Resolves once the port
   * is bound and the runtime started. Serving after `startRuntime` works too; the metrics then count
   * runs from here on.
   */
  async serve(options: ServeOptions = {}): Promise<SluiceServer> {
    if (this.#server) throw new Error('this workspace is serving already');
    const runtime = await this.#runtimeOf(options);
    const [{ createApp }, { listen }] = await Promise.all([
      import('../server/app.ts'),
      import('../server/listen.ts'),
    ]);
    const { host, port } = this.#ws.config.config.server;
    // The app listens to the runtime before it starts, so the metrics see the first run.
    const { server, address } = await listen(
      createApp(this.#ws, runtime),
      options.host ?? host,
      options.port ?? port,
    );
    this.#server = server;
    await this.#start(runtime);
    const shown = address.address.includes(':') ? `[${address.address}]` : address.address;
    return { url: `http://${shown}:${address.port}`, host: address.address, port: address.port };
  }

  /**
   * Stops the server (no new requests), then the runtime: running batches finish and checkpoint
   * within `timeoutMs` (config `runtime.grace` by default), past it they are stopped and recorded
   * abandoned. Then closes the store. Resolves true when everything finished within the grace.
   */
  close(options: { timeoutMs?: number } = {}): Promise<boolean> {
    this.#closed ??= this.#close(options.timeoutMs ?? this.#ws.config.config.runtime.grace);
    return this.#closed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #close(timeoutMs: number): Promise<boolean> {
    const server = this.#server;
    const closed = new Promise<void>((done) => (server ? server.close(() => done()) : done()));
    // A runtime that could not be made (its store unreachable, say) has nothing to stop.
    const runtime = this.#runtime ? await this.#runtime.catch(() => null) : null;
    const clean = runtime ? await runtime.stop({ timeoutMs }) : true;
    // A request still open after the runs stopped (a slow client) does not hold the close up.
    await Promise.race([closed, sleep(2000, undefined, { ref: false })]);
    await this.#ws.close();
    return clean;
  }

  #runtimeOf(options: RuntimeOptions): Promise<Runtime & { start(): Promise<void> }> {
    if (this.#closed) throw new Error('this workspace is closed');
    this.#runtime ??= import('../runtime/create.ts').then(({ createRuntime }) =>
      createRuntime(this.#ws, options.concurrency ? { concurrency: options.concurrency } : {}),
    );
    return this.#runtime;
  }

  #start(runtime: Runtime & { start(): Promise<void> }): Promise<void> {
    this.#started ??= runtime.start();
    return this.#started;
  }
}
