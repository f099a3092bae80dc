import {
  AllocatorMisuseError,
  BLOCKING_CTX,
  EMPTY_STATS,
  PendingFrees,
  allocSizeFor,
  type AllocCtx,
  type AllocatorStats,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';
import type { Geometry } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import {
  ConformanceFailure,
  describeAllocatorConformance,
  runConformanceGroup,
  type ConformanceEnv,
  type ConformanceOptions,
  type ConformanceRule,
  type JobOp,
  type ReservationAdapter,
  type ReservationHandle,
  type ReservationJob,
} from '../src/index.js';

/**
 * A minimal two-phase reservation allocator, written here independently of
 * packages/reservation: prepare takes granule pages from the backing store, run hands
 * them out, release gives the rest back. `bug` breaks exactly one rule.
 */
type Bug =
  | 'backing-in-run'
  | 'over-reserve'
  | 'under-reserve'
  | 'split-reserves'
  | 'merge-undercounts'
  | 'double-release'
  | 'release-keeps'
  | 'prepare-leaks'
  | 'steals'
  | 'drain-takes-reserved'
  | 'no-admission'
  | 'fails-instead-of-wait'
  | 'unusable-accepts';

interface Res {
  readonly pageSize: number;
  readonly free: Paddr[];
  reserved: number;
  consumed: number;
  released: boolean;
}

interface TestResAllocator extends TableAllocator {
  prepare(count: number, pageSize: number): Res | null;
  run<T>(r: Res, fn: () => T): T;
  release(r: Res): void;
  readonly unusable: boolean;
}

function createResAllocator(env: ConformanceEnv, bug?: Bug): TestResAllocator {
  const backing = env.backing;
  const name = bug === undefined ? 'test-reservation' : `reservation-mutant:${bug}`;
  const live = new Map<Paddr, number>();
  const pageSizes = new Map<Paddr, number>();
  const outstanding = new Set<Res>();
  const pending = new PendingFrees();
  let active: Res | null = null;
  let held = 0;
  let liveBytes = 0;
  let unusable = false;
  let backingCalls = 0;

  const take = (size: number, ctx: AllocCtx): Paddr | null => {
    backingCalls++;
    const p = backing.alloc(size, ctx);
    if (p !== null) {
      held += size;
      pageSizes.set(p, size);
    }
    return p;
  };
  const giveBack = (p: Paddr) => {
    const size = pageSizes.get(p)!;
    pageSizes.delete(p);
    held -= size;
    backing.free(p, size);
  };
  const handOut = (p: Paddr, size: number) => {
    live.set(p, size);
    liveBytes += size;
    return p;
  };

  return {
    caps: Object.freeze({ name, minSize: 64, maxSize: 1 << 20, defersFree: true, zeroes: 'backing', mayFail: true }),
    memory: env.memory,
    get unusable() {
      return unusable;
    },
    alloc(size, ctx) {
      const r = active;
      if (r === null) {
        const p = take(size, ctx); // the PGD, at VM creation
        return p === null ? null : handOut(p, size);
      }
      if (bug === 'backing-in-run') {
        const p = take(size, ctx);
        return p === null ? null : handOut(p, size);
      }
      let p = r.free.pop();
      if (p === undefined && bug === 'steals') {
        for (const other of outstanding) if (other !== r && other.free.length > 0) p = other.free.pop();
      }
      if (p === undefined) {
        unusable = true;
        return null;
      }
      r.consumed++;
      return handOut(p, size);
    },
    free(p, size, ctx) {
      const got = live.get(p);
      if (got === undefined) throw new AllocatorMisuseError(name, pageSizes.has(p) ? 'double-free' : 'foreign-free', `free of 0x${p.toString(16)}`, p);
      if (allocSizeFor(size) > got) throw new AllocatorMisuseError(name, 'free-size', `free of 0x${p.toString(16)} with size ${size}`, p);
      live.delete(p);
      liveBytes -= got;
      pending.add(p, got, ctx);
    },
    flushDone(token) {
      if (active !== null) return; // never call the backing store from the run phase
      pending.release(token, giveBack);
    },
    drain() {
      if (bug !== 'drain-takes-reserved') return;
      for (const r of outstanding) for (const p of r.free.splice(0)) giveBack(p);
    },
    stats(): AllocatorStats {
      let reserved = 0;
      for (const r of outstanding) reserved += r.free.length * r.pageSize;
      return { ...EMPTY_STATS, outstanding: held, live: liveBytes, reserved, pendingFlush: pending.bytes, liveTables: live.size, backingCalls };
    },
    prepare(count, pageSize) {
      if (unusable && bug !== 'unusable-accepts') return null;
      const r: Res = { pageSize, free: [], reserved: count, consumed: 0, released: false };
      for (let i = 0; i < count; i++) {
        const p = take(pageSize, BLOCKING_CTX);
        if (p === null) {
          if (bug !== 'prepare-leaks') for (const q of r.free) giveBack(q);
          return null;
        }
        r.free.push(p);
      }
      outstanding.add(r);
      return r;
    },
    run(r, fn) {
      active = r;
      try {
        return fn();
      } finally {
        active = null;
      }
    },
    release(r) {
      if (r.released && bug !== 'double-release') return;
      r.released = true;
      if (bug === 'release-keeps') return;
      outstanding.delete(r);
      for (const p of r.free) giveBack(p);
      if (bug !== 'double-release') r.free.length = 0;
    },
  };
}

/** Tables a job can allocate, from the geometry alone: windows of each non-root level the maps touch. */
function countJob(job: ReservationJob, bug?: Bug): number {
  const g: Geometry = job.pageTable.geometry;
  const B2 = g.blockSize[2]!;
  const seen = new Set<string>();
  let n = 0;
  for (const op of job.ops as readonly JobOp[]) {
    if (op.kind === 'unmap') {
      if (job.splitPolicy === 'allow' || bug === 'split-reserves') {
        // One leaf table per ragged edge, shared when both edges cut the same block.
        const edges = new Set([op.iova, op.iova + op.size].filter((e) => e % B2 !== 0).map((e) => Math.floor(e / B2)));
        n += edges.size;
      }
      seen.clear(); // an unmap may free a table that a later op needs again
      continue;
    }
    let leaf = g.startLevel;
    while (leaf < 3 && g.blockSize[leaf] !== op.pgsize) leaf++;
    if (leaf < 3) seen.clear();
    for (let m = g.startLevel + 1; m <= leaf; m++) {
      const s = g.blockSize[m - 1]!;
      for (let w = Math.floor(op.iova / s); w < Math.ceil((op.iova + op.size) / s); w++) {
        const key = `${m}:${w}`;
        if (job.merge && seen.has(key)) continue;
        if (job.merge && bug !== 'merge-undercounts') seen.add(key);
        n++;
      }
    }
    if (job.merge && bug === 'merge-undercounts') n--; // merges away one table too many per op
  }
  if (bug === 'over-reserve') n++;
  if (bug === 'under-reserve') n = Math.max(0, n - 1);
  return n;
}

function adapterFor(bug?: Bug, admissionLimit?: number): ReservationAdapter<TestResAllocator> {
  const admitted = new WeakMap<TestResAllocator, number>();
  return {
    splitPolicies: ['forbid', 'allow'],
    merges: true,
    ...(admissionLimit === undefined ? {} : { admissionLimit }),
    isUnusable: (a) => a.unusable,
    prepare(a, job): ReservationHandle | null | 'wait' {
      const count = countJob(job, bug);
      const inFlight = admitted.get(a) ?? 0;
      if (admissionLimit !== undefined && bug !== 'no-admission' && inFlight > 0 && inFlight + count > admissionLimit) {
        return bug === 'fails-instead-of-wait' ? null : 'wait';
      }
      const r = a.prepare(count, job.pageTable.geometry.granule);
      if (r === null) return null;
      admitted.set(a, inFlight + count);
      let done = false;
      return {
        get reserved() {
          return r.reserved;
        },
        get consumed() {
          return r.consumed;
        },
        run: (fn) => a.run(r, fn),
        release() {
          a.release(r);
          if (!done) admitted.set(a, (admitted.get(a) ?? 0) - count);
          done = true;
        },
      };
    },
  };
}

const QUICK = { numRuns: 15, seed: 77 } as const;

function options(bug?: Bug): ConformanceOptions<TestResAllocator> {
  return { ...QUICK, reservation: adapterFor(bug, 12) };
}

function failuresOf(bug?: Bug): ConformanceFailure[] {
  return runConformanceGroup('reservation', (env) => createResAllocator(env, bug), options(bug));
}

const EXPECTED: Readonly<Record<Bug, ConformanceRule>> = {
  'backing-in-run': 'run-phase-backing-call',
  'over-reserve': 'reservation-count',
  'under-reserve': 'reservation-count',
  'split-reserves': 'reservation-count',
  'merge-undercounts': 'reservation-count',
  'double-release': 'release-once',
  'release-keeps': 'release-once',
  'prepare-leaks': 'release-once',
  steals: 'reservation-private',
  'drain-takes-reserved': 'reservation-private',
  'no-admission': 'admission',
  'fails-instead-of-wait': 'admission',
  'unusable-accepts': 'reservation-exhausted',
};

/** Other rules a mutant may also break: an under-count looks like a stolen reservation, kept pages leak. */
const ALSO: Partial<Record<Bug, ConformanceRule>> = { 'under-reserve': 'reservation-private', 'release-keeps': 'accounting' };

describe('reservation group', () => {
  it('the correct in-test reservation allocator passes every check', () => {
    const failures = failuresOf();
    expect(failures.map((f) => f.message)).toEqual([]);
  });

  it('registers nothing without options.reservation', () => {
    expect(runConformanceGroup('reservation', (env) => createResAllocator(env), {})).toEqual([]);
  });

  it.each(Object.keys(EXPECTED) as Bug[])('rejects the %s mutant, naming its rule', (bug) => {
    const rule = EXPECTED[bug];
    const failures = failuresOf(bug);
    expect(failures.map((f) => f.rule)).toContain(rule);
    // Nothing else fails: each mutant breaks one rule.
    expect(failures.filter((f) => f.rule !== rule && f.rule !== ALSO[bug]).map((f) => f.message)).toEqual([]);
    const f = failures.find((x) => x.rule === rule)!;
    expect(f.message.startsWith(`[iopgt] [conformance] ${rule}: `)).toBe(true);
  });

  it('a failing property run prints the fast-check seed', () => {
    const f = failuresOf('merge-undercounts').find((x) => x.rule === 'reservation-count');
    expect(f?.message).toMatch(/fast-check seed 77/);
  });
});

// The in-test allocator also passes the generic groups with the reservation switched on
// (every map of the suite then runs as prepare -> run -> release). Its direct alloc/free
// contract group is skipped: run-phase allocations need a job.
describeAllocatorConformance('test-reservation', (env) => createResAllocator(env), {
  reservation: adapterFor(undefined, 64),
  skip: ['contract'],
  numRuns: 20,
  propertyOps: 4000,
});
