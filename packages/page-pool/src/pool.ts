import {
  PendingFrees,
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

// Page state, kept in the low bits of the owned-map value (sizes are multiples of 64).
const LIVE = 1;
const PENDING = 2;
const IDLE = 3;
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
    throw new RangeError(`[iopgt] [${name}] zero must be 'on-alloc' or 'on-free', got ${String(opts.zero)}`);
  }
  let low = 0;
  let high = 0;
  function checkWatermarks(lo: number, hi: number): void {
    if (!Number.isSafeInteger(lo) || lo < 0) throw new RangeError(`[iopgt] [${name}] lowWatermark must be a non-negative integer, got ${lo}`);
    if (!Number.isSafeInteger(hi) || hi < lo) throw new RangeError(`[iopgt] [${name}] highWatermark must be an integer >= lowWatermark (${lo}), got ${hi}`);
    low = lo;
    high = hi;
  }
  checkWatermarks(opts.lowWatermark ?? 0, opts.highWatermark ?? 64);
  const maxSize = inner.caps.maxSize;
  const stocked = [...(opts.sizes ?? [4096])];
  for (const s of stocked) {
    if (!isTableSize(s, maxSize)) throw new RangeError(`[iopgt] [${name}] size ${s} is not a power of two in [64, ${maxSize}]`);
  }
  const memory = inner.memory;

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
  let backingCalls = 0;
  let hits = 0;
  let misses = 0;
  let refilled = 0;
  let peakCachedPages = 0;
  let peakCachedBytes = 0;
  let pagesReturned = 0;

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
  function release(stack: Paddr[], size: number, count: number): number {
    if (count <= 0) return 0;
    const gone = stack.splice(0, count);
    for (let i = 0; i < gone.length; i++) {
      const p = gone[i]!;
      owned.delete(p);
      cachedBytes -= size;
      cachedPages--;
      outstanding -= size;
      pagesReturned++;
      inner.free(p, size, flushedCtx(undefined));
    }
    return gone.length;
  }

  /** A freed page whose covering flush has completed: idle in the pool, or back to `inner` above the high watermark. */
  function recycle(p: Paddr, size: number, ctx: FreeCtx | undefined): void {
    const stack = stackFor(size);
    if (stack.length < high) {
      if (!zeroOnAlloc) memory.zero(p, size);
      pushIdle(stack, p, size);
    } else {
      owned.delete(p);
      outstanding -= size;
      pagesReturned++;
      inner.free(p, size, flushedCtx(ctx));
    }
  }

  const base = definePlugin(inner, {
    caps: { name, defersFree: true, reuse: 'after-flush', zeroes: zeroOnAlloc ? 'on-alloc' : 'on-free', mayFail: inner.caps.mayFail },
    alloc(size: number, ctx: AllocCtx): Paddr | null {
      const stack = idle.get(size);
      if (stack !== undefined && stack.length > 0) {
        const p = stack.pop()!;
        if (zeroOnAlloc) memory.zero(p, size);
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
      const p = inner.alloc(size, ctx);
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
      if ((v & STATE_MASK) !== LIVE) throw notLiveError(name, paddr, size, (v & STATE_MASK) === PENDING ? 'waiting for a flush' : 'idle in the pool');
      const allocated = v - LIVE;
      if (!isFreeSize(size, allocated)) throw freeSizeError(name, paddr, size, allocated);
      liveBytes -= allocated;
      liveTables--;
      if (isFlushed(ctx)) {
        // The walk cache already forgot it (synchronous flush before the free).
        recycle(paddr, allocated, ctx);
        notePeak();
        return;
      }
      owned.set(paddr, allocated | PENDING);
      pending.add(paddr, allocated, ctx);
    },
    flushDone(token?: FlushToken): void {
      // The pages this flush covers are now unreachable by the walker: recycle or return them.
      if (pending.release(token, recycle) > 0) notePeak();
    },
    stats(): AllocatorStats {
      return {
        outstanding,
        live: liveBytes,
        cached: cachedBytes,
        reserved: 0,
        pendingFlush: pending.bytes,
        quarantined: 0,
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
          const p = inner.alloc(size, ctx);
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
      let n = 0;
      for (const [size, stack] of idle) n += release(stack, size, stack.length - high);
      return n;
    },
    setWatermarks(lowWatermark: number, highWatermark: number): number {
      checkWatermarks(lowWatermark, highWatermark);
      return pool.trim();
    },
    shrink(maxPages = Infinity): number {
      if (!(maxPages >= 0)) throw new RangeError(`[iopgt] [${name}] shrink(maxPages) needs a non-negative count, got ${maxPages}`);
      let n = 0;
      for (const [size, stack] of idle) {
        if (n >= maxPages) break;
        n += release(stack, size, Math.min(stack.length, maxPages - n));
      }
      return n;
    },
    drain(): void {
      pool.shrink();
      inner.drain?.();
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
