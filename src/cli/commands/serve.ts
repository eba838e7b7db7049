import { setTimeout as sleep } from 'node:timers/promises';
import type { ServerType } from '@hono/node-server';
import type { Command } from 'commander';
import type pino from 'pino';
import type { Runtime } from '../../runtime/port.ts';
import { createLogger, type LogFormat, logFormat } from '../logging.ts';
import { positiveInt } from '../options.ts';

type ServeOptions = {
  host?: string;
  port?: number;
  concurrency?: number;
  logLevel: string;
  logFormat?: LogFormat;
};

const LOG_FORMAT_HELP = 'pretty (readable lines; the default on a terminal) or json (the default when piped)';

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description(
      'run the scheduler and runtime, with the HTTP server: the dashboard at /, webhooks, REST API, /healthz, /metrics',
    )
    .option('--host <host>', 'address to listen on (default: server.host, 127.0.0.1)')
    .option('--port <port>', 'port to listen on, 0 for any (default: server.port, 4300)', portNumber)
    .option('--concurrency <n>', 'runs at once across all lanes (default: runtime.concurrency)', positiveInt)
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
    .option('--log-format <format>', LOG_FORMAT_HELP, logFormat)
    .action(async (opts: ServeOptions, cmd: Command) => runService(cmd, opts, true));

  program
    .command('worker')
    .description('run the scheduler and runtime without the HTTP server')
    .option('--concurrency <n>', 'runs at once across all lanes (default: runtime.concurrency)', positiveInt)
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
    .option('--log-format <format>', LOG_FORMAT_HELP, logFormat)
    .action(async (opts: ServeOptions, cmd: Command) => runService(cmd, opts, false));
}

function portNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`expected a port from 0 to 65535, got "${value}"`);
  return n;
}

/** Runs until SIGINT/SIGTERM: then stops taking runs, lets running batches checkpoint, and exits. */
async function runService(cmd: Command, opts: ServeOptions, http: boolean): Promise<void> {
  // The runtime, the HTTP server (hono, prom-client) and the logger (pino, in createLogger) are
  // imported when serve runs: the other commands start without them.
  const [{ createRuntime }, { Workspace }, { createApp }, { listen }] = await Promise.all([
    import('../../runtime/create.ts'),
    import('../../runtime/workspace.ts'),
    import('../../server/app.ts'),
    import('../../server/listen.ts'),
  ]);
  const log = await createLogger({ level: opts.logLevel, format: opts.logFormat });
  const { config } = cmd.optsWithGlobals<{ config: string }>();
  const ws = await Workspace.open(config);
  // The local runtime on a SQLite store; the pg-boss one, shared by every process, on PostgreSQL.
  const runtime = await createRuntime(ws, opts.concurrency ? { concurrency: opts.concurrency } : {});
  logRuntime(runtime, log);
  let server: ServerType | null = null;
  if (http) {
    // The app (its metrics among it) listens to the runtime before the runtime starts, so the first
    // run is seen; and the port is bound first, so a busy port stops serve before any run begins.
    const { host, port } = ws.config.config.server;
    try {
      const listening = await listen(createApp(ws, runtime), opts.host ?? host, opts.port ?? port);
      server = listening.server;
      const { address, port: bound } = listening.address;
      // The port chosen for `--port 0` is in the line, as text and as `url` for a program to read.
      const url = `http://${address.includes(':') ? `[${address}]` : address}:${bound}`;
      log.info({ url }, `listening on ${url}`);
    } catch (err) {
      await ws.close();
      throw err;
    }
  }
  try {
    await runtime.start();
  } catch (err) {
    server?.close();
    await ws.close();
    throw err;
  }
  log.info({ syncs: ws.syncNames().length }, 'runtime started');
  await new Promise<void>((resolve) => {
    const shutdown = async (signal: NodeJS.Signals) => {
      process.on(signal, () => {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(130);
      });
      log.info({ signal }, 'stopping: no new runs; running batches finish and checkpoint');
      // No new requests; the ones in flight finish before the store closes under them.
      const closed = new Promise<void>((done) => (server ? server.close(() => done()) : done()));
      const clean = await runtime.stop({ timeoutMs: ws.config.config.runtime.grace });
      // A request still open after the runs stopped (a slow client) does not hold the exit up.
      await Promise.race([closed, sleep(2000)]);
      await ws.close();
      if (clean) log.info('stopped');
      else {
        // A supervisor can rely on the bound: past the grace, runs were cut short and recorded.
        log.warn(
          { graceMs: ws.config.config.runtime.grace },
          'stopped: runs still going after the grace were abandoned',
        );
        process.exitCode = 1;
        // A run that ignored its abort may hold timers open: the bound is the grace, not them.
        process.exit(1);
      }
      resolve();
    };
    const onSignal = (signal: NodeJS.Signals) => {
      shutdown(signal).catch((err: unknown) => {
        log.error({ error: (err as Error).message }, 'shutdown failed');
        process.exitCode = 1;
        resolve();
      });
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}

function logRuntime(runtime: Runtime, log: pino.Logger): void {
  runtime.on('run:start', ({ request, laneWaitMs }) =>
    log.info(
      { sync: request.sync, request: request.id, trigger: request.trigger, lane: request.lane, laneWaitMs },
      'run started',
    ),
  );
  runtime.on('run:end', (e) => {
    const fields = {
      sync: e.request.sync,
      run: e.runId,
      status: e.status,
      ms: e.durationMs,
      more: e.more,
      ...e.counters,
    };
    if (e.ok || e.status === 'requeued') log.info(fields, 'run ended');
    else log.warn({ ...fields, code: e.errorCode, error: e.errorMessage }, 'run failed');
  });
  runtime.on('chain:broken', ({ sync, reason }) =>
    log.error({ sync, reason }, 'chain stopped: the sync is failed until restarted'),
  );
  runtime.on('error', ({ sync, error }) =>
    log.error({ sync, code: (error as { code?: string }).code, error: error.message }, 'runtime error'),
  );
}
