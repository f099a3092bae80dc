#!/usr/bin/env node
// Core benchmarks W1-W4 (issue 3): a 48-bit 4K ARM_64_LPAE_S1 table, coherent walk, the
// free-list system allocator, flush callbacks that only count. Prints ns per unit as a
// table and as JSON. Usage: node bench/bench.mjs [--mode kernel|strict] [--reps N] [--json]
import { IotlbGather, Prot, createPageTable, createSystemAllocator, xorshift32 } from '../dist/index.js';
import os from 'node:os';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const modes = opt('mode', 'kernel,strict').split(',');
const REPS = Number(opt('reps', '5'));
const jsonOnly = args.includes('--json');

const SZ_4K = 0x1000;
const SZ_2M = 0x20_0000;
const SZ_1G = 0x4000_0000;
const RW = Prot.READ | Prot.WRITE | Prot.CACHE;
const counts = { all: 0, walk: 0, page: 0 };
const tlb = { tlbFlushAll: () => counts.all++, tlbFlushWalk: () => counts.walk++, tlbAddPage: () => counts.page++ };

/**
 * One free-list allocator per workload, reused across repetitions as the C harness reuses
 * its page allocator: from the second repetition on, tables come from the free lists
 * (warm, re-zeroed) instead of fresh host pages that fault in on first touch.
 */
function newAllocator() {
  return createSystemAllocator({ limit: 0x4000_0000 });
}
function newTable(mode, allocator) {
  return createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 }, { allocator, tlb, mode });
}

/** iommu_map-style: call map_pages with the remaining count until done. */
function mapRange(pt, iova, pa, pgsize, count) {
  while (count > 0) {
    const r = pt.mapPages(iova, pa, pgsize, count, RW);
    if (r.error) throw new Error(`map failed: ${r.error} ${r.message}`);
    const n = r.mapped / pgsize;
    iova += r.mapped;
    pa += r.mapped;
    count -= n;
  }
}
function unmapRange(pt, iova, pgsize, count, gather) {
  while (count > 0) {
    const r = pt.unmapPages(iova, pgsize, count, gather);
    if (r.error) throw new Error(`unmap failed: ${r.error} ${r.message}`);
    iova += r.unmapped;
    count -= r.unmapped / pgsize;
  }
}

function time(fn) {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0);
}


function mapUnmap(mode, iova, pa, pgsize, count) {
  let bestMap = Infinity;
  let bestUnmap = Infinity;
  const allocator = newAllocator();
  for (let rep = 0; rep < REPS; rep++) {
    const pt = newTable(mode, allocator);
    const gather = new IotlbGather();
    bestMap = Math.min(bestMap, time(() => mapRange(pt, iova, pa, pgsize, count)) / count);
    bestUnmap = Math.min(bestUnmap, time(() => unmapRange(pt, iova, pgsize, count, gather)) / count);
    pt.free();
  }
  return { map: bestMap, unmap: bestUnmap };
}

function w3(mode) {
  const pt = newTable(mode, newAllocator());
  mapRange(pt, 0x1_0000_0000, 0x2_0000_0000, SZ_4K, SZ_1G / SZ_4K);
  const rnd = xorshift32(42);
  const N = 1_000_000;
  const offs = new Float64Array(N);
  for (let i = 0; i < N; i++) offs[i] = (rnd() % (SZ_1G / 8)) * 8;
  // Every lookup must hit: fold the low 32 bits of each answer and compare per repetition
  // (a running sum would pass 2^53 and lose precision).
  let expect = 0;
  for (let i = 0; i < N; i++) expect ^= (0x2_0000_0000 + offs[i]) >>> 0;
  let best = Infinity;
  for (let rep = 0; rep < REPS; rep++) {
    let check = 0;
    best = Math.min(best, time(() => {
      for (let i = 0; i < N; i++) check ^= pt.iovaToPhys(0x1_0000_0000 + offs[i]) >>> 0;
    }) / N);
    if (check !== expect) throw new Error('W3 translations are wrong');
  }
  pt.free();
  return best;
}

