import type { Command } from 'commander';
import { withWorkspace } from '../context.ts';
import { count, duration, printJson, table } from '../format.ts';
import { positiveInt } from '../options.ts';

export function registerRuns(program: Command): void {
  program
    .command('runs')
    .description('run history, newest first')
    .argument('[sync]', 'only this sync')
    .option('--limit <n>', 'how many runs', positiveInt, 20)
    .option('--json', 'print as JSON')
    .action(async (sync: string | undefined, opts: { json?: boolean; limit: number }, cmd: Command) => {
      await withWorkspace(cmd, async (ws) => {
        if (sync) ws.sync(sync);
        const runs = await ws.store.listRuns({ ...(sync ? { sync } : {}), limit: opts.limit });
        if (opts.json) return printJson(runs);
        const rows = runs.map((r) => [
          r.id,
          r.sync,
          r.trigger,
          r.status,
          r.phase,
          r.startedAt,
          r.endedAt ? duration(Date.parse(r.endedAt) - Date.parse(r.startedAt)) : null,
          count(r.counters.batches),
          count(r.counters.read),
          count(r.counters.written),
          count(r.counters.rejected),
          r.errorCode ? `${r.errorCode}: ${r.errorMessage}` : null,
        ]);
        process.stdout.write(
          `${table(['ID', 'SYNC', 'TRIGGER', 'STATUS', 'PHASE', 'STARTED', 'TOOK', 'BATCHES', 'READ', 'WRITTEN', 'REJECTED', 'ERROR'], rows)}\n`,
        );
      });
    });
}
