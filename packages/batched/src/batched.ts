import {
  PendingFrees,
  asAllocatorError,
  describeValue,
  TableLedger,
  assertTableSize,
  definePlugin,
  flushedCtx,
  isFlushed,
  type AllocCtx,
  type AllocatorStats,
  type FlushToken,
  type FreeCtx,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';

/** A bad value for a message: numbers as they are (always short), anything else capped. */
function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : describeValue(v);
}

/**
 * What a refill does when the backing allocator runs out part-way through a batch:
 *  - `all-or-nothing`: give back every page of the batch and report 0 (kmem_cache_alloc_bulk);
 *  - `partial`: keep the pages obtained and report their exact count (msm's `count = ret`).
 */
export type BatchMode = 'all-or-nothing' | 'partial';

export interface BatchingOptions {
  /** Pages taken from the backing allocator per refill (an integer >= 1). */
  batch: number;
  /** Default `all-or-nothing`. */
  mode?: BatchMode;
  /** Name used in caps and error messages (default `batched`). */
  name?: string;
}

/** Plugin counters, in pages and calls. */
export interface BatchedCounters {
  /** Refills: one bulk call into the backing allocator each (`stats().backingCalls`). */
  readonly allocBatches: number;
  /** Individual `inner.alloc` calls made by refills. */
  readonly innerAllocCalls: number;
  /** Pages kept from refills (handed out or still held). */
  readonly pagesObtained: number;
  /** `pagesObtained / allocBatches`: how much each bulk call brought (0 before any). */
  readonly pagesPerBackingCall: number;
  /** Pages taken from the backing allocator and not yet handed out. */
  readonly pagesHeld: number;
  /** Refills that came back short. */
  readonly shortBatches: number;
  /** Pages handed straight back because an all-or-nothing batch came back short. */
  readonly pagesReleasedOnFailure: number;
  /** Exact page count the last refill added (0 ... batch). */
  readonly lastRefillCount: number;
  /** Flushes that released freed tables to the backing allocator (one bulk free each). */
  readonly releaseBatches: number;
  /** Individual `inner.free` calls (released frees, failures, drain). */
  readonly innerFreeCalls: number;
  /** Freed tables waiting for the flush that covers them. */
  readonly pendingFlushPages: number;
}

export interface BatchedAllocator extends TableAllocator {
  /**
   * Take one batch of `size`-byte pages from the backing allocator now (with `ctx`, so
   * do it from a context that may block). Returns the exact number of pages added: 0 or
   * `batch` in all-or-nothing mode, anything in 0..`batch` in partial mode.
   */
  refill(size: number, ctx: AllocCtx): number;
  /** Teardown: give every held page back, then drain the backing allocator. */
  drain(): void;
  /** Pages of one size held and not handed out. */
  heldPages(size: number): number;
  counters(): BatchedCounters;
}

/**
 * Take table pages from `inner` `batch` at a time and hand them out one by one. The
 * allocator contract has no bulk call, so a refill is `batch` `inner.alloc` calls counted
 * as one backing call, the way kmem_cache_alloc_bulk is one call for the driver. Freed
 * tables are collected and released to `inner` together, only after the flush that
 * covers them (`flushDone(token)`, or `flushDone()`); a free whose token is already done
 * goes down at once. Pages are never recycled here, so zeroing stays with `inner`.
 *
 * @example
 * const alloc = withBatching(createSystemAllocator(), { batch: 16, mode: 'partial' });
 * const pt = createPageTable('ARM_64_LPAE_S1', cfg, { allocator: alloc });
 * alloc.counters().pagesPerBackingCall; // 16 while memory lasts
 */
