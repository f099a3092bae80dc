// Bundle a TypeScript entry with esbuild (already in the workspace via tsup) and run it.
// Workspace packages stay external and resolve to their built dist/.
import { build } from 'esbuild';
import { mkdirSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const [entry, ...rest] = process.argv.slice(2);
const outDir = join(here, '..', 'node_modules', '.cache', 'reliability');
mkdirSync(outDir, { recursive: true });
const outfile = join(outDir, basename(entry).replace(/\.ts$/, '.mjs'));
await build({ entryPoints: [resolve(entry)], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', packages: 'external', logLevel: 'warning' });
process.argv = [process.argv[0], outfile, ...rest];
await import(pathToFileURL(outfile).href);
