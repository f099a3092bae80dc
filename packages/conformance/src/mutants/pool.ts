/**
 * A small, correct recycling pool (pending frees keyed by flush token, zero on alloc) and
 * the single-bug variants the suite must reject. The correct pool is the suite's positive
 * control; each mutant breaks exactly one rule, and the suite's own tests require the
 * failure message to name that rule.
 */
import {
  EMPTY_STATS,
  PendingFrees,
  TableLedger,
  isFlushed,
  type AllocCtx,
  type AllocatorCaps,
  type AllocatorStats,
  type FlushToken,
  type FreeCtx,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';
import { PhysMemory } from '@io-pgtable/core';
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
  | 'throws-on-failure'
  // Contract v2 classes (issue 12).
  | 'slub-freelist'
  | 'zeroes-in-free'
  | 'debug-poison'
  | 'raw-write'
  | 'ignores-token'
  | 'reuses-live-late'
  | 'null-once'
  | 'null-when-atomic'
  | 'pending-as-cached'
  | 'pending-as-live'
  | 'backing-calls-lie'
  | 'backing-calls-zero';

/** The rule each bug breaks: what the failure message must name. */
export const MUTANT_RULE: Readonly<Record<MutantBug, ConformanceRule>> = Object.freeze({
  'dirty-memory': 'zeroed',
  misaligned: 'aligned',
  'same-page-twice': 'no-overlap',
  'ignores-free': 'accounting',
  'reuses-at-once': 'reuse-before-flush',
  'mixes-sizes': 'size',
  'throws-on-failure': 'no-throw',
  'slub-freelist': 'write-before-flush',
  'zeroes-in-free': 'write-before-flush',
  'debug-poison': 'write-before-flush',
  'raw-write': 'write-before-flush',
  'ignores-token': 'reuse-before-flush',
  'reuses-live-late': 'no-overlap',
  'null-once': 'caps',
  'null-when-atomic': 'caps',
  'pending-as-cached': 'accounting',
  'pending-as-live': 'accounting',
  'backing-calls-lie': 'accounting',
  'backing-calls-zero': 'accounting',
});

/** What each bug is, in the words of the driver bug it models. */
export const MUTANT_STORY: Readonly<Record<MutantBug, string>> = Object.freeze({
  'dirty-memory': 'recycles a page without zeroing it',
  misaligned: 'hands out a block offset by half its size',
  'same-page-twice': 'hands the last live page out again every third allocation',
  'ignores-free': 'drops frees on the floor (never recycles, leaks)',
  'reuses-at-once': "declares reuse 'after-flush' but recycles a freed page at once (a false claim)",
  'mixes-sizes': 'keeps one free list for every size',
  'throws-on-failure': 'throws when the backing store is empty instead of returning null',
  'slub-freelist': 'stores its free-list pointer in the first word of the freed page (SLUB), inside free()',
  'zeroes-in-free': 'zeroes the page inside free(), before the flush',
  'debug-poison': 'poisons freed pages with 0x6b inside free() (SLUB_DEBUG-style)',
  'raw-write': 'writes the free-list pointer with the observers’ guard slot cleared (a write no guard sees)',
  'ignores-token': 'releases every pending free on any flushDone(token), whatever the token',
  'reuses-live-late': 'after 300 allocations, hands out a page that is still live',
  'null-once': 'returns null once, at the 500th allocation, while declaring mayFail false',
  'null-when-atomic': 'returns null for non-blocking allocations once 200 have been made, while declaring mayFail false',
  'pending-as-cached': 'reports pages waiting for a flush as cached',
  'pending-as-live': 'reports pages waiting for a flush as live, pendingFlush 0',
  'backing-calls-lie': 'counts pool hits as backing calls',
  'backing-calls-zero': 'never counts its backing calls',
});

export const MUTANT_BUGS = Object.keys(MUTANT_RULE) as MutantBug[];

const FREELIST_NEXT = 0x8000_1003n; // looks like a valid table descriptor

/** A recycling pool over `env.backing`; `bug` makes it break one rule. */
export function createTestPool(env: ConformanceEnv, bug?: MutantBug): TableAllocator {
  const inner = env.backing;
  const memory = env.memory;
  const name = bug === undefined ? 'test-pool' : `mutant:${bug}`;
  const caps: AllocatorCaps = Object.freeze({ name, minSize: 64, maxSize: 1 << 20, defersFree: true, reuse: 'after-flush', zeroes: 'on-alloc', mayFail: false });
  /** Backing blocks held: address -> size taken from the backing store. */
  const held = new Map<Paddr, number>();
  /** Tables handed out: address -> allocated size. A free of a held, non-live block is a double free. */
  const live = new TableLedger(name, { wasFreed: (p) => held.has(p) });
  const idle = new Map<number, Paddr[]>();
  const pending = new PendingFrees();
  const counts = { held: 0, cached: 0, calls: 0, allocs: 0 };
  let last: [Paddr, number] | null = null;
  let lastFreeListHead = 0;

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
    memory,
    alloc(size: number, ctx: AllocCtx): Paddr | null {
      counts.allocs++;
      if (bug === 'same-page-twice' && last !== null && counts.allocs % 3 === 0 && last[1] === size && live.has(last[0])) return last[0];
      if (bug === 'reuses-live-late' && last !== null && counts.allocs > 300 && counts.allocs % 7 === 0 && last[1] === size && live.has(last[0])) return last[0];
      if (bug === 'null-once' && counts.allocs === 500) return null;
      if (bug === 'null-when-atomic' && counts.allocs > 200 && !ctx.mayBlock) return null;
      let p = listFor(size).pop();
      if (p !== undefined) {
        counts.cached -= held.get(p)!;
        if (bug !== 'dirty-memory') memory.zero(p, size);
        if (bug === 'backing-calls-lie') counts.calls++;
      } else {
        const take = bug === 'misaligned' ? size * 2 : size;
        if (bug !== 'backing-calls-zero') counts.calls++;
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
    free(paddr: Paddr, size: number, ctx?: FreeCtx): void {
      if (bug === 'ignores-free') return;
      const got = live.remove(paddr, size);
      // The write-in-free bugs: the device may still walk this page (deferred flush).
      if (bug === 'slub-freelist' && memory instanceof PhysMemory) {
        memory.write64(paddr, BigInt(lastFreeListHead) | FREELIST_NEXT, 'allocator');
        lastFreeListHead = paddr;
      }
      if (bug === 'zeroes-in-free') memory.zero(paddr, got);
      if (bug === 'debug-poison' && memory instanceof PhysMemory) memory.fill(paddr, got, 0x6b, 'allocator');
      if (bug === 'raw-write' && memory instanceof PhysMemory) {
        // Out of sight of the observers' guard slot: only the window's copy can tell.
        const slot = memory.guard;
        memory.guard = null;
        memory.write64(paddr, FREELIST_NEXT, 'allocator');
        memory.guard = slot;
      }
      if (bug === 'reuses-at-once' || isFlushed(ctx)) cache(paddr, got);
      else pending.add(paddr, got, ctx);
    },
    flushDone(token?: FlushToken): void {
      pending.release(bug === 'ignores-token' ? undefined : token, (p, size) => cache(p, size));
      inner.flushDone(token);
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
          inner.free(base, take, { kind: 'table', level: 3, flush: { id: 0, done: true } });
        }
      }
    },
    stats(): AllocatorStats {
      const wasted = bug === 'misaligned' ? counts.held - live.bytes - counts.cached - pending.bytes : 0;
      const pend = bug === 'pending-as-cached' || bug === 'pending-as-live' ? 0 : pending.bytes;
      return {
        ...EMPTY_STATS,
        outstanding: counts.held,
        live: live.bytes + wasted + (bug === 'pending-as-live' ? pending.bytes : 0),
        cached: counts.cached + (bug === 'pending-as-cached' ? pending.bytes : 0),
        pendingFlush: pend,
        liveTables: live.count,
        backingCalls: counts.calls,
      };
    },
  };
}
