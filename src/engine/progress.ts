import type { Counters, Phase } from '../core/types.ts';

export type Progress = {
  sync: string;
  runId: number;
  phase: Phase;
  /** This run's counts so far. */
  run: Counters;
  /** Records the backfill has read across all its runs, and its estimate of the whole. */
  backfillDone: number;
  backfillEstimate: number | null;
  /** False while the estimate is a guess: progress and ETA are then shown as approximate. */
  estimateExact: boolean;
  /** Records read per second in this run. */
  rate: number;
  /** Milliseconds until the backfill is done at this run's rate; null when unknown or not in backfill. */
  etaMs: number | null;
  elapsedMs: number;
};

export function rateOf(records: number, elapsedMs: number): number {
  return elapsedMs > 0 ? (records * 1000) / elapsedMs : 0;
}

export function etaOf(done: number, estimate: number | null, rate: number): number | null {
  if (estimate === null || rate <= 0) return null;
  return (Math.max(0, estimate - done) / rate) * 1000;
}
