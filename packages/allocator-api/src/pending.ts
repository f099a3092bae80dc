/**
 * The pending-free list every recycling allocator keeps: tables the page table freed
 * whose covering flush has not completed yet (contract v2). Written once here so that
 * every plugin releases pages by the same rule:
 *  - a free made under a {@link FlushToken} is released by `flushDone(token)` for that
 *    token, or by any later release once the token reads `done`;
 *  - `flushDone()` without a token (the driver's "every flush so far completed", the
 *    kernel-faithful path) releases everything;
 *  - a free with no {@link FreeCtx} (a v1 caller) is released only by `flushDone()`.
 *
 * A free whose token is already done when `free` runs (a synchronous `tlb_flush_walk`
 * completed first) needs no list: {@link isFlushed} tells the caller to recycle it now.
 */
import type { FlushToken, FreeCtx, Paddr } from './allocator.js';

/** What a release hands back for each page: the page, its allocated size, and the ctx it was freed with. */
export type PendingVisitor = (paddr: Paddr, size: number, ctx: FreeCtx | undefined) => void;

/** A flush that has completed: what a decorator passes with frees it forwards after the flush. */
export const COMPLETED_FLUSH: FlushToken = Object.freeze({ id: 0, done: true });

/** True when `ctx` says the flush covering this free has already completed (no waiting needed). */
export function isFlushed(ctx: FreeCtx | undefined): boolean {
  return ctx !== undefined && ctx.flush.done;
}

/**
 * The ctx a decorator passes down with a page it gives back after the covering flush (or
 * that was never linked into a table): the original ctx when there is one (its token is
 * done by now), otherwise a lower table under a completed flush.
 */
export function flushedCtx(ctx: FreeCtx | undefined, level = 3): FreeCtx {
  if (ctx !== undefined && ctx.flush.done) return ctx;
  return { kind: ctx?.kind ?? 'table', level: ctx?.level ?? level, flush: COMPLETED_FLUSH };
}

/** Frees made under one token, in free order. Parallel arrays: no object per page. */
interface Bucket {
  readonly token: FlushToken | undefined;
  readonly paddrs: Paddr[];
  readonly sizes: number[];
  readonly ctxs: (FreeCtx | undefined)[];
}

/** Key of the bucket of frees made without a ctx (v1 callers): below every token id. */
const NO_TOKEN = -1;

/**
 * Pending frees keyed by flush token.
 *
 * @example
 * const pending = new PendingFrees();
 * // free(paddr, size, ctx):
 * if (isFlushed(ctx)) recycle(paddr, allocated); else pending.add(paddr, allocated, ctx);
 * // flushDone(token):
 * pending.release(token, (p, size) => recycle(p, size));
 */
export class PendingFrees {
  readonly #buckets = new Map<number, Bucket>();
  /** paddr -> allocated size, for lookups (`wasFreed`) and the byte count. */
  readonly #sizes = new Map<Paddr, number>();
  #bytes = 0;

  /** Bytes waiting for a flush: what `stats().pendingFlush` reports. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Pages waiting for a flush. */
  get count(): number {
    return this.#sizes.size;
  }

  /** Whether `paddr` is waiting for a flush (a second free of it is a double free). */
  has(paddr: Paddr): boolean {
    return this.#sizes.has(paddr);
  }

  /** The allocated size recorded for a pending page, or undefined. */
  sizeOf(paddr: Paddr): number | undefined {
    return this.#sizes.get(paddr);
  }

  /** Record a free of `size` allocated bytes at `paddr`, covered by `ctx.flush` (or, without ctx, by the next `flushDone()`). */
  add(paddr: Paddr, size: number, ctx?: FreeCtx): void {
    const key = ctx === undefined ? NO_TOKEN : ctx.flush.id;
    let b = this.#buckets.get(key);
    if (b === undefined) {
      b = { token: ctx?.flush, paddrs: [], sizes: [], ctxs: [] };
      this.#buckets.set(key, b);
    }
    b.paddrs.push(paddr);
    b.sizes.push(size);
    b.ctxs.push(ctx);
    this.#sizes.set(paddr, size);
    this.#bytes += size;
  }

  /**
   * A flush completed: remove and visit (in free order, oldest token first) every
   * page it covers. With `token`: the frees made under it, and those of every other
   * token that reads `done` by now. Without: every pending page. Returns pages released.
   * Pages are removed before `visit` sees them, so `visit` may free them elsewhere.
   */
  release(token: FlushToken | undefined, visit: PendingVisitor): number {
    if (this.#buckets.size === 0) return 0;
    const ready: Bucket[] = [];
    for (const [key, b] of this.#buckets) {
      const covered = token === undefined || (b.token !== undefined && (b.token === token || b.token.id === token.id || b.token.done));
      if (!covered) continue;
      this.#buckets.delete(key);
      ready.push(b);
    }
    let n = 0;
    for (const b of ready) {
      for (let i = 0; i < b.paddrs.length; i++) {
        const p = b.paddrs[i]!;
        const size = b.sizes[i]!;
        this.#sizes.delete(p);
        this.#bytes -= size;
      }
    }
    for (const b of ready) {
      for (let i = 0; i < b.paddrs.length; i++) visit(b.paddrs[i]!, b.sizes[i]!, b.ctxs[i]);
      n += b.paddrs.length;
    }
    return n;
  }
}
