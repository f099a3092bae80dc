#!/usr/bin/env node
// `npm start`: build the CLI and what it depends on quietly (nx's task view and replayed
// build logs are not the answer; they are shown only if the build fails), then run
// `io-pgtable compare` directly so its own output is all the reader sees.
// Arguments after `npm start --` go to compare.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
// nx's own entry point, from its package.json (run with this node, no shell, no npx).
const nxPkg = createRequire(join(root, 'package.json')).resolve('nx/package.json');
const nxBin = JSON.parse(readFileSync(nxPkg, 'utf8')).bin;
const nx = join(dirname(nxPkg), typeof nxBin === 'string' ? nxBin : nxBin.nx);
const tty = process.stderr.isTTY === true && !process.env.CI;
if (tty) process.stderr.write('building the CLI (nx run @io-pgtable/cli:build)...');
const build = spawnSync(process.execPath, [nx, 'run', '@io-pgtable/cli:build', '--output-style=static'], {
  cwd: root,
  encoding: 'utf8',
  env: { ...process.env, NX_TUI: 'false', FORCE_COLOR: '0' },
  maxBuffer: 64 * 1024 * 1024,
});
if (tty) process.stderr.write('\r\x1b[2K');
if (build.status !== 0) {
  process.stderr.write(`${build.stdout ?? ''}${build.stderr ?? ''}\nnpm start: the build failed (above); nothing was compared\n`);
  process.exit(build.status ?? 1);
}
const run = spawnSync(process.execPath, [join(root, 'tools/cli/dist/bin.js'), 'compare', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
process.exit(run.status ?? 1);
