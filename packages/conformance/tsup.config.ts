import { defineConfig } from 'tsup';
import { packageBuild } from '../../tools/tsup.base';

// ESM-only: vitest cannot be require()d, and a second vitest copy registers no tests (G7).
export default defineConfig(packageBuild({ format: ['esm'], external: ['vitest', /^@vitest\//] }));
