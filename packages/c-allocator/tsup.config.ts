import { defineConfig } from 'tsup';
import { packageBuild } from '../../tools/tsup.base';

// shims: the CJS build needs import.meta.url to find the shipped include/ directory.
export default defineConfig(packageBuild({ shims: true }));
