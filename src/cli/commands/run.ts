import type { Command } from 'commander';
import type { RunRecord, RunRequest } from '../../core/ports.ts';
import type { RetryNotice } from '../../runtime/attempts.ts';
import { gracefulStop, withWorkspace } from '../context.ts';
import { count, duration, printJson } from '../format.ts';

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('run a sync once: batches until its maxRunDuration is spent or it has caught up')
    .argument('<sync>', 'the sync to run')
    .option('--json', 'print the run as JSON')
    .action(async (sync: string, opts: { json?: boolean }, cmd: Command) => {
      // Imported on use: the retry policy's backoff library stays off the path of read commands.
      const { runWithRetries } = await import('../../runtime/attempts.ts');
      await withWorkspace(cmd, async (ws) => {
        const stop = gracefulStop();
        try {
          const outcome = await runWithRetries(
            ws,
            sync,
            { trigger: 'run', stop: stop.signal },
            reportRetry(sync),
            reportWait(sync),
          );
          if (opts.json)
            printJson({
              run: outcome.run,
              more: outcome.more,
              ...(outcome.resumeAt === undefined
                ? {}
                : { resumeAt: new Date(outcome.resumeAt).toISOString() }),
              checkpoint: outcome.checkpoint,
            });
          else
            process.stdout.write(
              `${describeRun(outcome.run)}; phase ${outcome.checkpoint.phase}${outcome.more ? ', more to do' : ', caught up'}${outcome.resumeAt === undefined ? '' : `; ${outcome.run.errorMessage}`}\n`,
            );
        } finally {
          stop.dispose();
        }
      });
    });
}

export function describeRun(run: RunRecord): string {
  const took = run.endedAt ? duration(Date.parse(run.endedAt) - Date.parse(run.startedAt)) : 'still running';
  const c = run.counters;
  return `run ${run.id} of ${run.sync} ${run.status}: ${count(c.batches)} batches, ${count(c.read)} read, ${count(c.written)} written, ${count(c.unchanged)} unchanged, ${count(c.rejected)} rejected in ${took}`;
}

/** One line on stderr when a run waits for its lane (another sync of its bundle is running). */
export function reportWait(sync: string): (waiting: RunRequest) => void {
  return (waiting) => process.stderr.write(`${sync}: waiting for its turn in ${waiting.lane}\n`);
}

/** One line on stderr per momentary failure retried, so a user sees what the run is riding out. */
export function reportRetry(sync: string): (notice: RetryNotice) => void {
  return ({ attempt, of, delayMs, error }) =>
    process.stderr.write(
      `${sync}: attempt ${attempt} of ${of} failed (${error.code}: ${error.message}); again from the checkpoint in ${duration(delayMs)}\n`,
    );
}
