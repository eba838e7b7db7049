import type { Command } from 'commander';
import { withWorkspace } from '../context.ts';
import { count, duration, percent, printJson, table } from '../format.ts';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('every sync: phase, backfill progress, totals, last run and lag')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      await withWorkspace(cmd, async (ws) => {
        const statuses = await ws.status();
        if (opts.json) return printJson(statuses);
        const rows = statuses.map((s) => [
          s.sync,
          s.phase,
          s.state,
          `${s.estimateExact || s.progress === null ? '' : '~'}${percent(s.progress)}`,
          s.backfillEstimate === null
            ? count(s.backfillDone)
            : `${count(s.backfillDone)}/${s.estimateExact ? '' : '~'}${count(s.backfillEstimate)}`,
          s.totals ? count(s.totals.written) : null,
          s.totals ? count(s.totals.unchanged) : null,
          s.totals ? count(s.totals.rejected) : null,
          count(s.deadLetters),
          // Which process runs it: with several workers on one store, where to look.
          s.lastRun
            ? `${s.lastRun.id} ${s.lastRun.status}${s.lastRun.status === 'running' ? ` on ${s.lastRun.holder}` : ''}`
            : null,
          s.lastRun?.endedAt ?? s.lastRun?.startedAt ?? null,
          s.lagMs === null ? null : duration(s.lagMs),
        ]);
        const failures = statuses.filter((s) => s.error).map((s) => `${s.sync}: ${s.error}`);
        process.stdout.write(
          `${table(['SYNC', 'PHASE', 'STATE', 'BACKFILL', 'RECORDS', 'WRITTEN', 'UNCHANGED', 'REJECTED', 'DEAD LETTERS', 'LAST RUN', 'AT', 'LAG'], rows)}\n`,
        );
        if (failures.length > 0) process.stdout.write(`\nfailed:\n  ${failures.join('\n  ')}\n`);
        const budgets = statuses.flatMap((s) =>
          s.budgets.map(
            (b) =>
              `${s.sync} via ${b.connection}: ${count(b.used)} of ${count(b.limit)} calls used, ${count(b.left)} left, resets ${new Date(b.resetsAt).toISOString()}`,
          ),
        );
        if (budgets.length > 0)
          process.stdout.write(`\nAPI budgets (counted by this process):\n  ${budgets.join('\n  ')}\n`);
      });
    });
}