export function withBatching(inner: TableAllocator, opts: BatchingOptions): BatchedAllocator {
  const name = opts?.name ?? 'batched';
  const batch = opts?.batch;
  if (!Number.isSafeInteger(batch) || batch < 1) throw new RangeError(`[iopgt] [${name}] batch must be an integer >= 1, got ${show(batch)}`);
  const mode = opts.mode ?? 'all-or-nothing';
  if (mode !== 'all-or-nothing' && mode !== 'partial') throw new RangeError(`[iopgt] [${name}] mode must be 'all-or-nothing' or 'partial', got ${show(mode)}`);
  const allOrNothing = mode === 'all-or-nothing';
  const maxSize = inner.caps.maxSize;

  /** Held pages per allocation size, handed out from the top. */
  const held = new Map<number, Paddr[]>();
  /** Freed and waiting for the covering flush. */
  const pending = new PendingFrees();
  /** Pages handed out and not freed: paddr -> allocated size. */
  const live = new TableLedger(name, { wasFreed: (p) => pending.has(p) });

  let outstanding = 0;
  let heldBytes = 0;
  let heldCount = 0;
  let allocBatches = 0;
  let innerAllocCalls = 0;
  let pagesObtained = 0;
  let shortBatches = 0;
  let pagesReleasedOnFailure = 0;
  let lastRefillCount = 0;
  let releaseBatches = 0;
  let innerFreeCalls = 0;
  /** Flushed frees whose inner free threw: still held (cached), retried by the next flushDone or drain. */
  let returning: Array<[Paddr, number]> = [];
  let returningBytes = 0;
  const memory = inner.memory;
  // Above a layer whose pages are assigned by design, a freed page goes back into that stack, not to the host.
  const checkRelease = inner.caps.assignsPages !== true;

  /** Throw what a loop collected: the error itself, or all of them together. */
  function raise(errors: readonly unknown[]): void {
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `[iopgt] [${name}] ${errors.length} operations failed; every page is still accounted (see stats())`);
  }

  /** `inner.free` under a completed flush; true once `inner` took the page, false (error collected) if it threw. */
  function freeDown(p: Paddr, size: number, ctx: FreeCtx | undefined, errors: unknown[]): boolean {
    innerFreeCalls++;
    try {
      inner.free(p, size, flushedCtx(ctx));
      return true;
    } catch (e) {
      errors.push(asAllocatorError(e, name, `inner free of 0x${p.toString(16)}`));
      return false;
    }
  }

  const checkSize = (size: number): void => assertTableSize(name, size, maxSize);

  function refill(size: number, ctx: AllocCtx): number {
    allocBatches++;
    let stack = held.get(size);
    if (stack === undefined) held.set(size, (stack = []));
    // Pages go straight onto the held stack; a short all-or-nothing batch pops them off again.
    const base = stack.length;
    let threw: Error | null = null;
    for (let i = 0; i < batch; i++) {
      innerAllocCalls++;
      let p: Paddr | null;
      try {
        p = inner.alloc(size, ctx);
      } catch (e) {
        // A throwing backing is a short batch, reported typed once the batch is settled.
        threw = asAllocatorError(e, name, `inner alloc(${size})`);
        break;
      }
      if (p === null) break;
      stack.push(p);
    }
    let n = stack.length - base;
    const errors: unknown[] = threw === null ? [] : [threw];
    if (n < batch) {
      shortBatches++;
      if (allOrNothing) {
        // Never linked into a table, so nothing can walk them: they go down under a completed flush.
        // A page the backing refuses back stays held (accounted) rather than lost.
        const got = stack.splice(base, n);
        for (const p of got) {
          if (freeDown(p, size, undefined, errors)) pagesReleasedOnFailure++;
          else stack.push(p);
        }
        n = stack.length - base;
      }
    }
    outstanding += n * size;
    heldBytes += n * size;
    heldCount += n;
    pagesObtained += n;
    lastRefillCount = n;
    raise(errors);
    return n;
  }

  /** Held pages were never linked into a table: nothing can walk them, so they go down under a completed flush. */
  function releaseHeld(errors: unknown[]): void {
    for (const [size, stack] of held) {
      const kept: Paddr[] = [];
      for (const p of stack) {
        if (!freeDown(p, size, undefined, errors)) {
          kept.push(p);
          continue;
        }
        outstanding -= size;
        heldBytes -= size;
        heldCount--;
      }
      stack.length = 0;
      stack.push(...kept);
    }
  }

  /** A freed table whose covering flush completed: down to `inner` with its (done) ctx; kept (cached) for a retry if that throws. */
  function giveBack(p: Paddr, size: number, ctx: FreeCtx | undefined, errors: unknown[]): void {
    if (freeDown(p, size, ctx, errors)) {
      outstanding -= size;
      return;
    }
    returning.push([p, size]);
    returningBytes += size;
  }

  /** Retry the flushed frees whose inner free threw before. */
  function retryReturning(errors: unknown[]): void {
    if (returning.length === 0) return;
    const list = returning;
    returning = [];
    returningBytes = 0;
    for (const [p, size] of list) giveBack(p, size, undefined, errors);
  }

  const base = definePlugin(inner, {
    caps: { name, defersFree: true, reuse: 'after-flush', zeroes: 'backing', mayFail: inner.caps.mayFail },
    alloc(size: number, ctx: AllocCtx): Paddr | null {
      let stack = held.get(size);
      if (stack === undefined || stack.length === 0) {
        checkSize(size);
        if (refill(size, ctx) === 0) return null;
        stack = held.get(size)!;
      }
      const p = stack.pop()!;
      heldBytes -= size;
      heldCount--;
      live.add(p, size);
      return p;
    },
    free(paddr: Paddr, size: number, ctx?: FreeCtx): void {
      // Throws double-free / foreign-free / free-size, changing nothing.
      const allocated = live.check(paddr, size);
      // The page goes back to the host (inner) for reuse: refused, state unchanged, while it
      // is still assigned away from the host.
      if (checkRelease) memory.checkAccess?.('release', paddr, allocated, 'allocator');
      if (isFlushed(ctx)) {
        // Down at once; if the inner free throws, the table is still live here and the
        // caller can retry the same free.
        innerFreeCalls++;
        try {
          inner.free(paddr, allocated, flushedCtx(ctx));
        } catch (e) {
          throw asAllocatorError(e, name, `inner free of 0x${paddr.toString(16)}`);
        }
        live.remove(paddr, size);
        outstanding -= allocated;
        return;
      }
      live.remove(paddr, size);
      pending.add(paddr, allocated, ctx);
    },
    flushDone(token?: FlushToken): void {
      const errors: unknown[] = [];
      retryReturning(errors);
      // The frees this flush covers are unreachable now: release them as one batch.
      if (pending.release(token, (p, size, c) => giveBack(p, size, c, errors)) > 0) releaseBatches++;
      raise(errors);
    },
    stats(): AllocatorStats {
      return {
        outstanding,
        live: live.bytes,
        cached: heldBytes + returningBytes,
        reserved: 0,
        pendingFlush: pending.bytes,
        quarantined: 0,
        liveTables: live.count,
        backingCalls: allocBatches,
      };
    },
  });

  const extra = {
    refill(size: number, ctx: AllocCtx): number {
      checkSize(size);
      return refill(size, ctx);
    },
    drain(): void {
      const errors: unknown[] = [];
      retryReturning(errors);
      releaseHeld(errors);
      try {
        inner.drain?.();
      } finally {
        raise(errors);
      }
    },
    heldPages: (size: number): number => held.get(size)?.length ?? 0,
    counters: (): BatchedCounters => ({
      allocBatches,
      innerAllocCalls,
      pagesObtained,
      pagesPerBackingCall: allocBatches === 0 ? 0 : pagesObtained / allocBatches,
      pagesHeld: heldCount,
      shortBatches,
      pagesReleasedOnFailure,
      lastRefillCount,
      releaseBatches,
      innerFreeCalls,
      pendingFlushPages: pending.count,
    }),
  };
  return Object.assign(base, extra);
}
