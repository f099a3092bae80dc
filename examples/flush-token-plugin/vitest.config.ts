import { defineConfig } from 'vitest/config';

// The conformance suite's property test runs 100,000 operations: on a loaded 2-core machine
// that can pass vitest's default 5 s per test, so give every test a minute.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 60_000 } });
