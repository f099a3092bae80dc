#!/usr/bin/env node
// Core benchmarks W1-W4 (issue 15): a 48-bit 4K ARM_64_LPAE_S1 table, coherent walk, the
// free-list system allocator, flush callbacks that only count. Prints what it measured in
// this run: ns per unit, best of the repetitions of each run, for several interleaved runs,
// with the spread across runs; `--mem` adds the memory figures of a fully mapped W1.
import { IotlbGather, Prot, createPageTable, createSystemAllocator, replayStream, xorshift32 } from '../dist/index.js';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const HELP = `usage: node bench/bench.mjs [options]

Runs the core workloads on a 48-bit 4K ARM_64_LPAE_S1 table (coherent walk, free-list system
allocator, counting flush callbacks) and prints ns per unit, in both modes by default:
  W1  map / unmap 1 GiB of 4 KiB pages (ns per page)
  W2  map / unmap 64 GiB of 2 MiB blocks (ns per block)
  W3  1,000,000 random iova_to_phys over W1's mapping (ns per lookup)
  W4  200,000 random 64 KiB map/unmap operations over 65,536 slots (ns per op)
  replay  a 100,000-op kernel trace (maps, unmaps, iova_to_phys; dumpEvery false) through
      replayStream, parsing and answering included (ops per second)
Each cell is the best of --reps repetitions; --runs runs are interleaved (every workload and
mode once per run; the replay runs, each in a process of its own, come after them) and the
table shows the median run with the range across runs, for wall time and for the process's
CPU time (which excludes time other processes held the core).

options:
  --mode kernel,strict   modes to run (default both)
  --reps N               repetitions per run, best taken (default 5)
  --runs N               interleaved runs, for the spread (default 3)
  --mem                  also measure memory for W1 fully mapped: typed-array bytes and RSS
                         growth, against the kernel's table bytes (same tables, same sizes)
  --json                 print only the JSON result
  --help                 print this help and exit
`;

const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(HELP);
  process.exit(0);
}
const KNOWN = new Set(['--mode', '--reps', '--runs', '--mem', '--json', '--mem-child', '--replay-child']);
for (let i = 0; i < args.length; i++) {
  if (!KNOWN.has(args[i])) {
    process.stderr.write(`bench: unknown option ${JSON.stringify(args[i].slice(0, 80))} (see --help)\n`);
    process.exit(2);
  }
  if (args[i] === '--mode' || args[i] === '--reps' || args[i] === '--runs' || args[i] === '--mem-child') i++;
}
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const modes = String(opt('mode', 'kernel,strict')).split(',');
let REPS = Number(opt('reps', '5'));
const RUNS = Number(opt('runs', '3'));
for (const [name, v] of [['--reps', REPS], ['--runs', RUNS]]) {
  if (!Number.isInteger(v) || v < 1 || v > 1000) {
    process.stderr.write(`bench: ${name} must be an integer in 1..1000\n`);
    process.exit(2);
  }
}
if (!modes.every((m) => m === 'kernel' || m === 'strict')) {
  process.stderr.write('bench: --mode takes kernel, strict or kernel,strict\n');
  process.exit(2);
}
const jsonOnly = args.includes('--json');
const withMem = args.includes('--mem');

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

/**
 * Wall-clock and CPU time of `fn` in ns. On a shared machine the wall time includes the
 * time other processes held the core; the process CPU time (user + system) does not, so
 * both are reported.
 */
function time(fn) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  fn();
  const wall = Number(process.hrtime.bigint() - t0);
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) * 1000 };
}

/** The best (smallest) of several measurements, each divided by `units`. */
class Best {
  wall = Infinity;
  cpu = Infinity;
  add(t, units) {
    this.wall = Math.min(this.wall, t.wall / units);
    this.cpu = Math.min(this.cpu, t.cpu / units);
  }
}

