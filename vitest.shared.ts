import { defineConfig } from 'vitest/config';

/**
 * Shared vitest settings for every package: node environment, tests under test/, no watch.
 * Timeouts are generous because the 2-core CI machine runs several packages' suites at once;
 * timing targets belong in benchmarks, never in tests.
 */
export const sharedTestConfig = defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
