import {
  PendingFrees,
  asAllocatorError,
  describeValue,
  assertTableSize,
  definePlugin,
  flushedCtx,
  freeSizeError,
  isFlushed,
  isFreeSize,
  isTableSize,
  notLiveError,
  type AllocCtx,
  type AllocatorStats,
  type FlushToken,
  type FreeCtx,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';
import type { PagePool, PagePoolCounters, PagePoolOptions } from './types.js';

/** A bad value for a message: numbers as they are (always short), anything else capped. */
function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : describeValue(v);
}

// Page state, kept in the low bits of the owned-map value (sizes are multiples of 64).
const LIVE = 1;
const PENDING = 2;
const IDLE = 3;
/** Could not be recycled or given back (its scrub or the inner free failed): never reused, retried by drain. */
const STUCK = 0;
const STATE_MASK = 3;

/** What `refill()` asks the backing allocator with by default: a blocking lower-table allocation. */
const REFILL_CTX: AllocCtx = Object.freeze({ mayBlock: true, kind: 'table' });

/**
 * A pool of free table pages per allocation size over `inner`. Hits are an O(1) pop;
 * misses go to `inner` with the caller's context. A freed table whose flush token is
 * already done (a synchronous `tlb_flush_walk` ran first) is reusable at once; any other
 * waits on the pending list until `flushDone(token)` (or `flushDone()`) says the flush
 * covering it completed, and only then becomes reusable (or goes back to `inner` above
 * the high watermark).
 *
 * @example
 * const pool = withPagePool(createSystemAllocator(), { lowWatermark: 8, highWatermark: 32 });
 * pool.refill();                       // from a context that may sleep
 * const pt = createPageTable('ARM_64_LPAE_S1', cfg, { allocator: pool });
 * pt.unmapPages(iova, SZ_1G, 1, gather);
 * pt.iotlbSync(gather);                // the flush completes: calls pool.flushDone(token)
 */
