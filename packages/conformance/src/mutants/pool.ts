/**
 * A small, correct recycling pool (deferred frees, zero on alloc) and the single-bug
 * variants the suite must reject. The correct pool is the suite's positive control; each
 * mutant breaks exactly one rule, and the suite's own tests require the failure message
 * to name that rule.
 */
import {
  EMPTY_STATS,
  TableLedger,
  type AllocCtx,
  type AllocatorCaps,
  type AllocatorStats,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';
import type { ConformanceEnv } from '../options.js';
import type { ConformanceRule } from '../failure.js';

/** The one bug a mutant carries. */
export type MutantBug =
  | 'dirty-memory'
  | 'misaligned'
  | 'same-page-twice'
  | 'ignores-free'
  | 'reuses-at-once'
  | 'mixes-sizes'
  | 'throws-on-failure';

/** The rule each bug breaks: what the failure message must name. */
export const MUTANT_RULE: Readonly<Record<MutantBug, ConformanceRule>> = Object.freeze({
  'dirty-memory': 'zeroed',
  misaligned: 'aligned',
  'same-page-twice': 'no-overlap',
  'ignores-free': 'accounting',
  'reuses-at-once': 'reuse-before-flush',
  'mixes-sizes': 'size',
  'throws-on-failure': 'no-throw',
});

export const MUTANT_BUGS = Object.keys(MUTANT_RULE) as MutantBug[];

/** A recycling pool over `env.backing`; `bug` makes it break one rule. */
export function createTestPool(env: ConformanceEnv, bug?: MutantBug): TableAllocator {
  const inner = env.backing;
  const name = bug === undefined ? 'test-pool' : `mutant:${bug}`;
  const caps: AllocatorCaps = Object.freeze({ name, minSize: 64, maxSize: 1 << 20, defersFree: true, zeroes: 'on-alloc', mayFail: false });
  /** Backing blocks held: address -> size taken from the backing store. */
  const held = new Map<Paddr, number>();
  /** Tables handed out: address -> allocated size. A free of a held, non-live block is a double free. */
  const live = new TableLedger(name, { wasFreed: (p) => held.has(p) });
  const idle = new Map<number, Paddr[]>();
  let pending: Array<[Paddr, number]> = [];
  const counts = { held: 0, cached: 0, pending: 0, calls: 0, allocs: 0 };
  let last: [Paddr, number] | null = null;

  const listFor = (size: number): Paddr[] => {
    const key = bug === 'mixes-sizes' ? 0 : size;
    let l = idle.get(key);
    if (l === undefined) idle.set(key, (l = []));
    return l;
  };
  const cache = (p: Paddr, size: number) => {
    listFor(size).push(p);
    counts.cached += held.get(p)!;
  };

  return {
    caps,
    memory: env.memory,
    alloc(size: number, ctx: AllocCtx): Paddr | null {
      counts.allocs++;
      if (bug === 'same-page-twice' && last !== null && counts.allocs % 3 === 0 && last[1] === size && live.has(last[0])) return last[0];
      let p = listFor(size).pop();
      if (p !== undefined) {
        counts.cached -= held.get(p)!;
        if (bug !== 'dirty-memory') env.memory.zero(p, size);
      } else {
        const take = bug === 'misaligned' ? size * 2 : size;
        counts.calls++;
        const q = inner.alloc(take, ctx);
        if (q === null) {
          if (bug === 'throws-on-failure') throw new Error('out of page-table memory');
          return null;
        }
        held.set(q, take);
        counts.held += take;
        p = bug === 'misaligned' ? q + size / 2 : q;
        if (p !== q) held.set(p, take); // remember the block under the address handed out
      }
      live.add(p, size);
      last = [p, size];
      return p;
    },
    free(paddr: Paddr, size: number): void {
      if (bug === 'ignores-free') return;
      const got = live.remove(paddr, size);
      if (bug === 'reuses-at-once') cache(paddr, got);
      else {
        pending.push([paddr, got]);
        counts.pending += held.get(paddr)!;
      }
    },
    flushDone(): void {
      for (const [p, size] of pending) {
        counts.pending -= held.get(p)!;
        cache(p, size);
      }
      pending = [];
      inner.flushDone();
    },
    drain(): void {
      for (const [, list] of idle) {
        for (const p of list.splice(0)) {
          const take = held.get(p)!;
          const base = bug === 'misaligned' ? p - (p % take) : p;
          held.delete(p);
          held.delete(base);
          counts.cached -= take;
          counts.held -= take;
          inner.free(base, take);
        }
      }
    },
    stats(): AllocatorStats {
      const wasted = bug === 'misaligned' ? counts.held - live.bytes - counts.cached - counts.pending : 0;
      return {
        ...EMPTY_STATS,
        outstanding: counts.held,
        live: live.bytes + wasted,
        cached: counts.cached,
        pendingFlush: counts.pending,
        liveTables: live.count,
        backingCalls: counts.calls,
      };
    },
  };
}
