import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { RunRequest } from '../core/ports.ts';
import type { Runtime } from '../runtime/port.ts';
import type { Workspace } from '../runtime/workspace.ts';

/** Prometheus metrics, fed by the runtime's events; backfill progress is read from the store on scrape. */
export function createMetrics(ws: Workspace, runtime: Runtime): Registry {
  const registry = new Registry();
  const records = (what: string) =>
    new Counter({
      name: `sluice_records_${what}_total`,
      help: `Records ${what}, by sync`,
      labelNames: ['sync'],
      registers: [registry],
    });
  const read = records('read');
  const written = records('written');
  const unchanged = records('unchanged');
  const rejected = records('rejected');
  const runs = new Counter({
    name: 'sluice_runs_total',
    help: 'Runs ended, by sync and status',
    labelNames: ['sync', 'status'],
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'sluice_run_duration_seconds',
    help: 'Run durations, by sync and status',
    labelNames: ['sync', 'status'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
    registers: [registry],
  });
  const laneWait = new Histogram({
    name: 'sluice_lane_wait_seconds',
    help: 'Time a due run waited for its lane, by lane',
    labelNames: ['lane'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
    registers: [registry],
  });
  new Gauge({
    name: 'sluice_backfill_progress_ratio',
    help: 'Backfill progress from 0 to 1, by sync (1 once incremental)',
    labelNames: ['sync'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const status of await ws.status())
        if (status.progress !== null) this.set({ sync: status.sync }, status.progress);
    },
  });
  new Gauge({
    name: 'sluice_backfill_records',
    help: 'Records the backfill has moved, by sync',
    labelNames: ['sync'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const status of await ws.status()) this.set({ sync: status.sync }, status.backfillDone);
    },
  });

  new Gauge({
    name: 'sluice_dead_letters_open',
    help: 'Dead letters not yet resolved, by sync',
    labelNames: ['sync'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const status of await ws.status()) this.set({ sync: status.sync }, status.deadLetters);
    },
  });

  // A request's lane wait runs from when it first fell due to the start of the attempt that went
  // ahead. An attempt refused because its lane or sync was busy (it ends `requeued`) is no start,
  // and its requeue (which moves the request's notBefore) does not restart the clock. The runtime
  // says an attempt went ahead with its first progress (a batch saved) or its end, whichever comes
  // first: the wait is observed then, once per request.
  type Attempt = {
    sync: string;
    lane: string;
    dueAt: number;
    startedAt: number;
    live: boolean;
    seen: boolean;
  };
  const attempts = new Map<number, Attempt>();
  const observe = (attempt: Attempt) => {
    if (attempt.seen) return;
    attempt.seen = true;
    laneWait.observe({ lane: attempt.lane }, Math.max(0, attempt.startedAt - attempt.dueAt) / 1000);
  };
  const dueAt = (request: RunRequest) => Math.max(request.createdAt, request.notBefore);
  runtime.on('run:start', ({ request }) => {
    attempts.set(request.id, {
      sync: request.sync,
      lane: request.lane,
      dueAt: attempts.get(request.id)?.dueAt ?? dueAt(request),
      startedAt: request.startedAt ?? Date.now(),
      live: true,
      seen: false,
    });
  });
  runtime.on('run:progress', ({ sync }) => {
    const live = [...attempts.values()].filter((a) => a.live && a.sync === sync);
    // Two attempts of one sync at once (its own lane and a webhook's): one is about to be refused as
    // busy. Which one made this progress is known when the other ends; until then, neither is seen.
    if (live.length === 1) observe(live[0]!);
  });
  runtime.on('run:end', (end) => {
    const attempt = attempts.get(end.request.id);
    if (end.status === 'requeued') {
      if (attempt) attempt.live = false;
      return;
    }
    attempts.delete(end.request.id);
    observe(
      attempt ?? {
        sync: end.request.sync,
        lane: end.request.lane,
        dueAt: dueAt(end.request),
        startedAt: end.request.startedAt ?? Date.now() - end.durationMs,
        live: false,
        seen: false,
      },
    );
    const sync = end.request.sync;
    runs.inc({ sync, status: end.status });
    duration.observe({ sync, status: end.status }, end.durationMs / 1000);
    if (end.counters) {
      read.inc({ sync }, end.counters.read);
      written.inc({ sync }, end.counters.written);
      unchanged.inc({ sync }, end.counters.unchanged);
      rejected.inc({ sync }, end.counters.rejected);
    }
  });
  return registry;
}
