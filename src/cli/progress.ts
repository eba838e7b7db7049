import { SingleBar } from 'cli-progress';
import type { Progress } from '../engine/progress.ts';
import { count, duration } from './format.ts';

/**
 * Shows a backfill's progress across all its runs: a live bar on a terminal, a plain line every
 * few seconds otherwise (logs, CI). Rate and ETA are over the whole command, not one run.
 */
export class BackfillProgress {
  private readonly startedAt = Date.now();
  private readonly tty: boolean;
  private bar: SingleBar | null = null;
  private startDone: number | null = null;
  private lastLine = 0;
  private readonly sync: string;

  constructor(sync: string, tty = Boolean(process.stderr.isTTY)) {
    this.sync = sync;
    this.tty = tty;
  }

  update(p: Progress, runs: number): void {
    if (p.phase !== 'backfill') return;
    this.startDone ??= p.backfillDone - p.run.read;
    const elapsed = Date.now() - this.startedAt;
    const moved = p.backfillDone - this.startDone;
    const rate = elapsed > 0 ? (moved * 1000) / elapsed : 0;
    const total = Math.max(p.backfillEstimate ?? 0, p.backfillDone);
    const eta = rate > 0 && total > 0 ? ((total - p.backfillDone) / rate) * 1000 : null;
    // A guessed total (a planner's estimate) is marked, so a bar near 100% is not read as a promise.
    const about = p.estimateExact ? '' : '~';
    const pct = total > 0 ? `${about}${((p.backfillDone / total) * 100).toFixed(1)}%` : '?';
    const fields = {
      rate: count(Math.round(rate)),
      eta: eta === null ? '-' : `${about}${duration(eta)}`,
      runs: String(runs),
      pct,
      doneText: count(p.backfillDone),
      totalText: `${about}${count(total)}`,
    };
    if (this.tty) {
      if (!this.bar) {
        this.bar = new SingleBar({
          format: `${this.sync} |{bar}| {pct} | {doneText}/{totalText} | {rate} rec/s | ETA {eta} | run {runs}`,
          stream: process.stderr,
          hideCursor: true,
        });
        this.bar.start(total, p.backfillDone, fields);
      }
      this.bar.setTotal(total);
      this.bar.update(p.backfillDone, fields);
      return;
    }
    if (Date.now() - this.lastLine < 2000) return;
    this.lastLine = Date.now();
    process.stderr.write(
      `${this.sync}: ${pct} ${fields.doneText}/${fields.totalText} records, ${fields.rate} rec/s, ETA ${fields.eta}, run ${runs}\n`,
    );
  }

  stop(): void {
    this.bar?.stop();
  }
}