function mapUnmap(mode, iova, pa, pgsize, count) {
  const bestMap = new Best();
  const bestUnmap = new Best();
  const allocator = newAllocator();
  for (let rep = 0; rep < REPS; rep++) {
    const pt = newTable(mode, allocator);
    const gather = new IotlbGather();
    bestMap.add(time(() => mapRange(pt, iova, pa, pgsize, count)), count);
    bestUnmap.add(time(() => unmapRange(pt, iova, pgsize, count, gather)), count);
    pt.free();
  }
  return { map: bestMap, unmap: bestUnmap };
}

const W3_N = 1_000_000;
const w3Offsets = (() => {
  const rnd = xorshift32(42);
  const offs = new Float64Array(W3_N);
  for (let i = 0; i < W3_N; i++) offs[i] = (rnd() % (SZ_1G / 8)) * 8;
  return offs;
})();

function w3(mode) {
  const pt = newTable(mode, newAllocator());
  mapRange(pt, 0x1_0000_0000, 0x2_0000_0000, SZ_4K, SZ_1G / SZ_4K);
  const offs = w3Offsets;
  // Every lookup must hit: fold the low 32 bits of each answer and compare per repetition
  // (a running sum would pass 2^53 and lose precision).
  let expect = 0;
  for (let i = 0; i < W3_N; i++) expect ^= (0x2_0000_0000 + offs[i]) >>> 0;
  const best = new Best();
  for (let rep = 0; rep < REPS; rep++) {
    let check = 0;
    best.add(time(() => {
      for (let i = 0; i < W3_N; i++) check ^= pt.iovaToPhys(0x1_0000_0000 + offs[i]) >>> 0;
    }), W3_N);
    if (check !== expect) throw new Error('W3 translations are wrong');
  }
  pt.free();
  return best;
}

function w4(mode) {
  const SLOTS = 65_536;
  const OPS = 200_000;
  const best = new Best();
  const allocator = newAllocator();
  for (let rep = 0; rep < REPS; rep++) {
    const pt = newTable(mode, allocator);
    const live = new Uint8Array(SLOTS);
    const rnd = xorshift32(7 + rep);
    const gather = new IotlbGather();
    best.add(time(() => {
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
    }), OPS);
    pt.free();
  }
  return best;
}

const REPLAY_OPS = 100_000;
/**
 * A 100k-op trace in the vectors' format: 64 KiB maps and unmaps at random slots of a 4 GiB
 * window (some hitting EEXIST or ENOENT, as a fuzzer's do) and lookups between them.
 */
const replayTrace = (() => {
  const rnd = xorshift32(99);
  const lines = ['{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48,"quirks":[],"coherentWalk":true,"allocBase":"0x80000000","dumpEvery":false}'];
  const hex = (v) => '0x' + v.toString(16);
  for (let i = 0; i < REPLAY_OPS; i++) {
    const iova = 0x400_0000_0000 + (rnd() % 65536) * 0x1_0000;
    const k = rnd() % 3;
    if (k === 0) lines.push(`{"op":"map","iova":"${hex(iova)}","paddr":"${hex(0x3_0000_0000 + (rnd() % 65536) * 0x1_0000)}","pgsize":"0x1000","pgcount":16,"prot":["read","write","cache"]}`);
    else if (k === 1) lines.push(`{"op":"unmap","iova":"${hex(iova)}","pgsize":"0x1000","pgcount":16}`);
    else lines.push(`{"op":"iova_to_phys","iova":"${hex(iova + (rnd() % 16) * 0x1000 + 0x10)}"}`);
  }
  lines.push('{"op":"free"}');
  return lines.join('\n') + '\n';
})();

