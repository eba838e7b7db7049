import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests that spawn processes or hit one PostgreSQL server are happier not all at once on 2 cores.
    maxWorkers: 2,
  },
});
