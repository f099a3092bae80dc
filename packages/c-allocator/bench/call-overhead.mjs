#!/usr/bin/env node
/**
 * Wasm call overhead of a C allocator, measured in this run (ns per call):
 *  - boundary: one empty ABI call (`iopgt_abi_features`) from JS into the module;
 *  - C pool alloc+free: a hit on examples/c-page-pool/pool.c's free list and the free
 *    under a completed flush token, through the loader (argument encoding, the 64-bit
 *    address read back, the live-table ledger, the host's zeroing of the page);
 *  - TS pool alloc+free: the same pair through @io-pgtable/page-pool, as the reference
 *    (same backing allocator, same page size, same run).
 * Each figure is the median of REPS repetitions of N pairs after a warm-up; the spread is
 * min..max over the repetitions. Needs clang + lld (tools/setup/clang.sh).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildC, clangProblem, compileCAllocator, createCAllocator } from '../dist/index.js';
import { createSystemAllocator } from '@io-pgtable/core';
import { withPagePool } from '@io-pgtable/page-pool';

const N = 200_000;
const REPS = 7;
const problem = clangProblem();
if (problem !== null) {
  console.error(`bench needs a wasm32 C compiler: ${problem}`);
  process.exit(1);
}
const dir = mkdtempSync(join(tmpdir(), 'iopgt-bench-'));
const wasmPath = join(dir, 'pool.wasm');
buildC(fileURLToPath(new URL('../../../examples/c-page-pool/pool.c', import.meta.url)), wasmPath);
const mod = compileCAllocator(wasmPath);
rmSync(dir, { recursive: true, force: true });

const CTX = Object.freeze({ mayBlock: false, kind: 'table', level: 3 });
const FREE = Object.freeze({ kind: 'table', level: 3, flush: Object.freeze({ id: 1, done: true }) });

/** ns per call of `pair` (2 calls: alloc + free), N pairs, median/min/max of REPS. */
function measure(pair) {
  for (let i = 0; i < N / 4; i++) pair();
  const ns = [];
  for (let r = 0; r < REPS; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < N; i++) pair();
    ns.push(Number(process.hrtime.bigint() - t) / (2 * N));
  }
  ns.sort((a, b) => a - b);
  return { median: ns[REPS >> 1], min: ns[0], max: ns[REPS - 1] };
}

const c = createCAllocator(mod, { backing: createSystemAllocator() });
const first = c.alloc(4096, CTX);
c.free(first, 4096, FREE);
const cPool = measure(() => c.free(c.alloc(4096, CTX), 4096, FREE));

const ts = withPagePool(createSystemAllocator());
const t0 = ts.alloc(4096, CTX);
ts.free(t0, 4096, FREE);
ts.flushDone();
const tsPool = measure(() => {
  ts.free(ts.alloc(4096, CTX), 4096, FREE);
  ts.flushDone(FREE.flush);
});

// The raw boundary: an ABI call that does nothing but return a constant.
const { exports } = new WebAssembly.Instance(mod.module, {
  iopgt: Object.fromEntries(WebAssembly.Module.imports(mod.module).map((i) => [i.name, () => 0])),
});
const features = exports.iopgt_abi_features;
const boundary = measure(() => {
  features();
  features();
});

const fmt = (m) => `${m.median.toFixed(1).padStart(7)} ns/call  (min ${m.min.toFixed(1)}, max ${m.max.toFixed(1)})`;
console.log(`c-allocator call overhead: node ${process.version}, ${cpus().length} cores, ${new Date().toISOString()}, median of ${REPS} x ${N} pairs`);
console.log(`  empty wasm call (JS -> C)          ${fmt(boundary)}`);
console.log(`  C pool   alloc+free (hit), per call ${fmt(cPool)}`);
console.log(`  TS pool  alloc+free (hit), per call ${fmt(tsPool)}  (reference, same run)`);
