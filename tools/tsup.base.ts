import type { Options } from 'tsup';

/**
 * One build shape for every publishable package: ESM + CJS + bundled d.ts with
 * sourcemaps, Node 20 syntax. Packages spread this and override only what differs
 * (the conformance suite is ESM-only, the CLI adds a bin entry).
 */
export function packageBuild(overrides: Options = {}): Options {
  return {
    entry: ['src/index.ts'],
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    target: 'node20',
    platform: 'node',
    splitting: false,
    treeshake: true,
    ...overrides,
  };
}
