import { defineConfig } from 'tsup';
import { packageBuild } from '../tsup.base';

// The library entry and the executable share one code-split chunk, so dist/bin.js is a thin
// entry (main() and the exit status; the shebang is in the committed bin/io-pgtable.js)
// instead of a second full copy of the CLI. The executable is ESM; the thin bin.cjs that the
// CJS pass also emits is left out of the tarball (package.json `files`).
export default defineConfig(
  packageBuild({
    entry: { index: 'src/index.ts', bin: 'src/bin.ts' },
    splitting: true,
    dts: { entry: { index: 'src/index.ts' } },
  }),
);
