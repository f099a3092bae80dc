/**
 * The public PageTable: io_pgtable_ops over one LPAE engine. Decodes each call (request.ts),
 * runs it in the engine, and turns the engine's result into the API's: results are data,
 * exceptions are typed, and every operation is guarded against re-entry.
 */
import { BLOCKING_CTX, type MapCtx, type Paddr } from '@io-pgtable/allocator-api';
import { TWO_52, hex, low52 } from './addr.js';
import { Quirk, type FormatName, type ProtName } from './constants.js';
import { FlushCallbackError, IoPgtableError, TableFreeError, type MapErrno, type MapResult, type UnmapResult } from './errors.js';
import type { FlushTracker } from './flush.js';
import { protToPte, pteToBigInt, type PteTemplate } from './formats/lpae/pte.js';
import { E_EXIST, E_INVAL, E_NOMEM, LpaeEngine, UNMAP_ENOENT, type DirtyRecorder, type MapRequest } from './formats/lpae/table.js';
import { IotlbGather } from './gather.js';
import type { Geometry } from './geometry.js';
import { describe, toU64 } from './names.js';
import { PhysMemory } from './phys/memory.js';
import { RequestDecoder, RequestLimits } from './request.js';
import type { EffectiveCfg } from './io-pgtable.js';
import type { Mode } from './types.js';

/** Integer inputs: a bigint, or a non-negative safe-integer number. */
export type U64 = bigint | number;

export type LookupResult =
  | { kind: 'mapped'; paddr: number; level: number; pte: bigint }
  | { kind: 'unmapped'; level: number };

export interface WalkResult {
  /** 0, or -22 (EINVAL) when an invalid entry was met. */
  ret: number;
  /** Descriptors on the path, by absolute level (start level .. leaf). */
  ptes: Array<bigint | undefined>;
}

export const IOMMU_DIRTY_NO_CLEAR = 1;

/**
 * The tables of a page table as the device reads them (no host access check): set by
 * PageTable's static block, exported through `hw.deviceTables` only.
 */
export let deviceSnapshot: (pt: PageTable<unknown>) => Map<Paddr, Map<number, bigint>>;

/**
 * io_pgtable_ops for one LPAE page table. In `strict` mode (default) every call is
 * validated as the iommu core would (alignment, one page-size bit, the whole run inside
 * ias and oas, pgcount >= 1, no overlap) and rejected calls change nothing. In `kernel`
 * mode calls behave exactly as io-pgtable-arm.c, warts included.
 */
export class PageTable<C = unknown> {
  private freed = false;
  /** Decodes each call into a request struct it reuses (no allocation per call). */
  private readonly requests: RequestDecoder;
  /** Leaf templates by prot mask (0..0x3f), computed once. */
  private readonly templates: Array<PteTemplate | undefined> = [];
  private readonly template = (prot: number): PteTemplate => (this.templates[prot] ??= protToPte(this.format, this.cfg.quirks, prot));

  /**
   * The engine and its live word arrays: an ECMAScript private field, so that no caller
   * (`pt['engine']`, a spread, a proxy) reaches memory around the access guards.
   */
  readonly #engine: LpaeEngine;

  constructor(
    readonly format: FormatName,
    readonly cfg: EffectiveCfg,
    engine: LpaeEngine,
    readonly mode: Mode,
    private readonly flush: FlushTracker,
  ) {
    this.#engine = engine;
    const g = engine.g;
    const limits = new RequestLimits(cfg.pgsizeBitmap, cfg.ias, cfg.oas, (cfg.quirks & Quirk.ARM_TTBR1) !== 0, mode === 'strict', g.blockSize[g.startLevel]! * g.pgdEntries);
    this.requests = new RequestDecoder(limits, this.template);
  }

  get geometry(): Geometry {
    return this.#engine.g;
  }
  /** Physical address of the PGD. */
  get pgd(): Paddr {
    return this.#engine.pgd;
  }
  get memory(): PhysMemory {
    return this.#engine.cfg.memory;
  }
  get isFreed(): boolean {
    return this.freed;
  }

