// Batched-allocator benchmarks: `npm run bench` (nx builds the package first). Prints numbers only.
// The VM_BIND workload and timing helpers are shared with the page-pool bench (dev-only files).
import { createSystemAllocator } from '@io-pgtable/core';
import { withPagePool } from '@io-pgtable/page-pool';
import { allocOnlyCase, machine, nsFmt, nsPerItem, perSecond, vmBindTable } from '../../page-pool/bench/workload.mjs';
import { withBatching } from '../dist/index.js';
import { benchArgs } from '../../../tools/bench/args.mjs';

benchArgs(`@io-pgtable/batched bench: ns per 4 KiB allocation (hit and refill paths, batch 1/16/64) and a
VM_BIND-like churn over stacks with and without withPagePool; prints two markdown tables.`);

const SZ_4K = 4096;
const CTX = Object.freeze({ mayBlock: false });
const N = 256;

const rows = [
  ['reference', 'bare createSystemAllocator', () => createSystemAllocator(), false],
  ['hit (held stock)', 'withBatching batch 16', () => withBatching(createSystemAllocator(), { batch: 16 }), true],
  ['miss (refills)', 'withBatching batch 1', () => withBatching(createSystemAllocator(), { batch: 1 }), false],
  ['miss (refills)', 'withBatching batch 16', () => withBatching(createSystemAllocator(), { batch: 16 }), false],
  ['miss (refills)', 'withBatching batch 64', () => withBatching(createSystemAllocator(), { batch: 64 }), false],
  ['miss (refills)', 'withBatching batch 64 partial', () => withBatching(createSystemAllocator(), { batch: 64, mode: 'partial' }), false],
];
// The hit path refills the held stock untimed, so every timed allocation is served without a backing call.
const ns = nsPerItem(
  rows.map(([, , make, prefill]) => {
    const top = make();
    return allocOnlyCase(top, N, () => {
      if (prefill) while (top.heldPages(SZ_4K) < N) top.refill(SZ_4K, CTX);
    });
  }),
);

console.log(`# @io-pgtable/batched bench on ${machine()}`);
console.log(`4 KiB allocations, ${N} per batch, median of 9 interleaved samples (free + flushDone untimed).`);
console.log('| path | allocator | alloc | backing calls / alloc |');
console.log('|---|---|---|---|');
rows.forEach(([path, label, , prefill], i) => {
  const batch = Number(/batch (\d+)/.exec(label)?.[1] ?? 1);
  const calls = prefill ? 0 : 1 / batch;
  console.log(`| ${path} | ${label} | ${nsFmt(ns[i])} (${perSecond(ns[i])}) | ${calls.toFixed(4)} |`);
});
console.log('');
const batched = (inner, batch) => withBatching(inner, { batch });
vmBindTable({
  'bare system': (system) => ({ top: system }),
  'withBatching(16)': (system) => {
    const top = batched(system, 16);
    return { top, bulkCalls: () => top.stats().backingCalls };
  },
  'withBatching(64)': (system) => {
    const top = batched(system, 64);
    return { top, bulkCalls: () => top.stats().backingCalls };
  },
  'withBatching(16) over withPagePool': (system) => {
    const top = batched(withPagePool(system), 16);
    return { top };
  },
  'withPagePool over withBatching(16)': (system) => {
    const bat = batched(system, 16);
    return { top: withPagePool(bat), bulkCalls: () => bat.stats().backingCalls };
  },
});
