import { setTimeout as sleep } from 'node:timers/promises';
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
      const [{ runWithRetries }, { BackfillProgress }] = await Promise.all([
        import('../../runtime/attempts.ts'),
        import('../progress.ts'),
      ]);
      await withWorkspace(cmd, async (ws) => {
        ws.sync(sync);
        const before = await ws.store.getCheckpoint(sync);
        if (before?.phase === 'incremental') {
          const msg = `backfill of ${sync} is already done (${count(before.backfillDone)} records, ended ${before.backfillEndedAt}); use \`sluice run ${sync}\` for incremental runs`;
          if (opts.json) printJson({ sync, alreadyDone: true, checkpoint: before });
          else process.stdout.write(`${msg}\n`);
          return;
        }
        const stop = gracefulStop();
        const progress = new BackfillProgress(sync);
        const startedAt = Date.now();
        let runs = 0;
        let batches = 0;
        let records = 0;
        // Beside `sluice serve`, each run of the backfill waits its turn in the lane: say so once.
        const onWait = once(reportWait(sync));
        try {
          let waiting = false;
          while (!stop.signal.aborted) {
            const outcome = await runWithRetries(
              ws,
              sync,
              {
                trigger: 'backfill',
                stop: stop.signal,
                stopAfterBackfill: true,
                onProgress: (p) => progress.update(p, runs + 1),
              },
              reportRetry(sync),
              onWait,
            ).catch((err: unknown) => {
              // Another sync of the bundle is running (under `sluice serve`, say): take turns with it.
              if ((err as { code?: string }).code !== 'LANE_BUSY') throw err;
              if (!waiting)
                process.stderr.write(`${sync}: waiting for its lane: ${(err as Error).message}\n`);
              waiting = true;
              return null;
            });
            if (!outcome) {
              // Aborted by Ctrl-C: the loop's condition ends it.
              await sleep(100, undefined, { signal: stop.signal }).catch(() => undefined);
              continue;
            }
            waiting = false;
            runs += 1;
            if (outcome.resumeAt !== undefined) {
              process.stderr.write(
                `${sync}: ${outcome.run.errorMessage}; waiting until then (Ctrl-C stops, the same command resumes)\n`,
              );
              await sleep(Math.max(0, outcome.resumeAt - Date.now()), undefined, {
                signal: stop.signal,
              }).catch(() => undefined);
            }
            batches += outcome.run.counters.batches;
            records += outcome.run.counters.read;
            if (outcome.checkpoint.phase === 'incremental') break;
          }
        } finally {
          progress.stop();
          stop.dispose();
        }
        const cp = await ws.store.getCheckpoint(sync);
        const elapsed = Date.now() - startedAt;
        const done = cp?.phase === 'incremental';
        const summary = {
          sync,
          done,
          runs,
          batches,
          records,
          elapsedMs: elapsed,
          recordsPerSecond: Math.round((records * 1000) / Math.max(1, elapsed)),
          peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
        };
        if (opts.json) printJson(summary);
        else {
          const state = done ? 'backfill done' : 'backfill stopped (resume with the same command)';
          process.stdout.write(
            `${sync}: ${state}: ${count(records)} records in ${count(runs)} runs, ${count(batches)} batches, ${duration(elapsed)}, ${count(summary.recordsPerSecond)} rec/s, peak RSS ${summary.peakRssMb} MB\n`,
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
