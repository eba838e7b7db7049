import { onTestFinished } from 'vitest';

/** mulberry32: a small PRNG whose whole state is one 32-bit number; the same seed, the same draws. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Seeds for a randomized test: `fixed` ones, the same on every run, plus one drawn fresh each run to
 * explore further. `SLUICE_TEST_SEED=<n>` replaces them all with the one seed to replay.
 */
export function seeds(...fixed: number[]): { label: string; seed: number }[] {
  const replay = process.env.SLUICE_TEST_SEED;
  if (replay !== undefined && replay !== '') return [{ label: 'replayed seed', seed: Number(replay) >>> 0 }];
  return [
    ...fixed.map((seed, i) => ({ label: `fixed seed ${i + 1}`, seed })),
    { label: 'fresh seed', seed: (Math.random() * 2 ** 32) >>> 0 },
  ];
}

/** A generator for the current test whose seed is added to any failure, with how to replay it. */
export function seeded(seed: number): () => number {
  onTestFinished((ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const error of ctx.task.result.errors ?? [])
      error.message = `${error.message}\n(seed ${seed}: replay with SLUICE_TEST_SEED=${seed})`;
  });
  return prng(seed);
}
