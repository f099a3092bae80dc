// Over-provisioning report: tables reserved / tables consumed on VM_BIND-like workloads,
// for each counting strategy. Deterministic (seeded), so the README numbers reproduce.
//   node bench/overprovision.mjs [--jobs N] [--depth D] [--seed S]
import { createSystemAllocator, xorshift32 } from '@io-pgtable/core';
import { VmBindQueue, createAdmission, createVm, withReservation } from '../dist/index.js';
import { benchArgs } from '../../../tools/bench/args.mjs';

const args = benchArgs('@io-pgtable/reservation over-provisioning report: tables reserved / tables consumed per\ncounting strategy on seeded VM_BIND-like workloads (deterministic); prints a markdown table.', {
  jobs: { default: 2000, help: 'VM_BIND jobs per workload' },
  depth: { default: 8, help: 'jobs queued ahead of each run' },
  seed: { default: 1, help: 'workload seed' },
});
const JOBS = args.jobs;
const DEPTH = args.depth;
const SEED = args.seed;
const SZ_4K = 0x1000;
const SZ_64K = 0x10000;
const SZ_2M = 0x200000;
const CFG = { pgsizeBitmap: SZ_4K + SZ_2M, ias: 48, oas: 48 };

/** xorshift32 as floats in [0, 1). */
function rng(seed) {
  const next = xorshift32(seed);
  return () => next() / 2 ** 32;
}

/**
 * Buffer binds (Vulkan/GL-style): one map per job for a new buffer object, log-uniform
 * 4 KiB .. 8 MiB, VA from a bump allocator aligning >= 2 MiB objects to 2 MiB (so the
 * map uses blocks where it can); 30 % of jobs unmap an older buffer instead.
 */
function bufferWorkload(n, seed) {
  const rand = rng(seed);
  const live = [];
  const jobs = [];
  let va = 0x1_0000_0000;
  let pa = 0x10_0000_0000;
  for (let i = 0; i < n; i++) {
    if (live.length > 16 && rand() < 0.3) {
      const [bo] = live.splice(Math.floor(rand() * live.length), 1);
      jobs.push([{ kind: 'unmap', iova: bo.iova, size: bo.size }]);
      continue;
    }
    const size = Math.max(SZ_4K, Math.round(2 ** (12 + rand() * 11) / SZ_4K) * SZ_4K);
    const align = size >= SZ_2M ? SZ_2M : SZ_64K;
    va = Math.ceil(va / align) * align;
    pa = Math.ceil(pa / align) * align;
    const bo = { iova: va, size };
    jobs.push([{ kind: 'map', iova: va, size, paddr: pa }]);
    live.push(bo);
    va += size;
    pa += size;
  }
  return jobs;
}

/**
 * Sparse residency (vkQueueBindSparse): each job binds 32 tiles of 64 KiB, in random
 * order, into a 1 GiB sparse image; later jobs unbind some tiles. 4K pages only (msm's setting).
 */
function sparseWorkload(n, seed) {
  const rand = rng(seed);
  const base = 0x40_0000_0000;
  const tiles = (1 << 30) / SZ_64K;
  const bound = new Set();
  const jobs = [];
  for (let i = 0; i < n; i++) {
    const ops = [];
    const unbind = bound.size > 256 && rand() < 0.25;
    for (let k = 0; k < 32; k++) {
      // Tiles of one job cluster in a 32 MiB region, as a mip level or a texture region would.
      const region = Math.floor(rand() * 32);
      const t = region * 512 + Math.floor(rand() * 512);
      const iova = base + t * SZ_64K;
      if (unbind) {
        if (!bound.has(t)) continue;
        bound.delete(t);
        ops.push({ kind: 'unmap', iova, size: SZ_64K });
      } else {
        if (bound.has(t) || ops.some((o) => o.iova === iova)) continue;
        bound.add(t);
        ops.push({ kind: 'map', iova, size: SZ_64K, paddr: 0x20_0000_0000 + t * SZ_64K, pgsize: SZ_4K });
      }
    }
    if (ops.length > 0) jobs.push(ops);
  }
  void tiles;
  return jobs;
}

/** Run a workload through a queue `DEPTH` jobs deep; returns reserved/consumed/peak. */
function measure(jobs, strategy, exactPageSizes) {
  const backing = createSystemAllocator({ limit: 2 ** 33 });
  const allocator = withReservation(backing);
  const vm = createVm(allocator, { format: 'ARM_64_LPAE_S1', cfg: CFG });
  const queue = new VmBindQueue(vm, { strategy, exactPageSizes });
  let peak = 0;
  const t0 = performance.now();
  for (let i = 0; i < jobs.length; i++) {
    queue.trySubmit(jobs[i]);
    peak = Math.max(peak, allocator.stats().reserved / 4096);
    if (i % DEPTH === DEPTH - 1) {
      queue.runAll();
      queue.cleanup();
    }
  }
  queue.runAll();
  queue.cleanup();
  const ms = performance.now() - t0;
  const c = queue.counters();
  const failures = c.runFailures;
  const exhaustions = allocator.counters().exhaustions;
  vm.destroy();
  if (backing.stats().outstanding !== 0) throw new Error('pages leaked');
  return { ...c, peak, failures, exhaustions, ms };
}

const STRATEGIES = ['per-op', 'msm', 'union', 'tree'];
const workloads = [
  ['buffer binds', bufferWorkload(JOBS, SEED)],
  ['sparse tiles', sparseWorkload(JOBS, SEED + 1)],
];

console.log(`# Over-provisioning (reserved / consumed), ${JOBS} jobs per workload, queue depth ${DEPTH}, seed ${SEED}`);
console.log('# VM: ARM_64_LPAE_S1, 48-bit, 4K|2M (Panthor); reservations released after each batch of jobs\n');
console.log('| workload | strategy | jobs | reserved | consumed | reserved/consumed | peak reserved pages | exhaustions | ms |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|');
for (const [name, jobs] of workloads) {
  for (const [s, exact] of STRATEGIES.flatMap((s) => [[s, false], [s, true]])) {
    const r = measure(jobs, s, exact);
    const ratio = r.consumed === 0 ? 'n/a' : (r.reserved / r.consumed).toFixed(2);
    console.log(`| ${name} | ${s}${exact ? ' + page sizes' : ''} | ${r.ran} | ${r.reserved} | ${r.consumed} | ${ratio} | ${r.peak} | ${r.exhaustions} | ${r.ms.toFixed(0)} |`);
  }
}

// Admission control: the same sparse workload with a 1024-page cap (msm's number).
{
  const jobs = workloads[1][1];
  const backing = createSystemAllocator({ limit: 2 ** 33 });
  const allocator = withReservation(backing);
  const vm = createVm(allocator, { format: 'ARM_64_LPAE_S1', cfg: CFG });
  const admission = createAdmission({ limit: 1024 });
  const queue = new VmBindQueue(vm, { strategy: 'per-op', admission });
  const pending = jobs.map((ops) => queue.submit(ops));
  while (queue.counters().ran < jobs.length) {
    await new Promise((r) => setImmediate(r));
    queue.runAll();
    queue.cleanup();
  }
  await Promise.all(pending);
  const a = admission.counters();
  console.log(`\nadmission (limit 1024 pages, per-op counts, all ${jobs.length} sparse jobs submitted at once): peak ${a.peak} pages, ${a.waited} jobs waited, 0 failed: ${queue.counters().runFailures === 0}`);
  vm.destroy();
}
