/**
 * Run a workload through a plugin stack the way a driver does: each range op is split
 * into map_pages/unmap_pages calls as iommu_map/iommu_unmap split it, each job ends with
 * the TLB flush completing (`flushDone`), and everything is torn down and checked for
 * leaks at the end.
 */
import { BLOCKING_CTX, definePlugin, type AllocCtx, type TableAllocator } from '@io-pgtable/allocator-api';
import { IotlbGather, PhysMemory, createPageTable, createSystemAllocator, type PageTable } from '@io-pgtable/core';
import { countSystem, type StackDef, type StackMetrics } from './stacks.js';
import type { RangeOp, Workload } from './workloads.js';

const PAGE = 4096;
const PROT = ['read', 'write', 'cache'] as const;

export interface SimResult {
  workload: string;
  stack: string;
  seed: number;
  jobs: number;
  rangeOps: number;
  /** map_pages + unmap_pages calls. */
  pgtableCalls: number;
  /** Tables the page tables allocated (alloc calls at the top of the stack). */
  tablesAllocated: number;
  /** Calls that reached the page allocator, as the stack counts them (bulk = 1). */
  backingCalls: number;
  /** Raw alloc/free calls into the page allocator. */
  pageAllocCalls: number;
  pageFreeCalls: number;
  /** Most pages held from the page allocator at once. */
  peakPages: number;
  /** Most pages live in page tables at once. */
  peakLivePages: number;
  /** peakPages / peakLivePages - 1, as a fraction (0 = nothing held beyond need). */
  overProvisioning: number;
  poolHitRate: number | null;
  secureCalls: number;
  /** Modelled secure-monitor time, ns. */
  secureNs: number;
  /** Failed map calls (ENOMEM from a refusing allocator, or a workload error). */
  mapFailures: number;
  reservedTables: number | null;
  usedTables: number | null;
  /** Jobs refused before they ran (reservation could not be prepared). */
  refusedJobs: number;
  /** Page-allocator allocations made while a job's ops ran (the VM_BIND run phase). */
  runPhaseAllocs: number;
  /**
   * Wall time of the ops (excluding setup, sampling and teardown), ns per range op: the
   * median over `nsPerOpRuns` repeated runs, with the fastest and slowest run beside it.
   */
  nsPerOp: number;
  nsPerOpMin: number;
  nsPerOpMax: number;
  nsPerOpRuns: number;
  /** Pages still held after teardown (must be 0). */
  leakedPages: number;
  /** Pages held from the page allocator after each job (downsampled, bucket peaks). */
  pagesOverTime: number[];
  /** Backing calls and secure calls so far, after each job (cumulative, same buckets). */
  backingOverTime: number[];
  secureOverTime: number[];
}

/** Page sizes of a bitmap, largest first. */
function pageSizes(bitmap: number): number[] {
  const out: number[] = [];
  for (let s = 2 ** 52; s >= PAGE; s /= 2) if (Math.floor(bitmap / s) % 2 === 1) out.push(s);
  return out;
}

/**
 * iommu_pgsize() on numbers: the largest size both addresses are aligned to that fits,
 * and the page count up to the next larger size's boundary.
 */
export function pickPgsize(sizes: number[], iova: number, paddr: number, size: number): { pgsize: number; count: number } {
  let i = 0;
  while (i < sizes.length && (sizes[i]! > size || iova % sizes[i]! !== 0 || paddr % sizes[i]! !== 0)) i++;
  const pgsize = sizes[i] ?? sizes[sizes.length - 1]!;
  let span = size;
  if (i > 0 && i < sizes.length) {
    const next = sizes[i - 1]!;
    if ((iova - paddr) % next === 0) {
      const toBoundary = next - (iova % next);
      if (toBoundary + next <= size) span = toBoundary;
    }
  }
  return { pgsize, count: Math.max(1, Math.floor(span / pgsize)) };
}

function downsample(series: number[], max: number): number[] {
  if (series.length <= max) return series;
  const out: number[] = [];
  const step = series.length / max;
  for (let i = 0; i < max; i++) {
    // Keep the peak of each bucket so the chart does not hide spikes.
    let m = 0;
    for (let j = Math.floor(i * step); j < Math.floor((i + 1) * step); j++) m = Math.max(m, series[j]!);
    out.push(m);
  }
  return out;
}

export interface SimOptions {
  /** Points kept for the pages-over-time series. */
  samples?: number;
}

