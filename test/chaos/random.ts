/**
 * A small seeded PRNG (mulberry32) and the draws the chaos test makes with it. One seed gives one
 * sequence of edits, configs and kill delays; the interleaving with the child processes still
 * depends on timing, so a seed reproduces the scenario, not every instant of it.
 */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** An integer in [lo, hi], spread evenly over orders of magnitude (small values as likely as large). */
  logInt(lo: number, hi: number): number {
    return Math.min(hi, Math.floor(Math.exp(Math.log(lo) + this.next() * (Math.log(hi + 1) - Math.log(lo)))));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

export type Seed = { seed: number; name: string };

/**
 * The seeds an environment variable names instead of a test's kept ones: `7`, `5-9`, `5,9`, or
 * `fresh` (a new one, printed with the test's name); null when the variable is not set.
 */
export function seedsFromEnv(variable: string): Seed[] | null {
  const text = process.env[variable];
  if (!text) return null;
  if (text === 'fresh') return [{ seed: (Math.random() * 2 ** 31) >>> 0, name: 'fresh' }];
  return text.split(',').flatMap((part) => {
    const [from, to = from] = part.split('-').map((n) => Number(n.trim()));
    if (from === undefined || to === undefined || !Number.isInteger(from) || !Number.isInteger(to))
      throw new Error(`${variable}: cannot read "${text}"`);
    return Array.from({ length: to - from + 1 }, (_, i) => ({ seed: from + i, name: `from ${variable}` }));
  });
}
