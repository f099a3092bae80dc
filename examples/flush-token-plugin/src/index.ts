import {
  PendingFrees,
  assertTableSize,
  definePlugin,
  freeSizeError,
  isFlushed,
  isFreeSize,
  notLiveError,
  type AllocCtx,
  type FlushToken,
  type FreeCtx,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';

/**
 * A recycling pool written against the flush token (contract v2). A freed table may be
 * walked by the device until the TLB/walk-cache flush covering its free completes:
 *  - `free(paddr, size, ctx)`: if `ctx.flush.done` (a synchronous `tlb_flush_walk` ran
 *    first) the page is reusable now; otherwise it waits on the pending list under its token;
 *  - `flushDone(token)`: the page table calls it from `pt.iotlbSync(gather)` once that
 *    gather's flush completed; only frees made under `token` (or another done token)
 *    become reusable. `flushDone()` without a token means every flush so far completed.
 * Nothing is written into a freed page before that: the pool zeroes pages when it hands
 * them out again.
 */
export function withTokenPool(inner: TableAllocator, opts: { keep?: number } = {}): TableAllocator {
  const keep = opts.keep ?? 16;
  const idle: Paddr[] = [];
  const pending = new PendingFrees();
  const live = new Map<Paddr, number>();
  let outstanding = 0;
  let liveBytes = 0;
  let cachedBytes = 0;
  let backingCalls = 0;
  const PAGE = 4096;

  /** A page whose flush completed: keep it for reuse, or give it back under that completed flush. */
  function reusable(p: Paddr, size: number, ctx: FreeCtx | undefined): void {
    if (size === PAGE && idle.length < keep) {
      idle.push(p);
      cachedBytes += size;
      return;
    }
    outstanding -= size;
    inner.free(p, size, ctx);
  }

  return definePlugin(inner, {
    // 'after-flush': safe under deferred flush ops (Panthor's no-op tlb_flush_walk).
    caps: { name: 'token-pool', defersFree: true, reuse: 'after-flush', zeroes: 'on-alloc' },
    alloc(size: number, ctx: AllocCtx): Paddr | null {
      assertTableSize('token-pool', size, inner.caps.maxSize);
      let p: Paddr | null | undefined = size === PAGE ? idle.pop() : undefined;
      if (p !== undefined) {
        cachedBytes -= size;
        inner.memory.zero(p, size);
      } else {
        backingCalls++;
        p = inner.alloc(size, ctx); // the caller's ctx: kind, level and phase reach the layer below
        if (p === null) return null;
        outstanding += size;
      }
      live.set(p, size);
      liveBytes += size;
      return p;
    },
    free(paddr: Paddr, size: number, ctx?: FreeCtx): void {
      const allocated = live.get(paddr);
      if (allocated === undefined) throw notLiveError('token-pool', paddr, size, pending.has(paddr) ? 'waiting for a flush' : idle.includes(paddr));
      if (!isFreeSize(size, allocated)) throw freeSizeError('token-pool', paddr, size, allocated);
      live.delete(paddr);
      liveBytes -= allocated;
      if (isFlushed(ctx)) reusable(paddr, allocated, ctx);
      else pending.add(paddr, allocated, ctx);
    },
    flushDone(token?: FlushToken): void {
      pending.release(token, reusable);
    },
    drain(): void {
      for (const p of idle.splice(0)) {
        cachedBytes -= PAGE;
        outstanding -= PAGE;
        inner.free(p, PAGE, { kind: 'table', level: 3, flush: { id: 0, done: true } });
      }
      inner.drain?.();
    },
    stats: () => ({
      outstanding,
      live: liveBytes,
      cached: cachedBytes,
      reserved: 0,
      pendingFlush: pending.bytes,
      quarantined: 0,
      liveTables: live.size,
      backingCalls,
    }),
  });
}
