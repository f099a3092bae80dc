/**
 * The page-table allocator contract: what io-pgtable asks of a custom `alloc`/`free`
 * pair, written down as types.
 *
 * Physical addresses are plain `number`s. Every output address space in ARM LPAE is at
 * most 52 bits wide, and every integer below 2^53 is exact in a JavaScript number, so
 * nothing is lost and the hot paths (one allocation per page-table page) never touch
 * BigInt.
 */

/** Physical address of a table (byte address, below 2^52). */
export type Paddr = number;

/**
 * What a table allocation is. The core says it explicitly on every call, so an
 * allocator never has to recognise a context object by identity (contract v2).
 *  - `pgd`: the root table, allocated once by `alloc_io_pgtable_ops` (GFP_KERNEL);
 *  - `table`: a lower-level table allocated while mapping (the caller's gfp).
 */
export type TableKind = 'pgd' | 'table';

/**
 * The caller's side of an allocation: the kernel's gfp flags and the VM_BIND phase that
 * GPU drivers layer on top of them. This is what a driver passes to `mapPages`.
 */
export interface MapCtx {
  /**
   * May the allocator sleep? The kernel allocates the PGD with GFP_KERNEL (true) and
   * every lower table with the gfp the caller passed to `map_pages`, often GFP_ATOMIC.
   */
  readonly mayBlock: boolean;
  /**
   * VM_BIND phase, when the caller runs one: `prepare` may allocate from backing
   * memory and fail; `run` happens inside the dma-fence signalling path and may only
   * consume what was reserved. Undefined for ordinary (synchronous) callers.
   */
  readonly phase?: AllocPhase;
}

/**
 * Where an allocation happens: the caller's {@link MapCtx} plus what the table is.
 * Decorators forward the context of the request they serve (or a spread of it), never
 * one of their own: a reservation or secure-share layer below reads `kind` and `phase`.
 *
 * `kind` and `level` are optional only while the v2 migration lands; the core always
 * sets them.
 */
export interface AllocCtx extends MapCtx {
  /** Root table or lower table; see {@link TableKind}. */
  readonly kind?: TableKind;
  /** Absolute level (0-3) of the table being allocated: the start level for the PGD. */
  readonly level?: number;
}

export type AllocPhase = 'prepare' | 'run';

/**
 * A flush that covers freed tables: one per gather (`IotlbGather`) and page table.
 * An allocator that recycles pages may hand a page freed under a token out again only
 * once the token is `done` (the page table sets it when the TLB and walk-cache
 * invalidation covering the free has completed, and then calls `flushDone(token)` down
 * the stack). Tokens are created by the core; allocators only read them.
 */
export interface FlushToken {
  /** Unique, increasing per process: lets an allocator keep pending frees in order. */
  readonly id: number;
  /** True once the flush covering every free made under this token has completed. */
  readonly done: boolean;
}

/**
 * Why and under which flush a table is freed (contract v2). `flush` is the token whose
 * completion covers this free; it is already `done` when the page table completed a
 * synchronous invalidation before calling `free` (a real `tlb_flush_walk`, or
 * `tlb_flush_all` at teardown).
 *
 * Optional only while the v2 migration lands; the core always passes it.
 */
export interface FreeCtx {
  readonly kind: TableKind;
  readonly level: number;
  readonly flush: FlushToken;
}

/**
 * When a plugin may hand a freed page out again.
 *  - `after-flush`: only once the free's {@link FlushToken} is done (or `flushDone()`
 *    without a token said every flush so far completed). Safe under every flush regime,
 *    including a no-op `tlb_flush_walk` whose invalidation completes at `iotlbSync`
 *    (Panthor).
 *  - `immediate`: at once. Safe only when the page table's `tlb_flush_walk` and
 *    `tlb_flush_all` complete the invalidation before returning (arm-smmu); the core
 *    refuses, in strict mode, to pair such a stack with deferred flush ops.
 */
export type ReusePolicy = 'after-flush' | 'immediate';

/** The context the core uses for the PGD: the kernel always allocates it with GFP_KERNEL. */
export const PGD_CTX: AllocCtx = Object.freeze({ mayBlock: true, kind: 'pgd' });
/** A blocking context with no VM_BIND phase: what `map_pages(..., GFP_KERNEL)` passes. */
export const BLOCKING_CTX: MapCtx = Object.freeze({ mayBlock: true });
/** A non-blocking context: what `map_pages(..., GFP_ATOMIC)` passes. */
export const ATOMIC_CTX: MapCtx = Object.freeze({ mayBlock: false });

/** Smallest allocation the core ever asks for (kernel 6.15+: `max(size, 64)`). */
export const MIN_TABLE_ALLOC = 64;

/**
 * How a plugin zeroes memory. The contract only requires that `alloc` returns zeroed
 * memory; *when* the zeroing happens is a cost trade-off worth declaring.
 *  - `on-alloc`: pages are zeroed when handed out (Panthor's reserve does this);
 *  - `on-free`: pages are zeroed when they come back, so hand-out is free;
 *  - `backing`: the plugin never recycles pages itself; the backing allocator zeroes.
 */
export type ZeroPolicy = 'on-alloc' | 'on-free' | 'backing';

