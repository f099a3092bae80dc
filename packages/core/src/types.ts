import type { AllocCtx, FreeCtx, Paddr } from '@io-pgtable/allocator-api';
import type { IotlbGather } from './gather.js';

/**
 * iommu_flush_ops. IOVAs are numbers in signed-64 form (exact: TTBR1 addresses are
 * negative); use `iovaToU64` to print them as the kernel would. Every hook is optional,
 * as the kernel's inline wrappers tolerate missing callbacks.
 */
export interface FlushOps<C = unknown> {
  /** Invalidate the whole context; called by `free` before any table memory is released. */
  tlbFlushAll?(cookie: C): void;
  /**
   * Invalidate walk-cache state for `[iova, iova + size)`; called after a table entry is
   * cleared and *before* the sub-tables are freed.
   */
  tlbFlushWalk?(iova: number, size: number, granule: number, cookie: C): void;
  /** Queue leaf invalidation of one entry of size `granule`. */
  tlbAddPage?(gather: IotlbGather, iova: number, granule: number, cookie: C): void;
  /**
   * iotlb_sync: complete the invalidations gathered in `gather`. Called by
   * `pt.iotlbSync(gather)`, which then marks the gather's flush token done.
   */
  tlbSync?(gather: IotlbGather, cookie: C): void;
  /**
   * The flush regime. `true` when `tlbFlushWalk`/`tlbFlushAll` do NOT complete the
   * invalidation (Panthor's are no-ops; the flush completes at `tlbSync`): tables are then
   * freed under the gather's pending token, and may be reused only after
   * `pt.iotlbSync(gather)`. Default `false` (arm-smmu: the walk flush is synchronous).
   */
  readonly deferred?: boolean;
}

/**
 * The DMA API as a non-coherent walk sees it. The model has no caches: these calls are
 * observable events. `map` returns the DMA address; one that differs from the physical
 * address makes the table unusable, as in the kernel ("Cannot accommodate DMA translation").
 */
export interface DmaOps {
  map(paddr: Paddr, size: number): number;
  unmap(paddr: Paddr, size: number): void;
  sync(paddr: Paddr, bytes: number): void;
}

/** The kernel's raw `cfg.alloc` / `cfg.free` hooks, with the cookie of `alloc_io_pgtable_ops`. */
export type AllocHook<C = unknown> = (cookie: C, size: number, ctx: AllocCtx) => Paddr | null;
/** `ctx` says what was freed and under which flush (contract v2). */
export type FreeHook<C = unknown> = (cookie: C, paddr: Paddr, size: number, ctx: FreeCtx) => void;

/** `kernel` reproduces Linux exactly, warts included; `strict` adds the iommu core's checks. */
export type Mode = 'kernel' | 'strict';
