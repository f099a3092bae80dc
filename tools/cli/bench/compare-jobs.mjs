#!/usr/bin/env node
// Wall time of the default `io-pgtable compare` (every workload x every stack, 5 timed runs
// each) with --jobs 1 and --jobs 2, both measured here, alternating, so the two share the
// machine's conditions. Prints each run and the median of each side.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write('usage: node bench/compare-jobs.mjs [--rounds N] [-- extra compare options]\n  Times the default compare with --jobs 1 and --jobs 2, alternating, N rounds (default 2).\n');
  process.exit(0);
}
const ri = args.indexOf('--rounds');
const rounds = ri >= 0 ? Number(args[ri + 1]) : 2;
if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20)) {
  process.stderr.write('--rounds must be an integer in 1..20\n');
  process.exit(2);
}
const dd = args.indexOf('--');
const extra = dd >= 0 ? args.slice(dd + 1) : [];
const bin = join(dirname(fileURLToPath(import.meta.url)), '../dist/bin.js');

function once(jobs) {
  const out = mkdtempSync(join(tmpdir(), 'iopgt-bench-'));
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [bin, 'compare', '--quiet', '--json', '--jobs', String(jobs), '--out-dir', out, ...extra], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) {
    process.stderr.write(r.stderr);
    process.exit(1);
  }
  const runs = JSON.parse(readFileSync(join(out, 'data.json'), 'utf8')).results.length;
  return { s, runs };
}

const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
console.log(`compare --jobs 1 vs --jobs 2: node ${process.version}, ${availableParallelism()} cores available (${cpus()[0]?.model ?? '?'}), ${new Date().toISOString()}`);
const t = { 1: [], 2: [] };
for (let i = 0; i < rounds; i++) {
  for (const j of i % 2 ? [2, 1] : [1, 2]) {
    const { s, runs } = once(j);
    t[j].push(s);
    console.log(`  round ${i + 1}: --jobs ${j}: ${s.toFixed(2)} s (${runs} workload x stack runs)`);
  }
}
const m1 = median(t[1]);
const m2 = median(t[2]);
console.log(`median wall time: --jobs 1 ${m1.toFixed(2)} s [${Math.min(...t[1]).toFixed(2)}-${Math.max(...t[1]).toFixed(2)}], --jobs 2 ${m2.toFixed(2)} s [${Math.min(...t[2]).toFixed(2)}-${Math.max(...t[2]).toFixed(2)}]; speed-up ${(m1 / m2).toFixed(2)}x`);
