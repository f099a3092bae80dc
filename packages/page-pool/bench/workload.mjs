// Shared benchmark machinery for the allocator plugins (page-pool and batched benches).
// Dev-only: not published, not run by tests. Numbers are printed, never asserted.
import { IotlbGather, createPageTable, createSystemAllocator, mulberry32 } from '@io-pgtable/core';
import os from 'node:os';

const SZ_4K = 4096;
const SZ_2M = 0x20_0000;
const SZ_1G = 0x4000_0000;
const BLOCKING = Object.freeze({ mayBlock: true });

export function machine() {
  return `${os.cpus()[0]?.model ?? 'cpu'} x${os.availableParallelism?.() ?? os.cpus().length} (nproc), node ${process.version}`;
}

/** Deterministic PRNG (core's mulberry32), so every stack sees the same workload. */
export const rng = mulberry32;

/**
 * Time per item, in ns, of several cases measured round-robin (one untimed warm-up pass,
 * then `samples` passes; the median is reported), so JIT warm-up and machine drift hit
 * every case alike. Each case: `{n, setup?, timed}`; `setup(n)` runs untimed before each
 * repetition (refilling, freeing, flushing) so only the path of interest is timed.
 */
export function nsPerItem(cases, { samples = 9, minNs = 40e6 } = {}) {
  const sample = ({ n, setup = () => {}, timed }, budget) => {
    let ns = 0;
    let items = 0;
    while (ns < budget) {
      setup(n);
      const t0 = process.hrtime.bigint();
      timed(n);
      ns += Number(process.hrtime.bigint() - t0);
      items += n;
    }
    return ns / items;
  };
  for (const c of cases) sample(c, minNs / 4);
  const results = cases.map(() => []);
  for (let s = 0; s < samples; s++) cases.forEach((c, i) => results[i].push(sample(c, minNs)));
  return results.map(median);
}

/**
 * A timing case: allocate `n` 4 KiB pages (timed); before each repetition, free the last
 * ones, signal the flush and run `prepare()` (all untimed).
 */
export function allocOnlyCase(top, n, prepare = () => {}) {
  const held = new Float64Array(n);
  const ctx = Object.freeze({ mayBlock: false });
  let primed = false;
  return {
    n,
    setup: () => {
      if (primed) {
        for (let i = 0; i < n; i++) top.free(held[i], SZ_4K);
        top.flushDone();
      }
      primed = true;
      prepare();
    },
    timed: () => {
      for (let i = 0; i < n; i++) held[i] = top.alloc(SZ_4K, ctx);
    },
  };
}

const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1];

export const perSecond = (ns) => `${(1e9 / ns / 1e6).toFixed(2)} M/s`;
export const nsFmt = (ns) => `${ns.toFixed(0)} ns`;

/** A page-table setup for the VM_BIND-like workload: 48-bit VA and PA, 4 KiB granule. */
function newTable(allocator) {
  return createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: SZ_4K | SZ_2M | SZ_1G, ias: 48, oas: 48 }, { allocator });
}

/**
 * VM_BIND-like churn: 64 arenas of 1 GiB; each bind maps a buffer of 1-8 chunks of 2 MiB,
 * `pagesPerChunk` 4 KiB pages in each (a sparse binding, so table allocation is a visible
 * share of the cost); each unbind unmaps it with 2 MiB blocks (freeing its leaf tables) or,
 * one time in four, with one 1 GiB block (freeing the level-2 table too). Every unbind is
 * followed by the driver's flush and `flushDone()`. Returns the wall time and, when
 * `record` is set, the allocator event trace for allocator-only replay.
 */
export function vmBind(allocator, { steps = 4000, seed = 1, pagesPerChunk = 16, record = false } = {}) {
  const arenas = 64;
  const base = 2 ** 40;
  const rand = rng(seed);
  const chunks = new Int32Array(arenas); // 0 = free arena
  const live = new Int32Array(arenas);
  let liveCount = 0;
  const trace = record ? traceRecorder(allocator) : null;
  const top = trace ? trace.allocator : allocator;
  const t0 = process.hrtime.bigint();
  const pt = newTable(top);
  const gather = new IotlbGather();
  let binds = 0;
  let unbinds = 0;
  for (let step = 0; step < steps; step++) {
    if (liveCount < arenas && (liveCount < arenas / 2 || rand() < 0.5)) {
      let a = Math.floor(rand() * arenas);
      while (chunks[a] !== 0) a = (a + 1) % arenas;
      const k = 1 + Math.floor(rand() * 8);
      for (let c = 0; c < k; c++) {
        const r = pt.mapPages(base + a * SZ_1G + c * SZ_2M, 0x1_0000_0000 + c * SZ_2M, SZ_4K, pagesPerChunk, 3);
        if (r.error) throw new Error(`map failed: ${r.error} ${r.message}`);
      }
      chunks[a] = k;
      live[liveCount++] = a;
      binds++;
    } else {
      const i = Math.floor(rand() * liveCount);
      const a = live[i];
      live[i] = live[--liveCount];
      const iova = base + a * SZ_1G;
      const r = rand() < 0.25 ? pt.unmapPages(iova, SZ_1G, 1, gather) : pt.unmapPages(iova, SZ_2M, chunks[a], gather);
      if (r.error) throw new Error(`unmap failed: ${r.error}`);
      chunks[a] = 0;
      gather.reset();
      top.flushDone();
      unbinds++;
    }
  }
  pt.free();
  top.flushDone();
  const ns = Number(process.hrtime.bigint() - t0);
  return { ns, binds, unbinds, steps, trace: trace?.finish() };
}