/** What a plugin declares about itself; the conformance suite reads it. */
export interface AllocatorCaps {
  /** Human-readable name, used in error messages (`[iopgt] [name] ...`). */
  readonly name: string;
  /** Smallest allocation size served, in bytes (a power of two). */
  readonly minSize: number;
  /** Largest allocation size served, in bytes (a power of two). */
  readonly maxSize: number;
  /**
   * Does `free` put pages on a pending list that only `flushDone()` drains? Required
   * for any allocator that recycles pages when the page table's `tlb_flush_walk` is a
   * no-op (Panthor): a freed table must not be reused before the walk cache forgets it.
   */
  readonly defersFree: boolean;
  /**
   * When freed pages may be handed out again; see {@link ReusePolicy}. Replaces
   * `defersFree` (`true` = `after-flush`); optional only while the v2 migration lands.
   */
  readonly reuse?: ReusePolicy;
  /** When memory is zeroed; see {@link ZeroPolicy}. */
  readonly zeroes: ZeroPolicy;
  /** Can `alloc` return `null` (other than because the backing allocator did)? */
  readonly mayFail: boolean;
  /**
   * The pages this allocator hands out are assigned away from the host by design
   * (secure-share). A layer above it gives freed pages back to this stack, not to the
   * host, so it makes no `release` access check; decorators inherit the flag through
   * `definePlugin`, layers below never see it.
   */
  readonly assignsPages?: boolean;
}

/**
 * Accounting every allocator exposes, in bytes of backing memory. The identity that must
 * hold at every quiescent point (requirement 27):
 *
 *     outstanding == live + cached + reserved + pendingFlush + quarantined
 *
 * `outstanding` is what this allocator holds from the layer below it (for the bottom
 * system allocator, from physical memory). `live` counts the full allocated size of
 * each table handed out and not yet freed (a 16-byte PGD allocated as 64 counts 64).
 */
export interface AllocatorStats {
  readonly outstanding: number;
  readonly live: number;
  readonly cached: number;
  readonly reserved: number;
  readonly pendingFlush: number;
  readonly quarantined: number;
  /** Number of tables handed out and not freed. */
  readonly liveTables: number;
  /** Calls into the layer below (`alloc` + bulk calls); 0 for the bottom allocator. */
  readonly backingCalls: number;
}

/**
 * What an allocator is about to do with memory, for {@link PhysMemoryAccess.checkAccess}.
 * `release`: a freed page is about to be reused by the host (a pool keeps it, a layer
 * gives it to the one below); a page still assigned away from the host must be refused.
 */
export type MemoryAccessKind = 'write' | 'zero' | 'clean' | 'read' | 'release';

/** Byte-level access to the simulated physical memory an allocator's pages live in. */
export interface PhysMemoryAccess {
  /**
   * Run the memory's access control for an access the caller is about to make, without
   * making it; throws what the access control throws (secure-share: AccessViolationError).
   * A plugin that takes a freed page back for reuse calls it with `release` before it
   * changes any state. Optional: a memory without access control need not have it.
   */
  checkAccess?(kind: MemoryAccessKind, paddr: Paddr, size: number, who: 'allocator'): void;
  /** Fill `[paddr, paddr + size)` with zeroes. */
  zero(paddr: Paddr, size: number): void;
  /** True if every byte of `[paddr, paddr + size)` is zero. */
  isZero(paddr: Paddr, size: number): boolean;
  /**
   * Clean (write back) the CPU cache for a range. The model has no caches; the call
   * exists so that access control (secure-share) can see cache maintenance.
   */
  clean(paddr: Paddr, size: number): void;
}

/**
 * A page-table allocator: the kernel's `cfg.alloc` / `cfg.free` pair as an object.
 *
 * Contract (see README for the sources of each rule):
 *  1. `alloc(size, ctx)` is called with `size = max(tableSize, 64)`, a power of two.
 *     It returns the physical address of `size` bytes that are zeroed, aligned to
 *     `size`, physically contiguous and inside the page table's output address space,
 *     or `null` when it cannot (the core turns that into -ENOMEM).
 *  2. `free(paddr, size)` receives the table's *logical* size, which can be smaller
 *     than what `alloc` was asked for (a 16-byte PGD is allocated as 64 and freed as
 *     16). Each table is freed exactly once; double and foreign frees throw
 *     {@link AllocatorMisuseError}.
 *  3. `free` never blocks. An allocator that recycles pages defers the reuse of a freed
 *     page until `flushDone()` says the TLB/walk-cache invalidation covering it ended.
 */
export interface TableAllocator {
  readonly caps: AllocatorCaps;
  /**
   * The allocator this one is stacked on (decorators), or undefined for a leaf. Lets
   * teardown and tools see every layer of a stack; `definePlugin` sets it.
   */
  readonly inner?: TableAllocator;
  /** The memory the allocator's pages live in (forwarded by decorators). */
  readonly memory: PhysMemoryAccess;
  alloc(size: number, ctx: AllocCtx): Paddr | null;
  free(paddr: Paddr, size: number, ctx?: FreeCtx): void;
  /**
   * A flush completed. With a token: every free made under `token` may now be reused
   * (the page table calls this from `iotlbSync`). Without one: the driver's signal that
   * every TLB and walk-cache invalidation covering the frees made so far has completed.
   * Decorators forward it down the stack after draining their own pending lists.
   */
  flushDone(token?: FlushToken): void;
  /** Current accounting; see {@link AllocatorStats}. */
  stats(): AllocatorStats;
  /**
   * Give every idle page back to the layer below (pools, batches) and report what
   * could not be returned. Called at teardown; must not touch reserved or pending pages.
   */
  drain?(): void;
}

/** True if `n` is a power of two that is a safe integer (works above 2^31, unlike `n & (n - 1)`). */
export function isPowerOfTwo(n: number): boolean {
  if (!Number.isSafeInteger(n) || n <= 0) return false;
  if (n <= 0x7fffffff) return (n & (n - 1)) === 0;
  return 2 ** Math.round(Math.log2(n)) === n;
}

/** The size the core asks an allocator for: `max(size, 64)` (kernel 6.15+). */
export function allocSizeFor(tableSize: number): number {
  return tableSize < MIN_TABLE_ALLOC ? MIN_TABLE_ALLOC : tableSize;
}
