import { defineConfig } from 'tsup';
import { packageBuild } from '../tsup.base';

export default defineConfig([
  packageBuild(),
  // The executable: ESM only, with a shebang, no declarations.
  packageBuild({ entry: { bin: 'src/bin.ts' }, format: ['esm'], dts: false, clean: false, banner: { js: '#!/usr/bin/env node' } }),
]);