/** Replay throughput in ops/s: best of the repetitions (its own unit: higher is better). */
async function replayBench() {
  let best = 0;
  let bestCpu = 0;
  for (let rep = 0; rep < REPS; rep++) {
    let chars = 0;
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for await (const piece of replayStream([replayTrace])) chars += piece.length;
    const wall = Number(process.hrtime.bigint() - t0);
    const c = process.cpuUsage(c0);
    if (chars === 0) throw new Error('replay produced no output');
    best = Math.max(best, (REPLAY_OPS * 1e9) / wall);
    bestCpu = Math.max(bestCpu, (REPLAY_OPS * 1e6) / (c.user + c.system));
  }
  return { wall: best, cpu: bestCpu };
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

/**
 * Memory of W1 fully mapped, in a fresh allocator and memory: growth of the process's
 * ArrayBuffer bytes (every typed array the model holds: table storage, frame state,
 * overlap bitmaps) and of its RSS, each against the bytes of the kernel's tables (the same
 * 515 tables, allocated with the same sizes).
 */
function memory(mode) {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  // Warm up first (map and free 64 MiB in the same mode, on another memory): the figure is
  // the growth of the model's data, not the one-time cost of compiling the code that builds it.
  const warm = newTable(mode, newAllocator());
  mapRange(warm, 0x1_0000_0000, 0x2_0000_0000, SZ_4K, 16384);
  warm.free();
  gc();
  gc();
  const before = process.memoryUsage();
  const pt = newTable(mode, newAllocator());
  mapRange(pt, 0x1_0000_0000, 0x2_0000_0000, SZ_4K, SZ_1G / SZ_4K);
  gc();
  const after = process.memoryUsage();
  const tableBytes = pt.stats().liveBytes;
  const out = {
    tables: pt.stats().liveTables,
    kernelTableBytes: tableBytes,
    arrayBufferGrowth: after.arrayBuffers - before.arrayBuffers,
    rssGrowth: after.rss - before.rss,
  };
  pt.free();
  return { ...out, arrayBufferRatio: out.arrayBufferGrowth / tableBytes, rssRatio: out.rssGrowth / tableBytes };
}

// Internal: the replay figure in a fresh process (see replayInChild).
if (args.includes('--replay-child')) {
  process.stdout.write(JSON.stringify(await replayBench()) + '\n');
  process.exit(0);
}

/**
 * Replay in a process of its own: it calls the page table with bigint arguments and
 * gathers of its own, and the type feedback that leaves would slow the number-only
 * workloads measured after it (unmap ran 2.5x slower in the runs after a replay).
 */
function replayInChild() {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--replay-child', '--reps', String(REPS)], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop());
}

// Internal: one memory measurement in a fresh process (see memoryInChild).
if (args.includes('--mem-child')) {
  process.stdout.write(JSON.stringify(memory(opt('mem-child', 'kernel'))) + '\n');
  process.exit(0);
}

/** Each mode's memory figures in a process of its own, so no earlier garbage is counted. */
function memoryInChild(mode) {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--mem-child', mode], { encoding: 'utf8' });
  return JSON.parse(out.trim().split('\n').pop());
}

const KEYS = ['w1Map', 'w1Unmap', 'w2Map', 'w2Unmap', 'w3', 'w4'];
warmup();
// Then every workload at full size, unmeasured, as many times as a measured run makes
// them: without this the first workload of the first two runs measured up to 1.7x slower
// than in the third (the process's CPU time above its wall time showed the collector and
// the optimizing compiler still at work while it ran).
{
  const saved = REPS;
  for (let pass = 0; pass < 2; pass++) {
    for (const mode of modes) {
      mapUnmap(mode, 0x1_0000_0000, 0x2_0000_0000, SZ_4K, SZ_1G / SZ_4K);
      mapUnmap(mode, 0x10_0000_0000, 0x2_0000_0000, SZ_2M, (64 * SZ_1G) / SZ_2M);
      w3(mode);
      w4(mode);
    }
  }
  REPS = saved;
}
const runs = [];
for (let run = 0; run < RUNS; run++) {
  const r = {};
  for (const mode of modes) {
    const w1 = mapUnmap(mode, 0x1_0000_0000, 0x2_0000_0000, SZ_4K, SZ_1G / SZ_4K);
    const w2 = mapUnmap(mode, 0x10_0000_0000, 0x2_0000_0000, SZ_2M, (64 * SZ_1G) / SZ_2M);
    r[mode] = { w1Map: w1.map, w1Unmap: w1.unmap, w2Map: w2.map, w2Unmap: w2.unmap, w3: w3(mode), w4: w4(mode) };
  }
  runs.push(r);
}
// The replay figure comes from a process of its own, one per run, after all of them: the
// workload measured right after a child process exited ran up to 1.7x slower (W1 map, the
// cell after run 1's child, in 3 of 3 trials; none when the children ran last).
for (const r of runs) r.replay = replayInChild();
const summary = {};
const stat = (v) => {
  v.sort((a, b) => a - b);
  return { median: v[Math.floor(v.length / 2)], min: v[0], max: v[v.length - 1] };
};
for (const mode of modes) {
  summary[mode] = {};
  for (const k of KEYS) summary[mode][k] = { wall: stat(runs.map((r) => r[mode][k].wall)), cpu: stat(runs.map((r) => r[mode][k].cpu)) };
}
const replaySummary = { wall: stat(runs.map((r) => r.replay.wall)), cpu: stat(runs.map((r) => r.replay.cpu)) };
const mem = withMem ? Object.fromEntries(modes.map((m) => [m, memoryInChild(m)])) : undefined;
const machine = { cpu: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, node: process.version, loadavg: os.loadavg().map((x) => +x.toFixed(2)) };
const out = { machine, date: new Date().toISOString(), reps: REPS, runs: RUNS, unit: 'ns', summary, replay: { unit: 'ops/s', ops: REPLAY_OPS, ...replaySummary }, runsRaw: runs, memory: mem, flushCounts: counts };
if (!jsonOnly) {
  const rows = [
    ['W1 map (ns/page)', 'w1Map'],
    ['W1 unmap (ns/page)', 'w1Unmap'],
    ['W2 map (ns/block)', 'w2Map'],
    ['W2 unmap (ns/block)', 'w2Unmap'],
    ['W3 iova_to_phys (ns/lookup)', 'w3'],
    ['W4 random 64K map/unmap (ns/op)', 'w4'],
  ];
  const f = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(2));
  const head = ['workload', ...modes.flatMap((m) => [`${m} wall: median (range)`, `${m} cpu: median (range)`])];
  const cell = (s) => `${f(s.median)} (${f(s.min)}-${f(s.max)})`;
  const lines = rows.map(([label, k]) => [label, ...modes.flatMap((m) => [cell(summary[m][k].wall), cell(summary[m][k].cpu)])]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
  console.log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node}, load ${machine.loadavg.join(' ')}; ${RUNS} runs, best of ${REPS} each`);
  console.log(fmt(head));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const l of lines) console.log(fmt(l));
  const k = (x) => `${(x / 1000).toFixed(0)}k`;
  console.log(`replay (${REPLAY_OPS} ops, replayStream, dumpEvery false): wall ${k(replaySummary.wall.median)} ops/s (${k(replaySummary.wall.min)}-${k(replaySummary.wall.max)}), cpu ${k(replaySummary.cpu.median)} ops/s (${k(replaySummary.cpu.min)}-${k(replaySummary.cpu.max)})`);
  if (mem) {
    for (const m of modes) {
      const x = mem[m];
      console.log(
        `memory (${m}, W1 mapped: ${x.tables} tables = ${x.kernelTableBytes} B of kernel tables): typed arrays +${x.arrayBufferGrowth} B (${x.arrayBufferRatio.toFixed(2)}x), RSS +${x.rssGrowth} B (${x.rssRatio.toFixed(2)}x)`,
      );
    }
  }
}
console.log(JSON.stringify(out));