export function withPagePool(inner: TableAllocator, opts: PagePoolOptions = {}): PagePool {
  const name = opts.name ?? 'page-pool';
  const zeroOnAlloc = (opts.zero ?? 'on-alloc') === 'on-alloc';
  if (opts.zero !== undefined && opts.zero !== 'on-alloc' && opts.zero !== 'on-free') {
    throw new RangeError(`[iopgt] [${name}] zero must be 'on-alloc' or 'on-free', got ${show(opts.zero)}`);
  }
  let low = 0;
  let high = 0;
  function checkWatermarks(lo: number, hi: number): void {
    if (!Number.isSafeInteger(lo) || lo < 0) throw new RangeError(`[iopgt] [${name}] lowWatermark must be a non-negative integer, got ${show(lo)}`);
    if (!Number.isSafeInteger(hi) || hi < lo) throw new RangeError(`[iopgt] [${name}] highWatermark must be an integer >= lowWatermark (${show(lo)}), got ${show(hi)}`);
    low = lo;
    high = hi;
  }
  checkWatermarks(opts.lowWatermark ?? 0, opts.highWatermark ?? 64);
  const maxSize = inner.caps.maxSize;
  const stocked = [...(opts.sizes ?? [4096])];
  for (const s of stocked) {
    if (!isTableSize(s, maxSize)) throw new RangeError(`[iopgt] [${name}] size ${show(s)} is not a power of two in [64, ${maxSize}]`);
  }
  const memory = inner.memory;
  // Above a layer whose pages are assigned by design, a freed page goes back into that stack, not to the host.
  const checkRelease = inner.caps.assignsPages !== true;

  /** Idle stacks per allocation size; the top is the most recently freed (cache-warm) page. */
  const idle = new Map<number, Paddr[]>();
  /**
   * Every page taken from `inner` and not given back: paddr -> size | state. One map for
   * all states (not a TableLedger of live pages beside it) so a hit or a free updates a
   * value in place instead of moving a key between maps, which costs several times more.
   */
  const owned = new Map<Paddr, number>();
  /** Freed tables waiting for the flush that covers them (their owned state is PENDING). */
  const pending = new PendingFrees();

  let outstanding = 0;
  let liveBytes = 0;
  let liveTables = 0;
  let cachedBytes = 0;
  let cachedPages = 0;
  /** Pages that could not be scrubbed or given back: accounted as quarantined, retried by drain. */
  const stuck = new Map<Paddr, number>();
  let stuckBytes = 0;
  let backingCalls = 0;
  let hits = 0;
  let misses = 0;
  let refilled = 0;
  let peakCachedPages = 0;
  let peakCachedBytes = 0;
  let pagesReturned = 0;

  /** Throw what a loop collected: the error itself, or all of them together. */
  function raise(errors: readonly unknown[]): void {
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `[iopgt] [${name}] ${errors.length} operations failed; every page is still accounted (see stats())`);
  }

  function stackFor(size: number): Paddr[] {
    let s = idle.get(size);
    if (s === undefined) idle.set(size, (s = []));
    return s;
  }

  function pushIdle(stack: Paddr[], p: Paddr, size: number): void {
    owned.set(p, size | IDLE);
    stack.push(p);
    cachedBytes += size;
    cachedPages++;
  }

  function notePeak(): void {
    if (cachedPages > peakCachedPages) peakCachedPages = cachedPages;
    if (cachedBytes > peakCachedBytes) peakCachedBytes = cachedBytes;
  }

  /**
   * Give `count` pages from the bottom (coldest end) of `stack` back to `inner`. Idle
   * pages already had their covering flush, so they go down under a completed one.
   */
  function release(stack: Paddr[], size: number, count: number, errors: unknown[]): number {
    if (count <= 0) return 0;
    const gone = stack.splice(0, count);
    const kept: Paddr[] = [];
    for (let i = 0; i < gone.length; i++) {
      const p = gone[i]!;
      // Forgotten only once `inner` took it: a throwing free leaves the page idle here.
      if (!giveDown(p, size, undefined, errors)) {
        kept.push(p);
        continue;
      }
      cachedBytes -= size;
      cachedPages--;
    }
    // Back at the cold end, in their order: the next trim, shrink or drain retries them.
    if (kept.length > 0) stack.unshift(...kept);
    return gone.length - kept.length;
  }

  /** `inner.free` under a completed flush; true once `inner` took the page (then forgotten here), false (error collected) if it threw. */
  function giveDown(p: Paddr, size: number, ctx: FreeCtx | undefined, errors: unknown[]): boolean {
    try {
      inner.free(p, size, flushedCtx(ctx));
    } catch (e) {
      errors.push(asAllocatorError(e, name, `inner free of 0x${p.toString(16)}`));
      return false;
    }
    owned.delete(p);
    outstanding -= size;
    pagesReturned++;
    return true;
  }

  function toStuck(p: Paddr, size: number): void {
    owned.set(p, size | STUCK);
    stuck.set(p, size);
    stuckBytes += size;
  }

  /** A freed page whose covering flush has completed: idle in the pool, or back to `inner` above the high watermark. */
  function recycle(p: Paddr, size: number, ctx: FreeCtx | undefined, errors: unknown[]): void {
    const stack = stackFor(size);
    if (stack.length < high) {
      if (!zeroOnAlloc) {
        try {
          memory.zero(p, size);
        } catch (e) {
          // The host could not scrub it (it was assigned away meanwhile): never reuse it.
          toStuck(p, size);
          errors.push(e);
          return;
        }
      }
      pushIdle(stack, p, size);
    } else if (!giveDown(p, size, ctx, errors)) {
      // Kept idle above the high mark: the next trim retries it.
      pushIdle(stack, p, size);
    }
  }

  const base = definePlugin(inner, {
    caps: { name, defersFree: true, reuse: 'after-flush', zeroes: zeroOnAlloc ? 'on-alloc' : 'on-free', mayFail: inner.caps.mayFail },
    alloc(size: number, ctx: AllocCtx): Paddr | null {
      const stack = idle.get(size);
      if (stack !== undefined && stack.length > 0) {
        const p = stack[stack.length - 1]!;
        if (zeroOnAlloc) {
          try {
            memory.zero(p, size);
          } catch (e) {
            // Assigned away while idle: take it out of reuse, keep it accounted, report it.
            stack.pop();
            cachedBytes -= size;
            cachedPages--;
            toStuck(p, size);
            throw e;
          }
        }
        stack.pop();
        owned.set(p, size | LIVE);
        cachedBytes -= size;
        cachedPages--;
        liveBytes += size;
        liveTables++;
        hits++;
        return p;
      }
      assertTableSize(name, size, maxSize);
      misses++;
      backingCalls++;
      let p: Paddr | null;
      try {
        p = inner.alloc(size, ctx);
      } catch (e) {
        throw asAllocatorError(e, name, `inner alloc(${size})`);
      }
      if (p === null) return null;
      owned.set(p, size | LIVE);
      outstanding += size;
      liveBytes += size;
      liveTables++;
      return p;
    },
    free(paddr: Paddr, size: number, ctx?: FreeCtx): void {
      const v = owned.get(paddr);
      if (v === undefined) throw notLiveError(name, paddr, size, false);
      if ((v & STATE_MASK) !== LIVE) throw notLiveError(name, paddr, size, (v & STATE_MASK) === PENDING ? 'waiting for a flush' : (v & STATE_MASK) === IDLE ? 'idle in the pool' : 'quarantined');
      const allocated = v - LIVE;
      if (!isFreeSize(size, allocated)) throw freeSizeError(name, paddr, size, allocated);
      // The page goes back to the host for reuse: refused (state unchanged) while it is
      // still assigned away from the host, as the system allocator refuses it.
      if (checkRelease) memory.checkAccess?.('release', paddr, allocated, 'allocator');
      if (isFlushed(ctx)) {
        // The walk cache already forgot it (synchronous flush before the free). Whatever can
        // fail (the scrub, the inner free) runs first: if it throws, the table is still live
        // here and the caller can retry the same free.
        const stack = stackFor(allocated);
        if (stack.length < high) {
          if (!zeroOnAlloc) memory.zero(paddr, allocated);
          liveBytes -= allocated;
          liveTables--;
          pushIdle(stack, paddr, allocated);
          notePeak();
          return;
        }
        try {
          inner.free(paddr, allocated, flushedCtx(ctx));
        } catch (e) {
          throw asAllocatorError(e, name, `inner free of 0x${paddr.toString(16)}`);
        }
        liveBytes -= allocated;
        liveTables--;
        owned.delete(paddr);
        outstanding -= allocated;
        pagesReturned++;
        return;
      }
      liveBytes -= allocated;
      liveTables--;
      owned.set(paddr, allocated | PENDING);
      pending.add(paddr, allocated, ctx);
    },
    flushDone(token?: FlushToken): void {
      // The pages this flush covers are now unreachable by the walker: recycle or return them.
      const errors: unknown[] = [];
      if (pending.release(token, (p, size, c) => recycle(p, size, c, errors)) > 0) notePeak();
      raise(errors);
    },
    stats(): AllocatorStats {
      return {
        outstanding,
        live: liveBytes,
        cached: cachedBytes,
        reserved: 0,
        pendingFlush: pending.bytes,
        quarantined: stuckBytes,
        liveTables,
        backingCalls,
      };
    },
  });

  const extra = {
    get needsRefill(): boolean {
      for (const s of stocked) if ((idle.get(s)?.length ?? 0) < low) return true;
      return false;
    },
    refill(ctx: AllocCtx = REFILL_CTX): number {
      let added = 0;
      for (const size of stocked) {
        const stack = stackFor(size);
        while (stack.length < high) {
          backingCalls++;
          let p: Paddr | null;
          try {
            p = inner.alloc(size, ctx);
          } catch (e) {
            // What was added so far stays, accounted as idle.
            notePeak();
            throw asAllocatorError(e, name, `inner alloc(${size}) in refill`);
          }
          if (p === null) {
            notePeak();
            return added;
          }
          outstanding += size;
          pushIdle(stack, p, size);
          refilled++;
          added++;
        }
      }
      notePeak();
      return added;
    },
    trim(): number {
      const errors: unknown[] = [];
      let n = 0;
      for (const [size, stack] of idle) n += release(stack, size, stack.length - high, errors);
      raise(errors);
      return n;
    },
    setWatermarks(lowWatermark: number, highWatermark: number): number {
      checkWatermarks(lowWatermark, highWatermark);
      return pool.trim();
    },
    shrink(maxPages = Infinity): number {
      if (!(maxPages >= 0)) throw new RangeError(`[iopgt] [${name}] shrink(maxPages) needs a non-negative count, got ${show(maxPages)}`);
      const errors: unknown[] = [];
      let n = 0;
      for (const [size, stack] of idle) {
        if (n >= maxPages) break;
        n += release(stack, size, Math.min(stack.length, maxPages - n), errors);
      }
      raise(errors);
      return n;
    },
    drain(): void {
      const errors: unknown[] = [];
      // Stuck pages first: the one below refuses them again while they are still assigned away.
      for (const [p, size] of [...stuck]) {
        if (!giveDown(p, size, undefined, errors)) continue;
        stuck.delete(p);
        stuckBytes -= size;
      }
      try {
        pool.shrink();
      } catch (e) {
        errors.push(...(e instanceof AggregateError ? e.errors : [e]));
      }
      try {
        inner.drain?.();
      } finally {
        raise(errors);
      }
    },
    idlePages: (size: number): number => idle.get(size)?.length ?? 0,
    counters: (): PagePoolCounters => ({
      hits,
      misses,
      refilled,
      cachedPages,
      peakCachedPages,
      peakCachedBytes,
      pagesReturned,
      pendingFlushPages: pending.count,
    }),
  };
  // defineProperties, not Object.assign: `needsRefill` must stay a live getter.
  const pool = Object.defineProperties(base, Object.getOwnPropertyDescriptors(extra)) as PagePool;
  return pool;
}