/** Wraps an allocator to record alloc/free/flush as typed-array events with table ids. */
function traceRecorder(inner) {
  let kind = new Uint8Array(1 << 16);
  let arg = new Int32Array(1 << 16);
  let len = 0;
  let ids = 0;
  const idOf = new Map();
  const push = (k, v) => {
    if (len === kind.length) {
      const k2 = new Uint8Array(len * 2);
      k2.set(kind);
      kind = k2;
      const a2 = new Int32Array(len * 2);
      a2.set(arg);
      arg = a2;
    }
    kind[len] = k;
    arg[len++] = v;
  };
  let tables = 0;
  const allocator = {
    caps: inner.caps,
    memory: inner.memory,
    alloc(size, ctx) {
      const p = inner.alloc(size, ctx);
      if (p !== null) {
        idOf.set(p, ids);
        push(0, size); // alloc: size; its id is the running count of allocs
        ids++;
        tables++;
      }
      return p;
    },
    free(p, size) {
      push(1, idOf.get(p));
      idOf.delete(p);
      inner.free(p, size);
    },
    flushDone() {
      push(2, 0);
      inner.flushDone();
    },
    stats: () => inner.stats(),
  };
  return { allocator, finish: () => ({ kind: kind.subarray(0, len), arg: arg.subarray(0, len), tables }) };
}

/** Replay a recorded trace against a fresh stack: allocator-only ns per table. */
function replayOnce(trace, build) {
  const paddr = new Float64Array(trace.tables);
  const sizeOf = new Int32Array(trace.tables);
  const { kind, arg } = trace;
  const { top } = build(createSystemAllocator());
  let id = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < kind.length; i++) {
    const k = kind[i];
    if (k === 0) {
      sizeOf[id] = arg[i];
      paddr[id++] = top.alloc(arg[i], BLOCKING);
    } else if (k === 1) top.free(paddr[arg[i]], sizeOf[arg[i]]);
    else top.flushDone();
  }
  const ns = Number(process.hrtime.bigint() - t0) / trace.tables;
  top.drain?.();
  return ns;
}

/** One timed workload run over a fresh stack; checks that teardown returned every page. */
function runOnce(label, build, opts) {
  const system = createSystemAllocator();
  const stack = build(system);
  const { ns } = vmBind(stack.top, opts);
  stack.top.drain?.();
  if (system.stats().outstanding !== 0) throw new Error(`${label}: ${system.stats().outstanding} bytes left after teardown`);
  return { ns, systemAllocCalls: system.allocCalls, bulkCalls: stack.bulkCalls?.() ?? null };
}


/**
 * Run the VM_BIND workload over each stack: wall time per step, tables allocated, calls
 * that reached the system allocator, bulk calls, allocator-only cost per table (the
 * recorded alloc/free/flush trace replayed without the page table). `stacks` maps a label
 * to `(system) => {top, bulkCalls?}`; the first is the baseline. One untimed warm-up pass
 * over every stack, then `runs` passes round-robin, so JIT warm-up and drift hit all alike.
 */
export function vmBindTable(stacks, opts = {}, runs = 7) {
  const recorded = vmBind(createSystemAllocator(), { ...opts, record: true });
  const { tables } = recorded.trace;
  const entries = Object.entries(stacks);
  for (const [label, build] of entries) {
    runOnce(label, build, opts);
    replayOnce(recorded.trace, build);
  }
  const wall = entries.map(() => []);
  const replay = entries.map(() => []);
  const calls = [];
  for (let r = 0; r < runs; r++) {
    entries.forEach(([label, build], i) => {
      const one = runOnce(label, build, opts);
      wall[i].push(one.ns);
      calls[i] = one;
      replay[i].push(replayOnce(recorded.trace, build));
    });
  }
  const bareCalls = calls[0].bulkCalls ?? calls[0].systemAllocCalls;
  console.log(`VM_BIND-like churn: ${recorded.steps} steps (${recorded.binds} binds, ${recorded.unbinds} unbinds), ${tables} table allocations, ARM_64_LPAE_S1 48-bit 4K; median of ${runs}`);
  console.log('| stack | wall / run | µs / step | system alloc calls | bulk calls | backing calls / table | reduction vs first row | allocator ns / table |');
  console.log('|---|---|---|---|---|---|---|---|');
  entries.forEach(([label], i) => {
    const w = median(wall[i]);
    const backing = calls[i].bulkCalls ?? calls[i].systemAllocCalls;
    console.log(
      `| ${label} | ${(w / 1e6).toFixed(1)} ms | ${(w / 1e3 / recorded.steps).toFixed(2)} | ${calls[i].systemAllocCalls} | ${calls[i].bulkCalls ?? '-'} | ${(backing / tables).toFixed(3)} | ${((1 - backing / bareCalls) * 100).toFixed(1)}% | ${median(replay[i]).toFixed(0)} |`,
    );
  });
}
