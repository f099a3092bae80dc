import type { Options } from 'tsup';

/**
 * One build shape for every publishable package: ESM + CJS + bundled d.ts, Node 20 syntax.
 * No source maps: the output is unminified (stack traces point at readable lines), and maps
 * with embedded sources were 52-69% of each published package. Packages spread this and override only what differs
 * (the conformance suite is ESM-only, the CLI adds a bin entry).
 */
export function packageBuild(overrides: Options = {}): Options {
  return {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: false,
    target: 'node20',
    platform: 'node',
    splitting: false,
    treeshake: true,
    ...overrides,
  };
}