function w4(mode) {
  const SLOTS = 65_536;
  const OPS = 200_000;
  let best = Infinity;
  const allocator = newAllocator();
  for (let rep = 0; rep < REPS; rep++) {
    const pt = newTable(mode, allocator);
    const live = new Uint8Array(SLOTS);
    const rnd = xorshift32(7 + rep);
    const gather = new IotlbGather();
    best = Math.min(best, time(() => {
      for (let i = 0; i < OPS; i++) {
        const slot = rnd() % SLOTS;
        const iova = 0x400_0000_0000 + slot * 0x1_0000;
        if (live[slot]) {
          const r = pt.unmapPages(iova, SZ_4K, 16, gather);
          if (r.unmapped !== 0x1_0000) throw new Error('W4 unmap');
          live[slot] = 0;
        } else {
          const r = pt.mapPages(iova, 0x3_0000_0000 + slot * 0x1_0000, SZ_4K, 16, RW);
          if (r.mapped !== 0x1_0000) throw new Error('W4 map');
          live[slot] = 1;
        }
      }
    }) / OPS);
    pt.free();
  }
  return best;
}

/**
 * Run every operation in every mode at a small scale first, so that no measured workload
 * pays for JIT compilation (otherwise whichever workload and mode run first look slower).
 */
function warmup() {
  for (const mode of ['kernel', 'strict']) {
    const allocator = newAllocator();
    for (let rep = 0; rep < 3; rep++) {
      const pt = newTable(mode, allocator);
      const gather = new IotlbGather();
      mapRange(pt, 0x1_0000_0000, 0x2_0000_0000, SZ_4K, 16384);
      mapRange(pt, 0x10_0000_0000, 0x2_0000_0000, SZ_2M, 1024);
      for (let i = 0; i < 100_000; i++) pt.iovaToPhys(0x1_0000_0000 + (i % 16384) * SZ_4K);
      unmapRange(pt, 0x1_0000_0000, SZ_4K, 16384, gather);
      unmapRange(pt, 0x10_0000_0000, SZ_2M, 1024, gather);
      for (let i = 0; i < 2000; i++) {
        const iova = 0x400_0000_0000 + (i % 256) * 0x1_0000;
        if ((i >> 8) % 2 === 0) pt.mapPages(iova, 0x3_0000_0000, SZ_4K, 16, RW);
        else pt.unmapPages(iova, SZ_4K, 16, gather);
      }
      pt.free();
    }
  }
}

const kernelC = { w1Map: 3.1, w1Unmap: 4.0, w2Map: 3.4, w2Unmap: 4.0, w3: 70, w4: 320 };
const results = {};
warmup();
for (const mode of modes) {
  const w1 = mapUnmap(mode, 0x1_0000_0000, 0x2_0000_0000, SZ_4K, SZ_1G / SZ_4K);
  const w2 = mapUnmap(mode, 0x10_0000_0000, 0x2_0000_0000, SZ_2M, (64 * SZ_1G) / SZ_2M);
  results[mode] = { w1Map: w1.map, w1Unmap: w1.unmap, w2Map: w2.map, w2Unmap: w2.unmap, w3: w3(mode), w4: w4(mode) };
}
const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version };
const out = { machine, reps: REPS, unit: 'ns', kernelC, results, flushCounts: counts };
if (!jsonOnly) {
  const rows = [
    ['W1 map (ns/page)', 'w1Map'],
    ['W1 unmap (ns/page)', 'w1Unmap'],
    ['W2 map (ns/block)', 'w2Map'],
    ['W2 unmap (ns/block)', 'w2Unmap'],
    ['W3 iova_to_phys (ns/lookup)', 'w3'],
    ['W4 random 64K map/unmap (ns/op)', 'w4'],
  ];
  const head = ['workload', 'Linux C -O2', ...modes.map((m) => `${m} (x C)`)];
  const lines = rows.map(([label, k]) => [label, String(kernelC[k]), ...modes.map((m) => `${results[m][k].toFixed(1)} (${(results[m][k] / kernelC[k]).toFixed(2)}x)`)]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}; best of ${REPS}`);
  console.log(fmt(head));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const l of lines) console.log(fmt(l));
}
console.log(JSON.stringify(out));
