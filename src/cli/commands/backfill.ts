import type { Command } from 'commander';
import { gracefulStop, withWorkspace } from '../context.ts';
import { count, duration, printJson } from '../format.ts';
import { reportRetry, reportWait } from './run.ts';

export function registerBackfill(program: Command): void {
  program
    .command('backfill')
    .description('run a sync again and again until its backfill is done, with progress, rate and ETA')
    .argument('<sync>', 'the sync to backfill')
    .option('--json', 'print a JSON summary at the end instead of text')
    .action(async (sync: string, opts: { json?: boolean }, cmd: Command) => {
      // Imported on use (the progress bar, the retry policy's backoff): other commands start without them.
      const [{ backfill }, { BackfillProgress }] = await Promise.all([
        import('../../library/backfill.ts'),
        import('../progress.ts'),
      ]);
      await withWorkspace(cmd, async (ws) => {
        const stop = gracefulStop();
        const progress = new BackfillProgress(sync);
        let result: Awaited<ReturnType<typeof backfill>>;
        try {
          result = await backfill(ws, sync, {
            signal: stop.signal,
            onProgress: (p, { run }) => progress.update(p, run),
            onRetry: reportRetry(sync),
            // Beside `sluice serve`, each run of the backfill waits its turn in the lane: say so once.
            onWait: once(reportWait(sync)),
            onLaneBusy: (reason) => process.stderr.write(`${sync}: waiting for its lane: ${reason}\n`),
            onPause: ({ reason }) =>
              process.stderr.write(
                `${sync}: ${reason}; waiting until then (Ctrl-C stops, the same command resumes)\n`,
              ),
          });
        } finally {
          progress.stop();
          stop.dispose();
        }
        const { done, runs, batches, records, elapsedMs, checkpoint } = result;
        if (result.alreadyDone) {
          if (opts.json) printJson({ sync, alreadyDone: true, checkpoint });
          else
            process.stdout.write(
              `backfill of ${sync} is already done (${count(checkpoint?.backfillDone ?? 0)} records, ended ${checkpoint?.backfillEndedAt}); use \`sluice run ${sync}\` for incremental runs\n`,
            );
          return;
        }
        const summary = {
          sync,
          done,
          runs,
          batches,
          records,
          elapsedMs,
          recordsPerSecond: Math.round((records * 1000) / Math.max(1, elapsedMs)),
          peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
        };
        if (opts.json) printJson(summary);
        else {
          const state = done ? 'backfill done' : 'backfill stopped (resume with the same command)';
          process.stdout.write(
            `${sync}: ${state}: ${count(records)} records in ${count(runs)} runs, ${count(batches)} batches, ${duration(elapsedMs)}, ${count(summary.recordsPerSecond)} rec/s, peak RSS ${summary.peakRssMb} MB\n`,
          );
        }
        if (!done) process.exitCode = 130;
      });
    });
}

function once<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  let done = false;
  return (...args) => {
    if (done) return;
    done = true;
    fn(...args);
  };
}
