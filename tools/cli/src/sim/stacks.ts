/**
 * Plugin stacks to compare, as a registry: each entry builds one allocator per context
 * over a shared, counted system allocator. The plugin packages are imported statically,
 * so a missing one fails the build instead of silently shrinking the comparison;
 * third-party stacks come from `plugins.ts`.
 */
import { definePlugin, type AllocCtx, type AllocatorStats, type TableAllocator } from '@io-pgtable/allocator-api';
import type { PageTable, PhysMemory, SystemAllocator } from '@io-pgtable/core';
import * as batchedPkg from '@io-pgtable/batched';
import * as pagePoolPkg from '@io-pgtable/page-pool';
import * as reservationPkg from '@io-pgtable/reservation';
import * as securePkg from '@io-pgtable/secure-share';
import type { Job } from './workloads.js';

/** What the simulator hands a stack. */
export interface StackEnv {
  memory: PhysMemory;
  /** The bottom (page) allocator, already counted. */
  system: TableAllocator;
  contexts: number;
}

/** Per-job hooks for stacks that run VM_BIND phases. */
export interface JobHooks {
  /**
   * Run one job: call `run` (the job's ops) once, or not at all when the job is refused
   * (e.g. its reservation could not be prepared). Returns false for a refused job.
   */
  runJob?(ctx: number, job: Job, pt: PageTable, run: () => void): boolean;
  /** The context the run phase allocates with (default: may block, no phase). */
  runCtx?: AllocCtx;
}

export interface StackMetrics {
  /** Allocations served without going below the stack's top cache, and the misses. */
  poolHits?: number;
  poolMisses?: number;
  /** Secure-monitor calls and their modelled time. */
  secureCalls?: number;
  secureNs?: number;
  /** Tables reserved in prepare and tables the run phase actually used. */
  reservedTables?: number;
  usedTables?: number;
  /** Calls into the page allocator as the stack counts them (a bulk call counts once). */
  backingCalls?: number;
  /** Jobs refused before running (a reservation could not be prepared). */
  refusedJobs?: number;
}

export interface StackInstance {
  allocators: TableAllocator[];
  hooks?: JobHooks;
  /** Called after each job's flush completed, in a blocking context (workers, shrinkers). */
  idle?(): void;
  metrics(): StackMetrics;
  /** Give everything back (drain pools) before the leak check. */
  teardown(): void;
}

/**
 * What a stack guarantees, used by the recommendation's hard constraints
 * (`recommend.ts`): a declared property, checked against what the run measured.
 */
export interface StackTraits {
  /** Tables are reserved before a VM_BIND job and the run phase only consumes the reservation. */
  reservesBeforeRun?: boolean;
  /** Table pages are assigned to the context's VMID through the secure monitor. */
  secureShare?: boolean;
}

export interface StackDef {
  name: string;
  description: string;
  traits?: StackTraits;
  build(env: StackEnv): StackInstance;
}

const POOL_OPTS = { lowWatermark: 8, highWatermark: 64 };
const BATCH = 16;

function sumStats(list: TableAllocator[], key: keyof AllocatorStats): number {
  let s = 0;
  for (const a of list) s += a.stats()[key];
  return s;
}

const systemOnly: StackDef = {
  name: 'system',
  description: 'system page allocator only (every table is a page allocation)',
  build(env) {
    return { allocators: Array(env.contexts).fill(env.system), metrics: () => ({}), teardown() {} };
  },
};

function poolOver(inner: TableAllocator): pagePoolPkg.PagePool {
  return pagePoolPkg.withPagePool(inner, POOL_OPTS);
}

function poolMetrics(pool: pagePoolPkg.PagePool): StackMetrics {
  const c = pool.counters();
  return { poolHits: c.hits, poolMisses: c.misses };
}

const pagePool: StackDef = {
  name: 'pool',
  description: `page pool (one per device, high watermark ${POOL_OPTS.highWatermark}) over the system allocator`,
  build(env) {
    const pool = poolOver(env.system);
    return {
      allocators: Array(env.contexts).fill(pool),
      idle: () => {
        if (pool.needsRefill) pool.refill();
      },
      metrics: () => ({ ...poolMetrics(pool), backingCalls: pool.stats().backingCalls }),
      teardown: () => pool.drain(),
    };
  },
};

const batched: StackDef = {
  name: 'batched',
  description: `batched: pages taken ${BATCH} at a time, frees released together after the flush`,
  build(env) {
    const b = batchedPkg.withBatching(env.system, { batch: BATCH, mode: 'partial' });
    return {
      allocators: Array(env.contexts).fill(b),
      metrics: () => ({ backingCalls: b.stats().backingCalls }),
      teardown: () => b.drain(),
    };
  },
};

const poolOverBatched: StackDef = {
  name: 'pool+batched',
  description: 'page pool over the batched allocator',
  build(env) {
    const b = batchedPkg.withBatching(env.system, { batch: BATCH, mode: 'partial' });
    const pool = poolOver(b);
    return {
      allocators: Array(env.contexts).fill(pool),
      idle: () => {
        if (pool.needsRefill) pool.refill();
      },
      metrics: () => ({ ...poolMetrics(pool), backingCalls: b.stats().backingCalls }),
      teardown: () => pool.drain(),
    };
  },
};

