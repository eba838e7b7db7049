import { z } from 'zod';
import { QuotaExhaustedError } from '../../core/errors.ts';

/**
 * A connection's API budget: `perDay` calls per calendar day in `timeZone` (HubSpot's daily limit
 * resets at midnight in the account's time zone), or per rolling 24 hours (Salesforce's). Counted
 * per connection in the process, every call sent (retries and 429s included, as the services count
 * them); see the README for processes that share one account.
 */
export const quotaSchema = z.strictObject({
  perDay: z.number().int().positive(),
  /** `day`: resets at midnight in `timeZone`; `rolling`: any 24 hours. @defaultValue 'day' */
  window: z.enum(['day', 'rolling']).default('day'),
  /** IANA time zone of the daily reset, e.g. `America/New_York`. @defaultValue 'UTC' */
  timeZone: z
    .string()
    .refine(validTimeZone, { error: 'expected an IANA time zone such as "UTC" or "Europe/Paris"' })
    .default('UTC'),
});

export type QuotaSettings = z.output<typeof quotaSchema>;

/** What `sluice status` shows of a connection's budget. */
export type Budget = {
  /** Calls counted in the current window (by this process). */
  used: number;
  limit: number;
  left: number;
  /** Epoch ms: when the window resets (`day`), or when the oldest counted call leaves it (`rolling`). */
  resetsAt: number;
  window: 'day' | 'rolling';
};

const DAY_MS = 86_400_000;
const BUCKET_MS = 60_000;

export class QuotaLedger {
  readonly settings: QuotaSettings;
  private readonly label: string;
  private readonly now: () => number;
  /** `day`: calls since `dayEnds - 1 day`. */
  private count = 0;
  private dayEnds = 0;
  /** `rolling`: calls per minute, oldest first. */
  private readonly buckets: { at: number; n: number }[] = [];

  constructor(settings: QuotaSettings, label: string, now: () => number = Date.now) {
    this.settings = settings;
    this.label = label;
    this.now = now;
  }

  /** Counts one call about to be sent, or throws `QuotaExhaustedError` when the budget is spent. */
  spend(): void {
    const now = this.now();
    const used = this.usedAt(now);
    if (used >= this.settings.perDay)
      throw new QuotaExhaustedError(this.label, used, this.settings.perDay, this.resetsAt(now));
    if (this.settings.window === 'day') this.count += 1;
    else {
      const at = now - (now % BUCKET_MS);
      const last = this.buckets.at(-1);
      if (last && last.at === at) last.n += 1;
      else this.buckets.push({ at, n: 1 });
    }
  }

  status(): Budget {
    const now = this.now();
    const used = this.usedAt(now);
    return {
      used,
      limit: this.settings.perDay,
      left: Math.max(0, this.settings.perDay - used),
      resetsAt: this.resetsAt(now),
      window: this.settings.window,
    };
  }

  private usedAt(now: number): number {
    if (this.settings.window === 'day') {
      if (now >= this.dayEnds) {
        this.count = 0;
        this.dayEnds = nextMidnight(now, this.settings.timeZone);
      }
      return this.count;
    }
    while (this.buckets.length && this.buckets[0]!.at + BUCKET_MS <= now - DAY_MS) this.buckets.shift();
    let n = 0;
    for (const b of this.buckets) n += b.n;
    return n;
  }

  private resetsAt(now: number): number {
    if (this.settings.window === 'day') return this.dayEnds || nextMidnight(now, this.settings.timeZone);
    // The time enough of the oldest calls have left the 24 hours for one more to go.
    let used = this.usedAt(now);
    for (const b of this.buckets) {
      used -= b.n;
      if (used < this.settings.perDay) return b.at + BUCKET_MS + DAY_MS;
    }
    return now;
  }
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    // Intl throws a RangeError for a zone it does not know: that is the answer.
    return false;
  }
}

/** Epoch ms of the first midnight in `timeZone` after `now`. */
export function nextMidnight(now: number, timeZone: string): number {
  const fmt = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });
  const local = (t: number) => {
    const p = Object.fromEntries(fmt.formatToParts(t).map((x) => [x.type, Number(x.value)]));
    return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!);
  };
  const today = new Date(local(now));
  const midnight = Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), today.getUTCDate() + 1);
  // Local midnight as UTC, corrected by the zone's offset there (twice, for a DST change that night).
  let t = midnight - (local(midnight) - midnight);
  t = midnight - (local(t) - t);
  return t > now ? t : t + DAY_MS;
}