  /**
   * Tables this page table holds (allocated, and not taken back by a free hook), their
   * allocated bytes, and the gathers holding frees not yet synced ({@link unsyncedGathers}).
   */
  stats(): { liveTables: number; liveBytes: number; unsyncedGathers: number } {
    return { liveTables: this.#engine.liveTables, liveBytes: this.#engine.liveBytes, unsyncedGathers: this.flush.unsynced };
  }

  /**
   * Gathers (the page table's own included) holding table frees that no
   * {@link iotlbSync} has covered yet. Always 0 with synchronous flush ops.
   */
  get unsyncedGathers(): number {
    return this.flush.unsynced;
  }

  /** Does this page table's flush regime defer completion to `iotlbSync` (`tlb.deferred`)? */
  get deferredFlush(): boolean {
    return this.flush.deferred;
  }

  // ---- the guard ------------------------------------------------------------------

  /**
   * Set while an operation runs. An allocator hook or flush callback that calls back into
   * this page table (mapPages from inside alloc, ...) would see, and corrupt, the outer
   * operation's half-done state: it is refused with a typed error instead.
   */
  private busy = false;

  private enter(): void {
    if (this.busy) throw new IoPgtableError('EINVAL', 're-entrant call: an allocator hook or flush callback called back into the page table it serves');
    this.busy = true;
  }

  /**
   * Leave an operation; report the flush callbacks and free hooks that threw during it
   * (after the operation completed).
   */
  private leave(): void {
    this.busy = false;
    // Kept small (V8 inlines it into every operation); the failure report is its own method.
    if (this.#engine.failed) this.reportFailures();
  }

  private reportFailures(): void {
    this.#engine.failed = false;
    const frees = this.#engine.takeFreeFailures();
    const callbacks = this.#engine.takeCallbackFailures();
    if (callbacks !== null) throw new FlushCallbackError(callbacks, frees ?? []);
    if (frees !== null) throw new TableFreeError(frees);
  }

  /** Leave an operation that threw: what it recorded belongs to it, not to the next one. */
  private abandon(): void {
    this.busy = false;
    this.#engine.failed = false;
    this.#engine.takeFreeFailures();
    this.#engine.takeCallbackFailures();
  }

  private alive(): void {
    if (this.freed) throw new IoPgtableError('EINVAL', 'page table used after free()');
  }

  /** Run `op` as one guarded operation. */
  private guarded<T>(op: () => T): T {
    this.alive();
    this.enter();
    let ok = false;
    try {
      const r = op();
      ok = true;
      return r;
    } finally {
      if (ok) this.leave();
      else this.abandon();
    }
  }

  // ---- operations -----------------------------------------------------------------

  /**
   * map_pages: map up to `pgcount` pages of `pgsize` at `iova` -> `paddr`. One call maps
   * at most one table page's worth; loop on `mapped` as iommu_map does.
   */
  mapPages(iova: U64, paddr: U64, pgsize: U64, pgcount: number, prot: number | readonly ProtName[], ctx: MapCtx = BLOCKING_CTX): MapResult {
    this.alive();
    this.enter();
    let ok = false;
    try {
      const r = this.map(iova, paddr, pgsize, pgcount, prot, ctx);
      ok = true;
      return r;
    } finally {
      if (ok) this.leave();
      else this.abandon();
    }
  }

  private map(iova: U64, paddr: U64, pgsize: U64, pgcount: number, prot: number | readonly ProtName[], ctx: MapCtx): MapResult {
    const bad = this.requests.map(iova, paddr, pgsize, pgcount, prot, ctx);
    const req = this.requests.mapReq;
    if (bad !== null) return Object.freeze({ mapped: 0, error: bad.error, message: bad.message });
    const ret = this.#engine.map(req);
    if (ret >= 0) return ret === this.lastMapped.mapped ? this.lastMapped : (this.lastMapped = Object.freeze({ mapped: ret }));
    return this.mapFailed(ret, req);
  }

  /** The result of a map the engine refused (the messages are outlined: map stays small enough to inline). */
  private mapFailed(ret: number, req: MapRequest): MapResult {
    const error: MapErrno = ret === E_EXIST ? 'EEXIST' : ret === E_NOMEM ? 'ENOMEM' : ret === E_INVAL ? 'EINVAL' : 'ERANGE';
    const message =
      error === 'EEXIST'
        ? `iova ${hex(req.iova)} (or part of the run) is already mapped`
        : error === 'ENOMEM'
          ? 'the allocator could not provide a table'
          : `pgsize ${hex(req.pgsize)} cannot be mapped at any level of this table`;
    return Object.freeze({ mapped: 0, error, message });
  }

  /**
   * unmap_pages: unmap up to `pgcount` entries of `pgsize` at `iova`. Unmapping with a
   * block size over a region mapped with smaller pages removes them all (kernel).
   */
  unmapPages(iova: U64, pgsize: U64, pgcount: number, gather: IotlbGather | null = null): UnmapResult {
    this.alive();
    this.enter();
    let ok = false;
    try {
      const r = this.unmap(iova, pgsize, pgcount, gather);
      ok = true;
      return r;
    } finally {
      if (ok) this.leave();
      else this.abandon();
    }
  }

  private unmap(iova: U64, pgsize: U64, pgcount: number, gather: IotlbGather | null): UnmapResult {
    const bad = this.requests.unmap(iova, pgsize, pgcount);
    const req = this.requests.unmapReq;
    if (bad !== null) return Object.freeze({ unmapped: 0, error: bad.error, message: bad.message });
    if (gather !== null && (!(gather instanceof IotlbGather) || (gather._pendingOn !== null && gather._pendingOn !== this.flush))) return badGather(gather);
    req.gather = gather;
    const r = this.#engine.unmap(req);
    req.gather = null;
    if (r > 0) return r === this.lastUnmapped.unmapped ? this.lastUnmapped : (this.lastUnmapped = Object.freeze({ unmapped: r }));
    // UNMAP_ENOENT, or 0: the engine's two refusals.
    if (r === UNMAP_ENOENT) return Object.freeze({ unmapped: 0, error: 'ENOENT', message: `nothing is mapped at iova ${hex(req.iova)}` });
    return Object.freeze({ unmapped: 0, error: 'EINVAL', message: `iova ${hex(req.iova)} lies inside a larger block (partial unmap of a large IOPTE)` });
  }

  /** The last successful results, handed out again for the same size (results are frozen). */
  private lastMapped: MapResult = Object.freeze({ mapped: -1 });
  private lastUnmapped: UnmapResult = Object.freeze({ unmapped: -1 });

  /**
   * iommu_iotlb_sync: run the driver's `tlbSync(gather)`, mark the gather's flush token
   * done, tell the allocator stack (`flushDone(token)`), and reset the gather with a fresh
   * token. Without a gather, syncs the page table's own: the one covering tables freed
   * with no gather (a block mapped over a table, an unmap with a null gather, `free()`).
   * Allowed after `free()`, which may leave frees to sync.
   */
  iotlbSync(gather?: IotlbGather): void {
    this.enter();
    try {
      if (gather !== undefined && !(gather instanceof IotlbGather)) throw new IoPgtableError('EINVAL', 'gather must be an IotlbGather');
      this.flush.sync(gather);
    } finally {
      this.busy = false;
    }
  }

  /**
   * iova_to_phys: the physical address, or 0 when unmapped (ambiguous with PA 0; see
   * lookup). Not range-checked, as in Linux: addresses above ias alias. Throws
   * IoPgtableError (EINVAL) for input that is not an unsigned 64-bit integer.
   */
  iovaToPhys(iova: U64): number {
    // Small on purpose, so that V8 inlines it into the caller's loop: the common case is a
    // live, idle page table and a number below 2^52; everything else takes the slow path.
    if (this.freed || this.busy || typeof iova !== 'number' || !(iova >= 0 && iova < TWO_52) || !Number.isInteger(iova)) return this.iovaToPhysSlow(iova);
    const pa = this.#engine.translate(iova);
    return pa < 0 ? 0 : pa;
  }

  private iovaToPhysSlow(iova: U64): number {
    this.alive();
    // Calls no hook, so it needs no guard of its own; refused only when called from inside one.
    if (this.busy) this.enter();
    const i52 = iovaLow52Checked(iova);
    if (i52 < 0) return 0;
    const pa = this.#engine.translate(i52);
    return pa < 0 ? 0 : pa;
  }

  /** A tagged lookup: the leaf's output address, level and descriptor, or unmapped. */
  lookup(iova: U64): LookupResult {
    return this.guarded(() => {
      const i52 = iovaLow52Checked(iova);
      if (i52 < 0) return { kind: 'unmapped', level: this.geometry.startLevel };
      const { ret, path } = this.#engine.walkPath(i52);
      const last = path[path.length - 1]!;
      if (ret !== 0) return { kind: 'unmapped', level: last.level };
      return { kind: 'mapped', paddr: this.#engine.translate(i52), level: last.level, pte: pteToBigInt(last.lo, last.hi) };
    });
  }

  /** arm_lpae_pgtable_walk: the descriptors on the path to `iova`. */
  pgtableWalk(iova: U64): WalkResult {
    return this.guarded(() => {
      const i52 = iovaLow52Checked(iova);
      if (i52 < 0) return { ret: E_INVAL, ptes: [] };
      const { ret, path } = this.#engine.walkPath(i52);
      return { ret, ptes: Array.from(path, (x) => (x ? pteToBigInt(x.lo, x.hi) : undefined)) };
    });
  }

  /**
   * read_and_clear_dirty (ARM_64_LPAE_S1 only): records writeable-dirty leaves in
   * `[iova, iova + size)`; clears them (sets AP[2]) unless `flags` has NO_CLEAR.
   * Returns 0 or -22 (EINVAL) as the kernel does.
   */
  readAndClearDirty(iova: U64, size: U64, flags: number, dirty: DirtyRecorder): number {
    return this.guarded(() => {
      const iv = toU64(iova);
      const sz = toU64(size);
      if (iv === null || sz === null || sz === 0n) return E_INVAL;
      if (BigInt.asUintN(64, iv + sz - 1n) >> BigInt(this.cfg.ias) !== 0n) return E_INVAL;
      if (!this.#engine.ops.dirtyTracking) return E_INVAL;
      if (typeof flags !== 'number' || typeof dirty?.record !== 'function') return E_INVAL;
      return this.#engine.dirtyWalk(Number(iv), Number(sz), (flags & IOMMU_DIRTY_NO_CLEAR) !== 0, dirty);
    });
  }

  /**
   * free_io_pgtable_ops: tlb_flush_all, then every table freed post-order. With
   * deferred flush ops the tables are freed under `gather`'s token (the page table's own
   * gather when omitted): complete it with `iotlbSync(gather)` as after an unmap.
   */
  free(gather?: IotlbGather): void {
    if (this.freed) return;
    this.enter();
    try {
      if (gather !== undefined && !(gather instanceof IotlbGather)) throw new IoPgtableError('EINVAL', 'gather must be an IotlbGather');
      this.flush.check(gather ?? null);
      this.freed = true;
      // Continues past free hooks that throw; leave() reports them all.
      this.#engine.destroy(gather ?? null);
    } catch (e) {
      this.abandon();
      throw e;
    }
    this.leave();
  }

  /**
   * Snapshot of every live table reachable from the PGD: address -> non-zero entries
   * (index -> descriptor). For dumps and tests; not a hot path. Each table read is a host
   * read: a table the host may not read (secure-share donate mode) faults, as every other
   * host read does; `hw.deviceTables(pt)` is the same snapshot as the IOMMU reads it.
   */
  tables(): Map<Paddr, Map<number, bigint>> {
    if (this.freed) return new Map();
    // Read-only, so allowed from inside a hook (as iovaToPhys is not): dumps and checkers use it.
    return this.#engine.snapshot(true);
  }

  static {
    deviceSnapshot = (pt: PageTable<unknown>) => (pt.freed ? new Map() : pt.#engine.snapshot(false));
  }
}


/** Why unmap refuses `gather`: not an IotlbGather, or one holding another page table's unsynced frees. */
function badGather(gather: unknown): UnmapResult {
  if (!(gather instanceof IotlbGather)) return Object.freeze({ unmapped: 0, error: 'EINVAL', message: 'gather must be an IotlbGather or null' });
  return Object.freeze({ unmapped: 0, error: 'EINVAL', message: 'this gather holds unsynced frees of another page table: call iotlbSync(gather) on that page table first' });
}

/**
 * Low 52 bits of a u64 IOVA input, or -1 for the all-ones address (undefined in the
 * kernel: the walk end `iova + 1` wraps). Throws IoPgtableError for anything that is not
 * an unsigned 64-bit integer.
 */
function iovaLow52Checked(iova: U64): number {
  const big = toU64(iova);
  if (big === null) throw new IoPgtableError('EINVAL', `iova ${describe(iova)} is not an unsigned 64-bit integer`);
  if (big === (1n << 64n) - 1n) return -1;
  return low52(big);
}
