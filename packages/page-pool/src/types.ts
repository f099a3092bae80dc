import type { AllocCtx, TableAllocator } from '@io-pgtable/allocator-api';

/** When the pool zeroes a recycled page; see the README for the cost trade-off. */
export type PoolZeroPolicy = 'on-free' | 'on-alloc';

export interface PagePoolOptions {
  /** Name used in caps and error messages (default `page-pool`). */
  name?: string;
  /**
   * `on-alloc` (default): a recycled page is zeroed when it is handed out, so only pages
   * that are used again pay for it. `on-free`: it is zeroed when it enters the pool (at
   * `flushDone()`, never earlier: the walk cache may still read it), so a hit is a pop.
   */
  zero?: PoolZeroPolicy;
  /** Allocation sizes (bytes, powers of two >= 64) that `refill()` keeps stocked. Default `[4096]`. */
  sizes?: readonly number[];
  /**
   * Idle pages per stocked size below which `needsRefill` turns true (default 0: never).
   * The pool never refills by itself: a miss goes straight to the backing allocator with
   * the caller's context, and `refill()` is for a context that may block.
   */
  lowWatermark?: number;
  /**
   * Most idle pages kept per size (default 64). `refill()` tops stocked sizes up to it;
   * pages freed past it go back to the backing allocator at `flushDone()`.
   */
  highWatermark?: number;
}

/** Plugin counters; pages, not bytes (the byte view is `stats()`). */
export interface PagePoolCounters {
  /** Allocations served from the pool. */
  readonly hits: number;
  /** Allocations passed to the backing allocator (including failed ones). */
  readonly misses: number;
  /** Pages obtained from the backing allocator by `refill()`. */
  readonly refilled: number;
  /** Idle pages now in the pool. */
  readonly cachedPages: number;
  /** Highest `cachedPages` seen. */
  readonly peakCachedPages: number;
  /** Highest cached byte count seen. */
  readonly peakCachedBytes: number;
  /** Pages given back to the backing allocator (trim, shrink, drain). */
  readonly pagesReturned: number;
  /** Freed pages waiting for the flush that covers them. */
  readonly pendingFlushPages: number;
}

export interface PagePool extends TableAllocator {
  /** True when a size in `sizes` has fewer idle pages than `lowWatermark`. */
  readonly needsRefill: boolean;
  /**
   * Top every size in `sizes` up to `highWatermark` idle pages. May block: it calls the
   * backing allocator with `ctx` (default `{ mayBlock: true, kind: 'table' }`), so call it
   * from a worker, never from a fence-signalling path. Pass the context of the work the
   * pages are for (e.g. a VM_BIND prepare) so a layer below that reads it (a reservation)
   * sees the truth. Stops at the first backing failure. Returns pages added.
   */
  refill(ctx?: AllocCtx): number;
  /** Give idle pages above `highWatermark` back to the backing allocator. Returns pages released. */
  trim(): number;
  /**
   * Change the watermarks (same rules as the options) and trim to the new high mark.
   * Returns pages released. Throws RangeError, changing nothing, on bad values.
   */
  setWatermarks(lowWatermark: number, highWatermark: number): number;
  /**
   * Memory-pressure hook (a shrinker's scan): give up to `maxPages` idle pages back to the
   * backing allocator, coldest first. Pages waiting for a flush and live tables are never
   * touched. Returns pages released.
   */
  shrink(maxPages?: number): number;
  /** Teardown: give every idle page back, then drain the backing allocator. */
  drain(): void;
  /** Idle pages of one allocation size. */
  idlePages(size: number): number;
  counters(): PagePoolCounters;
}
