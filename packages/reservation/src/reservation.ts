/**
 * The reservation allocator: a TableAllocator whose non-root allocations consume only
 * from the reservation of the job that is running (Panthor's `alloc_pt` with
 * `vm->op_ctx`, msm's `p->pages[p->ptr++]`, KVM's memory caches).
 *
 * Phases: `prepare` may block, allocate from the backing allocator and fail; `run`
 * opens a signalling section and installs the reservation as the active one; `release`
 * gives the unused pages back exactly once. The root (PGD) is allocated from the
 * backing allocator at VM creation, outside any op, as the kernel does with GFP_KERNEL.
 */
import {
  AllocatorMisuseError,
  EMPTY_STATS,
  PendingFrees,
  TableLedger,
  asAllocatorError,
  describeValue,
  flushedCtx,
  isFlushed,
  isPowerOfTwo,
  type AllocCtx,
  type AllocatorCaps,
  type AllocatorStats,
  type FlushToken,
  type FreeCtx,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';
import { SignallingSection, withBackingGuard } from './section.js';

/**
 * Where a table freed during a run goes once the flush covering it is done:
 *  - `reservation`: back into the running job's reservation (usable again by the same
 *    job after `flushDone()`; returned to the backing at release);
 *  - `backing`: to the backing allocator (Panthor and msm free to their slab), but
 *    never inside the signalling section: there it waits until the section closes.
 */
export type FreePolicy = 'reservation' | 'backing';

export interface ReservationAllocatorOptions {
  /** Name in error messages (default `reservation`). */
  readonly name?: string;
  /** Default `backing`. */
  readonly freePolicy?: FreePolicy;
  /** Share one section between allocators (one per GPU); a fresh one by default. */
  readonly section?: SignallingSection;
  /** Reservation page size in bytes (the granule; default 4096). */
  readonly pageSize?: number;
  /**
   * Poison the allocator (its VM) when a run finds its reservation empty: later
   * prepares fail without touching the backing allocator (Panthor's `vm->unusable`).
   * Default false.
   */
  readonly markUnusable?: boolean;
}

export type ReservationState = 'new' | 'ready' | 'failed' | 'released';

/** Per-reservation numbers, in tables (pages). */
export interface ReservationCounters {
  /** Pages taken from the backing allocator by prepare. */
  readonly reserved: number;
  /** Tables handed out from this reservation by run-phase allocations. */
  readonly consumed: number;
  /** Freed tables that came back into this reservation (policy `reservation`). */
  readonly recycled: number;
  /** Pages given back to the backing allocator by release. */
  readonly returned: number;
  /** Pages available now. */
  readonly available: number;
  /** Allocations refused because the reservation was empty. */
  readonly exhaustions: number;
}

/** Totals of an allocator across all reservations (requirement 28). */
export interface ReservationAllocatorCounters {
  readonly reservations: number;
  readonly failedPrepares: number;
  readonly reserved: number;
  readonly consumed: number;
  readonly recycled: number;
  readonly returned: number;
  readonly exhaustions: number;
  readonly rootAllocs: number;
  readonly violations: number;
}

/** A job's private stock of zeroed pages, from prepare to release. */
export interface Reservation {
  readonly state: ReservationState;
  /** Pages prepared (0 after a failed prepare). */
  readonly reserved: number;
  readonly consumed: number;
  /** True once a run-phase allocation found the reservation empty. */
  readonly exhausted: boolean;
  counters(): ReservationCounters;
  /**
   * Take `count` pages from the backing allocator. On the first failure every page
   * taken so far is returned and the state becomes `failed`; returns success.
   * Only from state `new`.
   */
  prepare(count: number, ctx?: AllocCtx): boolean;
  /**
   * Run `fn` inside a signalling section with this reservation active: every non-root
   * table allocation consumes from it, and any call into the backing allocator is a
   * `run-phase-backing-call` violation. Only in state `ready`; runs do not nest.
   */
  run<T>(fn: () => T): T;
  /**
   * Return the unused pages to the backing allocator, exactly once. Idempotent, and
   * safe after a failed, partial or never-started prepare. Returns the pages given back
   * by this call. Must not be called inside a signalling section.
   */
  release(): number;
}

export interface ReservationAllocator extends TableAllocator {
  readonly section: SignallingSection;
  readonly freePolicy: FreePolicy;
  readonly pageSize: number;
  /** True after a run-phase exhaustion with `markUnusable`: every later prepare fails. */
  readonly unusable: boolean;
  /** The reservation installed by a running `run`, if any. */
  readonly active: Reservation | null;
  /** A reservation in state `new`, not yet prepared, of `pageSize`-byte pages (default: the allocator's). */
  createReservation(pageSize?: number): Reservation;
  /** `createReservation(pageSize)` + `prepare(count)`; check `state` (`ready` or `failed`). */
  prepare(count: number, ctx?: AllocCtx, pageSize?: number): Reservation;
  counters(): ReservationAllocatorCounters;
}

const PREPARE_CTX: AllocCtx = Object.freeze({ mayBlock: true, phase: 'prepare' });

interface ResState {
  state: ReservationState;
  pageSize: number;
  reserved: number;
  consumed: number;
  recycled: number;
  returned: number;
  exhaustions: number;
  /** Pages ready to hand out; `dirty` holds those that need zeroing first. */
  free: Paddr[];
  dirty: Set<Paddr>;
}

/**
 * Build a reservation allocator over `backing`. The backing allocator is wrapped with
 * {@link withBackingGuard}, so this allocator's own backing calls are checked too.
 *
 * @example
 * const alloc = withReservation(createSystemAllocator());
 * const pt = createPageTable('ARM_64_LPAE_S1', cfg, { allocator: alloc }); // PGD from backing
 * const r = alloc.prepare(tablesNeeded(pt.geometry, ops).total);            // may fail
 * if (r.state === 'ready') r.run(() => pt.mapPages(iova, pa, 4096, 1, ['read'], { mayBlock: false, phase: 'run' }));
 * r.release();                                                               // out of the run path
 */
export function withReservation(backing: TableAllocator, opts: ReservationAllocatorOptions = {}): ReservationAllocator {
  const name = opts.name ?? 'reservation';
  const freePolicy = opts.freePolicy ?? 'backing';
  if (freePolicy !== 'reservation' && freePolicy !== 'backing') throw new RangeError(`unknown free policy ${describeValue(freePolicy)}`);
  const pageSize = opts.pageSize ?? 4096;
  if (!isPowerOfTwo(pageSize) || pageSize < 64) throw new RangeError(`pageSize must be a power of two >= 64, got ${describeValue(pageSize)}`);
  const section = opts.section ?? new SignallingSection();
  const below = withBackingGuard(backing, section);

  /** Recently freed, to tell a double free from a foreign one. */
  const freed = new Set<Paddr>();
  /** Tables handed out: paddr -> allocated size; roots are also tracked apart. */
  const live = new TableLedger(name, { wasFreed: (p) => freed.has(p) });
  const roots = new Set<Paddr>();
  /** Freed tables waiting for the flush that covers them (their size is also in `pageBytes`). */
  const pending = new PendingFrees();
  /** Flushed but freed inside a section: returned to the backing once it closes. */
  let deferred: Paddr[] = [];
  /** Which reservation a pending page goes back to (policy `reservation`). */
  const pendingOwner = new Map<Paddr, ResState>();
  const states = new Set<ResState>();
  let active: ResState | null = null;
  let activeHandle: Reservation | null = null;
  /** Bytes taken from the backing allocator and not given back: tracked apart from the categories. */
  let heldBytes = 0;
  let backingCalls = 0;
  /** Flushes that completed inside a section, not yet forwarded to the backing (undefined: a full flush). */
  let unforwarded: (FlushToken | undefined)[] = [];
  let unusable = false;
  const totals = { reservations: 0, failedPrepares: 0, reserved: 0, consumed: 0, recycled: 0, returned: 0, exhaustions: 0, rootAllocs: 0 };

  const caps: AllocatorCaps = Object.freeze({
    name,
    minSize: 64,
    maxSize: Math.max(pageSize, backing.caps.maxSize),
    defersFree: true,
    reuse: 'after-flush',
    zeroes: 'on-alloc',
    mayFail: true,
    ...(backing.caps.assignsPages === true ? { assignsPages: true } : {}),
  });

  /**
   * A freed table goes back for reuse (this job or the backing): refused, before anything
   * changes, while it is still assigned away from the host. Not above a layer whose pages
   * are assigned by design (secure-share): those go back into that layer, not to the host.
   */
  function checkRelease(paddr: Paddr, size: number): void {
    if (backing.caps.assignsPages !== true) backing.memory.checkAccess?.('release', paddr, size, 'allocator');
  }

  const misuse = (rule: ConstructorParameters<typeof AllocatorMisuseError>[1], msg: string, paddr?: number): never => {
    throw new AllocatorMisuseError(name, rule, msg, paddr);
  };

  /** Size of each page this allocator holds outside `live` (reserved, pending, deferred). */
  const pageBytes = new Map<Paddr, number>();

  /** Pages whose give-back threw: still held (cached), retried by the next drain or flushDone outside a section. */
  let returning: Paddr[] = [];

  /** Throw what a loop collected: the error itself, or all of them together. */
  function raise(errors: readonly unknown[]): void {
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) throw new AggregateError(errors, `[iopgt] [${name}] ${errors.length} operations failed; every page is still accounted (see stats())`);
  }

  /**
   * Give a page this allocator holds (reserved, flushed or never linked) back to the
   * backing, under a completed flush. Forgotten only once the backing took it: if that
   * throws, the page is kept (cached) for a retry and the error collected.
   */
  function giveBack(p: Paddr, errors: unknown[], ctx?: FreeCtx): void {
    const size = pageBytes.get(p)!;
    try {
      below.free(p, size, flushedCtx(ctx));
    } catch (e) {
      returning.push(p);
      errors.push(asAllocatorError(e, name, `backing free of 0x${p.toString(16)}`));
      return;
    }
    pageBytes.delete(p);
    heldBytes -= size;
  }

  /** Retry the give-backs that threw before (never inside a section). */
  function retryReturning(errors: unknown[]): void {
    if (section.isActive || returning.length === 0) return;
    const list = returning;
    returning = [];
    for (const p of list) giveBack(p, errors);
  }

  /** A freed page whose covering flush completed: into its reservation, or towards the backing allocator. */
  function settle(p: Paddr, ctx: FreeCtx | undefined, errors: unknown[]): void {
    const owner = pendingOwner.get(p);
    pendingOwner.delete(p);
    freed.delete(p);
    if (owner !== undefined && owner.state === 'ready') {
      owner.free.push(p);
      owner.dirty.add(p);
      owner.recycled++;
      totals.recycled++;
    } else if (section.isActive) deferred.push(p);
    else giveBack(p, errors, ctx);
  }

  /** Move the pages a completed flush covers on (all pending pages without a token). */
  function settlePending(errors: unknown[], token?: FlushToken): void {
    // Earlier failures first: a page that fails now is retried by the next call, not this one.
    retryReturning(errors);
    pending.release(token, (p, _size, ctx) => settle(p, ctx, errors));
    releaseDeferred(errors);
  }

  /** Flushed pages freed inside a section go to the backing once no section is open. */
  function releaseDeferred(errors: unknown[]): void {
    if (section.isActive || deferred.length === 0) return;
    const d = deferred;
    deferred = [];
    for (const p of d) giveBack(p, errors);
  }

  /**
   * The backing's own flushDone is a backing call: never inside a section. Flushes that
   * completed while one was open are forwarded, in order, once it has closed.
   */
  function forwardFlushes(): void {
    if (section.isActive) return;
    const list = unforwarded;
    unforwarded = [];
    for (const t of list) below.flushDone(t);
  }

  function countersOf(s: ResState): ReservationCounters {
    return { reserved: s.reserved, consumed: s.consumed, recycled: s.recycled, returned: s.returned, available: s.free.length, exhaustions: s.exhaustions };
  }

  function createReservation(size: number = pageSize): Reservation {
    if (!isPowerOfTwo(size) || size < 64) throw new RangeError(`[iopgt] [${name}] reservation page size must be a power of two >= 64, got ${describeValue(size)}`);
    const s: ResState = { state: 'new', pageSize: size, reserved: 0, consumed: 0, recycled: 0, returned: 0, exhaustions: 0, free: [], dirty: new Set() };
    const handle: Reservation = {
      get state() {
        return s.state;
      },
      get reserved() {
        return s.reserved;
      },
      get consumed() {
        return s.consumed;
      },
      get exhausted() {
        return s.exhaustions > 0;
      },
      counters: () => countersOf(s),
      prepare(count: number, ctx: AllocCtx = PREPARE_CTX): boolean {
        if (s.state !== 'new') misuse('alloc-outside-op', `prepare on a reservation in state ${s.state}`);
        if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`[iopgt] [${name}] prepare count must be a non-negative integer, got ${describeValue(count)}`);
        // Checked before anything is taken: a prepare inside a run is the bug this catches.
        section.check({ allocator: backing.caps.name, call: 'alloc', size: s.pageSize });
        totals.reservations++;
        if (unusable) {
          s.state = 'failed';
          totals.failedPrepares++;
          return false;
        }
        states.add(s);
        for (let i = 0; i < count; i++) {
          backingCalls++;
          let p: Paddr | null;
          try {
            p = below.alloc(s.pageSize, ctx);
          } catch (e) {
            // A misuse refused by the guard is the caller's bug; any other throw is a failed prepare.
            if (e instanceof AllocatorMisuseError && e.rule === 'run-phase-backing-call') throw e;
            p = null;
          }
          if (p === null) {
            // All or nothing, like kmem_cache_alloc_bulk: give back what was taken. A page the
            // backing refuses back stays held (cached) for the next drain: prepare reports a
            // failure (false), it does not throw.
            const errors: unknown[] = [];
            for (const q of s.free) giveBack(q, errors);
            s.free.length = 0;
            s.state = 'failed';
            states.delete(s);
            totals.failedPrepares++;
            return false;
          }
          heldBytes += s.pageSize;
          freed.delete(p);
          pageBytes.set(p, s.pageSize);
          s.free.push(p);
        }
        s.reserved = count;
        totals.reserved += count;
        s.state = 'ready';
        return true;
      },
      run<T>(fn: () => T): T {
        if (s.state !== 'ready') misuse('alloc-outside-op', `run on a reservation in state ${s.state}`);
        if (active !== null) misuse('alloc-outside-op', 'run while another reservation is running (ops on one allocator are serialised)');
        return section.run(() => {
          active = s;
          activeHandle = handle;
          try {
            return fn();
          } finally {
            active = null;
            activeHandle = null;
          }
        });
      },
      release(): number {
        if (s.state === 'released' || s.state === 'failed' || s.state === 'new') {
          if (s.state === 'new') s.state = 'released';
          return 0;
        }
        if (active === s) misuse('run-phase-backing-call', 'release inside the run of the same reservation');
        section.check({ allocator: backing.caps.name, call: 'free', size: s.pageSize });
        s.state = 'released';
        states.delete(s);
        const n = s.free.length;
        // Exactly once: every page leaves the reservation now; one the backing refuses is
        // kept (cached) and retried by the next drain, and the failure is reported.
        const errors: unknown[] = [];
        const list = s.free.splice(0);
        for (const p of list) giveBack(p, errors);
        s.dirty.clear();
        s.returned += n;
        totals.returned += n;
        raise(errors);
        // Pages this reservation still has pending go to the backing when flushed.
        return n;
      },
    };
    return handle;
  }

  const allocator: ReservationAllocator = {
    inner: below,
    caps,
    memory: backing.memory,
    section,
    freePolicy,
    pageSize,
    get active() {
      return activeHandle;
    },
    get unusable() {
      return unusable;
    },
    createReservation,
    prepare(count: number, ctx?: AllocCtx, size?: number): Reservation {
      const r = createReservation(size);
      r.prepare(count, ctx);
      return r;
    },
    alloc(size: number, ctx: AllocCtx): Paddr | null {
      if (!isPowerOfTwo(size) || size < 64) misuse('size', `alloc size ${describeValue(size)} is not a power of two >= 64`);
      const s = active;
      if (s === null) {
        // The root: allocated by alloc_io_pgtable_ops with GFP_KERNEL, outside any op.
        if (ctx.kind !== 'pgd') misuse('alloc-outside-op', `alloc(${size}) of a non-root table with no active reservation (map only inside Reservation.run)`);
        backingCalls++;
        let p: Paddr | null;
        try {
          p = below.alloc(size, ctx);
        } catch (e) {
          throw asAllocatorError(e, name, `backing alloc(${size}) of the root`);
        }
        if (p === null) return null;
        heldBytes += size;
        freed.delete(p);
        roots.add(p);
        live.add(p, size);
        totals.rootAllocs++;
        return p;
      }
      // ctx.mayBlock is ignored on purpose: Panthor passes GFP_KERNEL inside the fence path.
      if (size !== s.pageSize) misuse('size', `run-phase alloc of ${describeValue(size)} bytes; this reservation holds ${s.pageSize}-byte pages`);
      const p = s.free.pop();
      if (p === undefined) {
        s.exhaustions++;
        totals.exhaustions++;
        if (opts.markUnusable === true) unusable = true;
        return null;
      }
      if (s.dirty.delete(p)) backing.memory.zero(p, s.pageSize);
      pageBytes.delete(p);
      s.consumed++;
      totals.consumed++;
      live.add(p, size);
      return p;
    },
    free(paddr: Paddr, size: number, ctx?: FreeCtx): void {
      // The ledger throws double-free / foreign-free / free-size, changing nothing.
      if (roots.has(paddr)) {
        // free_io_pgtable_ops frees the root after tlb_flush_all: straight to the backing
        // when that flush completed; with deferred flush ops (a no-op tlb_flush_all) it
        // waits for its token like any other table. Checked before the backing call and
        // forgotten after it, so a refused call changes nothing.
        // A page still assigned away from the host must not go back for reuse.
        checkRelease(paddr, live.check(paddr, size));
        if (!isFlushed(ctx) && ctx !== undefined) {
          const allocated = live.remove(paddr, size);
          roots.delete(paddr);
          pageBytes.set(paddr, allocated);
          freed.add(paddr);
          pending.add(paddr, allocated, ctx);
          return;
        }
        try {
          below.free(paddr, size, ctx);
        } catch (e) {
          throw asAllocatorError(e, name, `backing free of root 0x${paddr.toString(16)}`);
        }
        heldBytes -= live.remove(paddr, size);
        freed.add(paddr);
        roots.delete(paddr);
        return;
      }
      // Checked before the table stops being live: refused, nothing changes.
      checkRelease(paddr, live.check(paddr, size));
      if (isFlushed(ctx) && active === null && !section.isActive) {
        // Straight to the backing: if that throws, the table is still live here and the
        // caller can retry the same free.
        try {
          below.free(paddr, live.sizeOf(paddr)!, ctx);
        } catch (e) {
          throw asAllocatorError(e, name, `backing free of 0x${paddr.toString(16)}`);
        }
        heldBytes -= live.remove(paddr, size);
        freed.add(paddr);
        return;
      }
      const allocated = live.remove(paddr, size);
      pageBytes.set(paddr, allocated);
      freed.add(paddr);
      if (freePolicy === 'reservation' && active !== null) pendingOwner.set(paddr, active);
      // A table freed during a run waits for the next flushDone even when its flush is
      // done: a job never consumes more hand-outs than it reserved.
      if (isFlushed(ctx) && active === null) {
        const errors: unknown[] = [];
        settle(paddr, ctx, errors);
        raise(errors);
      } else pending.add(paddr, allocated, ctx);
    },
    flushDone(token?: FlushToken): void {
      const errors: unknown[] = [];
      settlePending(errors, token);
      unforwarded.push(token);
      try {
        forwardFlushes();
      } finally {
        raise(errors);
      }
    },
    drain(): void {
      // Never touches pending pages: only what already had its flush.
      if (section.isActive) return;
      const errors: unknown[] = [];
      retryReturning(errors);
      releaseDeferred(errors);
      try {
        forwardFlushes();
        below.drain?.();
      } finally {
        raise(errors);
      }
    },
    stats(): AllocatorStats {
      let reservedBytes = 0;
      for (const s of states) reservedBytes += s.free.length * s.pageSize;
      let cachedBytes = 0;
      for (const p of deferred) cachedBytes += pageBytes.get(p)!;
      for (const p of returning) cachedBytes += pageBytes.get(p)!;
      return {
        ...EMPTY_STATS,
        outstanding: heldBytes,
        live: live.bytes,
        reserved: reservedBytes,
        pendingFlush: pending.bytes,
        cached: cachedBytes,
        liveTables: live.count,
        backingCalls,
      };
    },
    counters: () => ({ ...totals, violations: section.violations.length }),
  };
  return allocator;
}
