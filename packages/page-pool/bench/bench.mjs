// Page-pool benchmarks: `npm run bench` (nx builds the package first). Prints numbers only.
import { createSystemAllocator } from '@io-pgtable/core';
import { withPagePool } from '../dist/index.js';
import { allocOnlyCase, machine, nsFmt, nsPerItem, perSecond, vmBindTable } from './workload.mjs';
import { benchArgs } from '../../../tools/bench/args.mjs';

benchArgs(`@io-pgtable/page-pool bench: ns per 4 KiB allocation (pool hit, miss, zero on-alloc/on-free) and a
VM_BIND-like churn with several watermarks; prints two markdown tables.`);

const SZ_4K = 4096;
const CTX = Object.freeze({ mayBlock: false });
const N = 256;

/** alloc N, free N, flushDone: the whole recycle loop, all timed. */
function cycle(top) {
  const held = new Float64Array(N);
  return {
    n: N,
    timed: () => {
      for (let i = 0; i < N; i++) held[i] = top.alloc(SZ_4K, CTX);
      for (let i = 0; i < N; i++) top.free(held[i], SZ_4K);
      top.flushDone();
    },
  };
}

const rows = [
  ['reference', 'bare createSystemAllocator', () => createSystemAllocator()],
  ['hit', 'withPagePool zero on-alloc', () => withPagePool(createSystemAllocator(), { highWatermark: N, zero: 'on-alloc' })],
  ['hit', 'withPagePool zero on-free', () => withPagePool(createSystemAllocator(), { highWatermark: N, zero: 'on-free' })],
  ['miss', 'withPagePool highWatermark 0', () => withPagePool(createSystemAllocator(), { highWatermark: 0 })],
];
const alloc = nsPerItem(rows.map(([, , make]) => allocOnlyCase(make(), N)));
const full = nsPerItem(rows.map(([, , make]) => cycle(make())));

console.log(`# @io-pgtable/page-pool bench on ${machine()}`);
console.log(`4 KiB allocations, ${N} per batch, median of 9 interleaved samples; the bare system allocator recycles from its own free list.`);
console.log('| path | allocator | alloc only | alloc + free + flushDone |');
console.log('|---|---|---|---|');
rows.forEach(([path, label], i) => {
  console.log(`| ${path} | ${label} | ${nsFmt(alloc[i])} (${perSecond(alloc[i])}) | ${nsFmt(full[i])} (${perSecond(full[i])}) |`);
});
console.log('');
vmBindTable({
  'bare system': (system) => ({ top: system }),
  'withPagePool (high 64)': (system) => ({ top: withPagePool(system) }),
  'withPagePool (high 64, zero on-free)': (system) => ({ top: withPagePool(system, { zero: 'on-free' }) }),
  'withPagePool (high 16)': (system) => ({ top: withPagePool(system, { highWatermark: 16 }) }),
});
