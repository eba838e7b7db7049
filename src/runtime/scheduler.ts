import { Cron } from 'croner';

export type Schedule = { every: number } | { cron: string };

/** Calls `tick` on each schedule until stopped: fixed intervals by timer, cron expressions by croner. */
export class Scheduler {
  private readonly stops: (() => void)[] = [];

  add(schedule: Schedule, tick: () => void): void {
    if ('every' in schedule) {
      const timer = setInterval(tick, Math.max(1, schedule.every));
      timer.unref();
      this.stops.push(() => clearInterval(timer));
      return;
    }
    const job = new Cron(schedule.cron, { protect: true, unref: true }, tick);
    this.stops.push(() => job.stop());
  }

  stop(): void {
    for (const stop of this.stops.splice(0)) stop();
  }
}
