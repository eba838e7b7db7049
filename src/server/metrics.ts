import { Counter, Gauge, Histogram, Registry } from 'prom-client';
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

  runtime.on('run:start', ({ request, laneWaitMs }) =>
    laneWait.observe({ lane: request.lane }, laneWaitMs / 1000),
  );
  runtime.on('run:end', (end) => {
    if (end.status === 'requeued') return;
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