/** HLOS is the host; give contexts VMIDs that are not it. */
function vmidFor(ctx: number, hlos: number): number {
  const v = 10 + ctx;
  return v === hlos ? v + 32 : v;
}

function secureShare(name: string, description: string, opts: { batch: number; poolTarget: number }): StackDef {
  return {
    name,
    description,
    traits: { secureShare: true },
    build(env) {
      const scm = securePkg.createScmMock();
      const allocators = Array.from({ length: env.contexts }, (_, ctx) =>
        securePkg.withSecureShare(env.system, { scm, vmid: vmidFor(ctx, scm.hlos), batch: opts.batch, poolTarget: opts.poolTarget, accessControl: false }),
      );
      return {
        allocators,
        idle: () => {
          // The driver's worker: give back what is above the per-VMID target (blocking).
          for (const a of allocators) a.reclaim();
        },
        metrics: () => {
          let hits = 0;
          for (const a of allocators) hits += a.secureStats().poolHits;
          // Misses (allocations that needed an assign) are the other table allocations.
          return { poolHits: hits, secureCalls: scm.calls, secureNs: scm.modelledNs, backingCalls: sumStats(allocators, 'backingCalls') };
        },
        teardown: () => {
          for (const a of allocators) a.drain?.();
        },
      };
    },
  };
}

const securePooled = secureShare('secure-pooled', 'secure-share, pooled per VMID: pages assigned 16 per secure call and kept for reuse', { batch: 16, poolTarget: 16 });
const securePerTable = secureShare('secure-per-table', 'secure-share, one secure call per table and per free (the RFC shape)', { batch: 1, poolTarget: 0 });

const RUN_CTX: AllocCtx = Object.freeze({ mayBlock: false, phase: 'run' });

/**
 * VM_BIND with reservations (Panthor/msm): before each job, count the tables its ops may
 * need (per op, or once over the merged job), prepare that many pages from the pool in
 * a blocking context, run the ops consuming only the reservation, then release the rest.
 */
function reservationStack(name: string, description: string, merge: reservationPkg.MergeStrategy): StackDef {
  return {
    name,
    description,
    traits: { reservesBeforeRun: true },
    build(env) {
      const pool = poolOver(env.system);
      const allocators = Array.from({ length: env.contexts }, (_, i) => reservationPkg.withReservation(pool, { name: `${name}[${i}]` }));
      let reserved = 0;
      let used = 0;
      let refused = 0;
      return {
        allocators,
        hooks: {
          runCtx: RUN_CTX,
          runJob(ctx, job, pt, run) {
            const ops: reservationPkg.CountOp[] = job.ops.map((o) => ({ kind: o.kind, iova: o.iova, size: o.size }));
            const need = reservationPkg.tablesNeeded(pt.geometry, ops, { merge, pgsizeBitmap: pt.cfg.pgsizeBitmap }).total;
            const r = allocators[ctx]!.prepare(need);
            if (r.state !== 'ready') {
              refused++;
              r.release();
              return false;
            }
            r.run(run);
            reserved += r.reserved;
            used += r.consumed;
            r.release();
            return true;
          },
        },
        idle: () => {
          if (pool.needsRefill) pool.refill();
        },
        metrics: () => ({ ...poolMetrics(pool), backingCalls: pool.stats().backingCalls, reservedTables: reserved, usedTables: used, refusedJobs: refused }),
        teardown: () => pool.drain(),
      };
    },
  };
}

export const STACKS: StackDef[] = [
  systemOnly,
  pagePool,
  batched,
  poolOverBatched,
  reservationStack('reserve-per-op', 'reservation over the pool: tables counted per op, prepared before each job', 'per-op'),
  reservationStack('reserve-merged', 'reservation over the pool: tables counted once over the merged job (union)', 'union'),
  securePooled,
  securePerTable,
];

export function findStack(name: string): StackDef | undefined {
  return STACKS.find((s) => s.name === name);
}

/**
 * Count what reaches the page allocator: calls, bytes held now and at peak. The peak
 * is what the stack costs in memory; compared with the peak of live table bytes it is
 * the over-provisioning.
 */
export interface CountedSystem {
  allocator: TableAllocator;
  allocCalls(): number;
  freeCalls(): number;
  heldBytes(): number;
  peakHeldBytes(): number;
  resetPeak(): void;
}

export function countSystem(system: SystemAllocator): CountedSystem {
  let allocs = 0;
  let frees = 0;
  let held = 0;
  let peak = 0;
  const allocator = definePlugin(system, {
    caps: { name: system.caps.name },
    alloc(size, ctx) {
      allocs++;
      const p = system.alloc(size, ctx);
      if (p !== null) {
        held = system.stats().outstanding;
        if (held > peak) peak = held;
      }
      return p;
    },
    free(paddr, size) {
      frees++;
      system.free(paddr, size);
      held = system.stats().outstanding;
    },
    stats: () => system.stats(),
  });
  return {
    allocator,
    allocCalls: () => allocs,
    freeCalls: () => frees,
    heldBytes: () => held,
    peakHeldBytes: () => peak,
    resetPeak: () => {
      peak = held;
    },
  };
}