export function simulate(w: Workload, def: StackDef, opts: SimOptions = {}): SimResult {
  const memory = new PhysMemory();
  const system = createSystemAllocator({ memory, base: 0x8000_0000, limit: 0x4000_0000 });
  const counted = countSystem(system);
  const stack = def.build({ memory, system: counted.allocator, contexts: w.contexts });

  let tablesAllocated = 0;
  // Count table allocations at the top; a wrapper per context forwards everything else.
  const tops: TableAllocator[] = stack.allocators.map((a) =>
    definePlugin(a, {
      caps: { name: a.caps.name },
      alloc(size: number, ctx: AllocCtx) {
        const p = a.alloc(size, ctx);
        if (p !== null) tablesAllocated++;
        return p;
      },
      free: (paddr: number, size: number) => a.free(paddr, size),
      stats: () => a.stats(),
    }),
  );
  const tables: PageTable[] = tops.map((allocator) =>
    createPageTable(w.pgtable.format, { pgsizeBitmap: w.pgtable.pgsizeBitmap, ias: w.pgtable.ias, oas: w.pgtable.oas }, { allocator, memory }),
  );
  const sizes = pageSizes(tables[0]!.cfg.pgsizeBitmap);
  const runCtx = stack.hooks?.runCtx ?? BLOCKING_CTX;
  const gather = new IotlbGather();

  let liveBytes = 0;
  for (const t of tables) liveBytes += t.stats().liveBytes;
  let peakLive = liveBytes;
  let calls = 0;
  let mapFailures = 0;
  let rangeOps = 0;
  let runPhaseAllocs = 0;
  let elapsedNs = 0;
  const series: number[] = [];
  const backingSeries: number[] = [];
  const secureSeries: number[] = [];

  const runOp = (pt: PageTable, op: RangeOp): void => {
    let done = 0;
    if (op.kind === 'map') {
      while (done < op.size) {
        const { pgsize, count } = pickPgsize(sizes, op.iova + done, op.paddr + done, op.size - done);
        calls++;
        const r = pt.mapPages(op.iova + done, op.paddr + done, pgsize, count, PROT, runCtx);
        done += r.mapped;
        if (r.error) {
          mapFailures++;
          // iommu_map undoes a partial map, so the range is all or nothing.
          let undone = 0;
          while (undone < done) {
            const u = pickPgsize(sizes, op.iova + undone, op.iova + undone, done - undone);
            const ur = pt.unmapPages(op.iova + undone, u.pgsize, u.count, gather);
            if (ur.unmapped === 0) break;
            undone += ur.unmapped;
          }
          return;
        }
      }
    } else {
      while (done < op.size) {
        const { pgsize, count } = pickPgsize(sizes, op.iova + done, op.iova + done, op.size - done);
        calls++;
        const r = pt.unmapPages(op.iova + done, pgsize, count, gather);
        if (r.unmapped === 0 || r.error) return;
        done += r.unmapped;
      }
    }
  };

  for (const job of w.jobs) {
    const pt = tables[job.ctx]!;
    const t0 = performance.now();
    const runAll = (): void => {
      const allocsBefore = counted.allocCalls();
      for (const op of job.ops) {
        rangeOps++;
        const before = pt.stats().liveBytes;
        runOp(pt, op);
        liveBytes += pt.stats().liveBytes - before;
        if (liveBytes > peakLive) peakLive = liveBytes;
      }
      runPhaseAllocs += counted.allocCalls() - allocsBefore;
    };
    if (stack.hooks?.runJob) stack.hooks.runJob(job.ctx, job, pt, runAll);
    else runAll();
    gather.reset();
    // The driver's TLB invalidation for this job completed.
    tops[job.ctx]!.flushDone();
    stack.idle?.();
    elapsedNs += (performance.now() - t0) * 1e6;
    // Sampling is outside the timed part.
    series.push(counted.heldBytes() / PAGE);
    const now = stack.metrics();
    backingSeries.push(now.backingCalls ?? counted.allocCalls() + counted.freeCalls());
    secureSeries.push(now.secureCalls ?? 0);
  }

  const peakHeld = counted.peakHeldBytes();
  for (const t of tables) t.free();
  for (const a of new Set(tops)) a.flushDone();
  stack.teardown();
  // After teardown, so the secure calls that give pages back are counted too.
  const m: StackMetrics = stack.metrics();
  const nsPerOp = rangeOps === 0 ? 0 : elapsedNs / rangeOps;
  const samples = opts.samples ?? 120;
  const hits = m.poolHits;
  const misses = m.poolMisses;
  return {
    workload: w.name,
    stack: def.name,
    seed: w.seed,
    jobs: w.jobs.length,
    rangeOps,
    pgtableCalls: calls,
    tablesAllocated,
    backingCalls: m.backingCalls ?? counted.allocCalls() + counted.freeCalls(),
    pageAllocCalls: counted.allocCalls(),
    pageFreeCalls: counted.freeCalls(),
    peakPages: peakHeld / PAGE,
    peakLivePages: peakLive / PAGE,
    overProvisioning: peakLive === 0 ? 0 : peakHeld / peakLive - 1,
    poolHitRate:
      hits === undefined ? null : misses !== undefined ? (hits + misses > 0 ? hits / (hits + misses) : null) : tablesAllocated > 0 ? hits / tablesAllocated : null,
    secureCalls: m.secureCalls ?? 0,
    secureNs: m.secureNs ?? 0,
    mapFailures,
    reservedTables: m.reservedTables ?? null,
    usedTables: m.usedTables ?? null,
    refusedJobs: m.refusedJobs ?? 0,
    runPhaseAllocs,
    nsPerOp,
    nsPerOpMin: nsPerOp,
    nsPerOpMax: nsPerOp,
    nsPerOpRuns: 1,
    leakedPages: counted.heldBytes() / PAGE,
    pagesOverTime: downsample(series, samples),
    backingOverTime: downsample(backingSeries, samples),
    secureOverTime: downsample(secureSeries, samples),
  };
}
