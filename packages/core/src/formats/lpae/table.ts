/**
 * The LPAE engine: map, unmap, walk and teardown over descriptors in simulated memory,
 * following io-pgtable-arm.c (v6.19 cycle) step by step. Requests come in validated and
 * converted (see request.ts); every operation returns its result. Hot loops read and
 * write 32-bit words with integer arithmetic only: no BigInt, no float per entry, no
 * allocation per call.
 */
import {
  AccountingError,
  AllocatorFaultError,
  AllocatorMisuseError,
  allocSizeFor,
  checkAllocation,
  describeValue,
  isPaddr,
  type AllocCtx,
  type AllocationProbe,
  type FlushToken,
  type FreeCtx,
  type MapCtx,
  type Paddr,
  type TableKind,
} from '@io-pgtable/allocator-api';
import { hex, hi32 } from '../../addr.js';
import { IoPgtableError, TableFreeError, type FlushCallbackFailure, type TableFreeFailure } from '../../errors.js';
import { Quirk } from '../../constants.js';
import type { FlushTracker } from '../../flush.js';
import { completedToken, type IotlbGather } from '../../gather.js';
import { maxEntries, tableSize, type Geometry } from '../../geometry.js';
import { CHUNK_BYTES, CHUNK_SHIFT, PhysMemory, WRITE_LOG, chunkOf, storeOf, type MemoryStore } from '../../phys/memory.js';
import { TableRegistry } from '../../phys/registry.js';
import type { DmaOps, FlushOps } from '../../types.js';
import type { LpaeFormatOps } from './ops.js';
import { MAX_WALK_SLOTS, WalkCache, walkSlotsFor } from './walk-cache.js';
import {
  PTE_AP_RDONLY,
  PTE_HI_DBM,
  PTE_HI_NSTABLE,
  PTE_HI_ADDR_MASK,
  PTE_HI_SW_SYNC,
  PTE_LO_ADDR_MASK,
  PTE_TYPE_BLOCK,
  PTE_TYPE_MASK,
  PTE_TYPE_TABLE,
  paddrToPteHi,
  paddrToPteLo,
  pteAddrHi,
  pteAddrLo,
  pteToBigInt,
  pteToPaddr,
} from './pte.js';

/** Kernel return codes used inside the engine. */
export const E_OK = 0;
export const E_INVAL = -22;
export const E_EXIST = -17;
export const E_NOMEM = -12;
/** `-ENOENT` returned through `size_t` by `__arm_lpae_unmap`. */
export const UNMAP_ENOENT = -2;

const TWO_32 = 0x1_0000_0000;
/** Chunk numbers per 2^32 bytes: the chunk of a (hi, lo) address is hi * this + (lo >>> CHUNK_SHIFT). */
const CHUNKS_PER_4G = TWO_32 / CHUNK_BYTES;
/**
 * Direct-mapped cache of chunk arrays by chunk number: walks need no Map probe per level.
 * 256 slots of 64 KiB cover 16 MiB of tables (a fully mapped 4 GiB of 4 KiB pages).
 */
const CACHE_SLOTS = 256;
/**
 * The tag that slot `h` of the chunk cache holds when it is empty or holds a chunk at or
 * above 2^48 (whose halves do not pack into 32 bits): the packed tag of a chunk whose
 * `kLo & 0xff` is not `h`, so no lookup that reaches slot `h` can match it.
 */
function noTag(h: number): number {
  return (h + 1) & (CACHE_SLOTS - 1);
}

export interface EngineHooks {
  alloc(size: number, ctx: AllocCtx): Paddr | null;
  free(paddr: Paddr, size: number, ctx: FreeCtx): void;
  /** Name used when blaming the allocator. */
  allocatorName: string;
}

export interface EngineConfig {
  ops: LpaeFormatOps;
  quirks: number;
  coherentWalk: boolean;
  geometry: Geometry;
  memory: PhysMemory;
  hooks: EngineHooks;
  tlb: FlushOps<unknown>;
  dma: DmaOps;
  cookie: unknown;
  /**
   * Verify every allocation (zeroed, aligned, in range, not overlapping): strict-mode
   * checks, none of which the kernel makes.
   */
  checkAllocations: boolean;
  /** Tables are shared across page tables that share memory, to catch cross-table overlap. */
  registry: TableRegistry;
  /** Which token covers each free, and the page table's unsynced gathers. */
  flush: FlushTracker;
}

/** A decoded map_pages call (filled by the request decoder; one per page table, reused). */
export class MapRequest {
  /** IOVA in signed-64 number form (for events) and its low 52 bits (for indexing). */
  iova = 0;
  i52 = 0;
  paddr = 0;
  pgsize = 0;
  pgcount = 0;
  /** Leaf attribute template (arm_lpae_prot_to_pte), both halves. */
  tLo = 0;
  tHi = 0;
  ctx: MapCtx = { mayBlock: true };
  strict = false;
}

/** A decoded unmap_pages call, or an internal unmap (a block replacing a table). */
export class UnmapRequest {
  iova = 0;
  i52 = 0;
  pgsize = 0;
  pgcount = 0;
  gather: IotlbGather | null = null;
  strict = false;
}

/**
 * Where a map's run of leaves goes, as the descent (or a walk-cache hit) found it: the
 * table's level and address (int32 halves: a double would be boxed), the first slot's index
 * and its word in the chunk array `w`, the number of slots, and whether the table is known
 * empty. One per engine, filled before each writeLeaves.
 */
class LeafRun {
  level = 0;
  tableHi = 0;
  tableLo = 0;
  idx = 0;
  n = 0;
  fresh = false;
  w: Uint32Array = new Uint32Array(0);
  base = 0;
}

/** Records a dirty range for read_and_clear_dirty (iommu_dirty_bitmap_record). */
export interface DirtyRecorder {
  record(iova: number, size: number): void;
}

/** A leaf found by a walk: its level and descriptor halves. */
export interface Leaf {
  readonly level: number;
  readonly lo: number;
  readonly hi: number;
}

export class LpaeEngine {
  readonly g: Geometry;
  readonly ops: LpaeFormatOps;
  readonly coherent: boolean;
  /** The memory's store: live word arrays, guards composed (internal to core). */
  readonly mem: MemoryStore;
  pgd: Paddr = -1;
  /** Tables this page table holds (allocated, not successfully freed) and their allocated bytes. */
  liveTables = 0;
  liveBytes = 0;
  private readonly nsTable: number;
  private readonly pageType: number;
  private readonly big: boolean;
  private readonly shifts: readonly number[];
  private readonly masks: number[];
  /** The cache's chunk numbers, and the same as packed int32 tags (see words). */
  private readonly cacheKeys = new Float64Array(CACHE_SLOTS).fill(-1);
  private readonly cacheTag = Int32Array.from({ length: CACHE_SLOTS }, (_, h) => noTag(h));
  private readonly cacheChunks: Uint32Array[] = new Array<Uint32Array>(CACHE_SLOTS);
  /** Per level, the block-offset bits of an IOVA as int32 masks of its low and high halves. */
  private readonly offLo = new Int32Array(4);
  private readonly offHi = new Int32Array(4);
  /** What PhysMemory returns for memory never written: never cached. */
  private readonly absent: Uint32Array;
  /** See walk-cache.ts: made on first use, when this page table may use one at all. */
  private wc: WalkCache | null = null;
  private readonly wcAllowed: boolean;
  /**
   * The 4 KiB frames of this page table's tables above the last level (frame -> tables in
   * it): the only memory whose change makes the walk cache stale (it records where each
   * last-level table is, which only the descriptors above it decide).
   */
  private readonly upperFrames = new Map<number, number>();
  /** Shift of the IOVA bits above a last-level table (the level-2 index shift). */
  private readonly tagShift: number;
  /** The last level's index: shift and mask (int32 fields, for the walk cache's hits). */
  private readonly leafShift: number;
  private readonly leafMask: number;
  /** Scratch request for the unmap a block replacing a table makes. */
  private readonly inner = new UnmapRequest();
  private readonly run = new LeafRun();

  constructor(readonly cfg: EngineConfig) {
    this.g = cfg.geometry;
    this.ops = cfg.ops;
    this.coherent = cfg.coherentWalk;
    this.mem = storeOf(cfg.memory);
    this.nsTable = cfg.quirks & Quirk.ARM_NS ? PTE_HI_NSTABLE : 0;
    this.pageType = cfg.ops.pageType;
    this.big = this.g.granule === 0x10000;
    this.shifts = this.g.levelShift;
    this.masks = this.g.indexCount.map((c) => c - 1);
    this.absent = this.mem.peekKey(-1);
    this.wcAllowed = this.coherent && this.g.startLevel < 3;
    this.tagShift = this.shifts[2]!;
    this.leafShift = this.shifts[3]!;
    this.leafMask = this.g.ptesPerTable - 1;
    for (let l = 0; l < 4; l++) {
      const shift = this.shifts[l]!;
      this.offLo[l] = shift >= 32 ? -1 : ~(-1 << shift);
      this.offHi[l] = shift > 32 ? ~(-1 << (shift - 32)) : 0;
    }
    this.probe = {
      limit: 2 ** this.g.oas,
      overlaps: (a, n) => cfg.registry.overlaps(a, n),
      isZero: (a, n) => cfg.memory.isZero(a, n),
    };
  }

  // ---- storage --------------------------------------------------------------------

  /** The word array of chunk `key` for reading (a live table's chunk always exists). */
  private read(key: number): Uint32Array {
    const h = key & (CACHE_SLOTS - 1);
    if (this.cacheKeys[h] === key) return this.cacheChunks[h]!;
    const c = this.mem.peekKey(key);
    if (c !== this.absent) this.cacheSet(h, key, c);
    return c;
  }

  private cacheSet(h: number, key: number, c: Uint32Array): void {
    this.cacheKeys[h] = key;
    const kHi = Math.floor(key / CHUNKS_PER_4G);
    this.cacheTag[h] = kHi < 0x1_0000 ? (kHi << 16) | (key % CHUNKS_PER_4G) : noTag(h);
    this.cacheChunks[h] = c;
  }

  /** The word array holding `paddr` for writing (created if it does not exist yet). */
  private write(paddr: Paddr): Uint32Array {
    const key = chunkOf(paddr);
    const h = key & (CACHE_SLOTS - 1);
    if (this.cacheKeys[h] === key) return this.cacheChunks[h]!;
    const c = this.mem.chunk(paddr);
    this.cacheSet(h, key, c);
    return c;
  }

  /**
   * A table's descriptor reads are CPU reads of its memory: with access control installed
   * (secure-share), a table the host may not read faults here as it would in the kernel.
   */
  private guardRead(table: Paddr, idx: number, count: number): void {
    this.mem.guard?.check('read', table + idx * 8, count * 8, 'pgtable');
  }

  /** Index of the IOVA (as 32-bit halves) at `level`: ARM_LPAE_LVL_IDX. */
  private index(ilo: number, ihi: number, level: number): number {
    const shift = this.shifts[level]!;
    return (shift >= 32 ? ihi >>> (shift - 32) : (ilo >>> shift) | (ihi << (32 - shift))) & this.masks[level]!;
  }

  private leafType(level: number): number {
    return level === 3 ? this.pageType : PTE_TYPE_BLOCK;
  }

  isLeafLo(lo: number, level: number): boolean {
    return (lo & PTE_TYPE_MASK) === this.leafType(level);
  }

  // ---- table memory ---------------------------------------------------------------

  /**
   * __arm_lpae_alloc_pages: allocate max(size, 64), check it, DMA-map it when
   * non-coherent. The allocator sees the caller's context plus what the table is.
   */
  allocPages(size: number, ctx: MapCtx, kind: TableKind, level: number): Paddr | null {
    const allocSize = allocSizeFor(size);
    let p: Paddr | null;
    try {
      p = this.cfg.hooks.alloc(allocSize, { ...ctx, kind, level });
    } catch (e) {
      throw asTypedError(e, this.cfg.hooks.allocatorName, `alloc(${allocSize})`);
    }
    if (p === null || p === undefined) return null;
    this.verify(p, allocSize, kind);
    if (!this.coherent) {
      const dma = this.cfg.dma.map(p, size);
      if (!(dma >= 0)) {
        this.giveBack(p, size, kind, level);
        return null;
      }
      if (dma !== p) {
        this.cfg.dma.unmap(dma, size);
        this.giveBack(p, size, kind, level);
        return null;
      }
    }
    if (this.cfg.checkAllocations) this.cfg.registry.add(p, allocSize);
    // Zero for certain (strict mode checked it; otherwise no frame written since it was
    // last zeroed): a map into it needs no check pass, in either mode.
    this.allocatedZero = this.cfg.checkAllocations || this.mem.knownZero(p, allocSize);
    // Materialise the table's chunk and mark its frames written (they will be).
    this.mem.touch(p, allocSize);
    this.liveTables++;
    this.liveBytes += allocSize;
    // A table's own frames are known at its install (map()); the PGD's here.
    if (kind === 'pgd' && level < 3) this.upperAdded(p, allocSize, 1);
    return p;
  }

  /**
   * The allocation checks. Strict mode makes all of them (allocator-api's
   * checkAllocation); the kernel makes none, so kernel mode only refuses what the model
   * cannot represent: a value that is not a physical address, and a PGD (the one table
   * written at its own address, not at a descriptor's) that is not 8-byte aligned, or
   * whose granule pages do not each lie in one storage chunk.
   */
  private verify(p: unknown, allocSize: number, kind: TableKind): void {
    const name = this.cfg.hooks.allocatorName;
    if (this.cfg.checkAllocations) {
      const bad = checkAllocation(p, allocSize, this.probe);
      if (bad !== null) throw new AllocatorFaultError(name, bad.rule, `returned ${bad.detail}`, isPaddr(p) ? p : undefined);
      return;
    }
    if (!isPaddr(p)) throw new AllocatorFaultError(name, 'in-range', `returned ${describeValue(p)}, which is not a physical address`);
    if (kind === 'pgd' && !pgdModellable(p, allocSize, this.g.granule)) {
      throw new AllocatorFaultError(
        name,
        'aligned',
        `returned ${hex(p)} for the ${allocSize}-byte PGD: a PGD that is not 8-byte aligned, or crosses a ${CHUNK_BYTES / 1024} KiB storage boundary inside one of its granule pages, cannot be modelled`,
        p,
      );
    }
  }

  /** Whether the table allocPages returned last is known to be all zero. */
  private allocatedZero = false;

  /** What checkAllocation reads: made once (no closure per allocation). */
  private readonly probe: AllocationProbe;

  /** Return a table that was never linked in (DMA mapping refused it). */
  private giveBack(p: Paddr, size: number, kind: TableKind, level: number): void {
    try {
      this.cfg.hooks.free(p, size, { kind, level, flush: completedToken() });
    } catch (error) {
      (this.freeFailures ??= []).push({ paddr: p, size, level, error });
      this.failed = true;
    }
  }

  /** __arm_lpae_free_pages: DMA-unmap when non-coherent, then the free hook with the real size. */
  freePages(p: Paddr, size: number, level: number, flush: FlushToken): void {
    // A freed table is unlinked: the walk cache may point at it (or below it).
    if (this.wc !== null) this.wc.gen = -1;
    if (!this.coherent) this.cfg.dma.unmap(p, size);
    const allocSize = allocSizeFor(size);
    if (level < 3) this.upperAdded(p, allocSize, -1);
    if (this.cfg.checkAllocations) this.cfg.registry.remove(p, allocSize);
    try {
      this.cfg.hooks.free(p, size, { kind: level === this.g.startLevel ? 'pgd' : 'table', level, flush });
    } catch (error) {
      // Go on with the rest of the teardown; the operation reports every failure at its end.
      // The table stays counted as live: the allocator never took it back.
      (this.freeFailures ??= []).push({ paddr: p, size, level, error });
      this.failed = true;
      return;
    }
    this.liveTables--;
    this.liveBytes -= allocSize;
  }

  /** tlb_flush_walk; a throwing callback is recorded and the unmap goes on (see FlushCallbackError). */
  private flushWalk(iova: number, size: number): void {
    const f = this.cfg.tlb.tlbFlushWalk;
    if (f === undefined) return;
    try {
      f(iova, size, this.g.granule, this.cfg.cookie);
    } catch (error) {
      this.callbackFailed('tlbFlushWalk', error);
    }
  }

  /** Set when a free hook or a flush callback threw: one test per operation when none did. */
  failed = false;

  /** Flush callbacks that threw since the last call (null when none). */
  private callbackFailures: FlushCallbackFailure[] | null = null;
  private callbackFailed(callback: FlushCallbackFailure['callback'], error: unknown): void {
    (this.callbackFailures ??= []).push({ callback, error });
    this.failed = true;
  }
  takeCallbackFailures(): FlushCallbackFailure[] | null {
    const f = this.callbackFailures;
    this.callbackFailures = null;
    return f;
  }

  /** Free hooks that threw since the last call (null when none). */
  private freeFailures: TableFreeFailure[] | null = null;
  takeFreeFailures(): TableFreeFailure[] | null {
    const f = this.freeFailures;
    this.freeFailures = null;
    return f;
  }

  private sync(table: Paddr, idx: number, count: number): void {
    this.cfg.dma.sync(table + idx * 8, count * 8);
  }

  private guardWrite(table: Paddr, idx: number, count: number): void {
    this.mem.guard?.check('write', table + idx * 8, count * 8, 'pgtable');
  }

  /**
   * Visit the non-empty descriptors in the first `size` bytes of `table` in slot order, a
   * run of slots inside one storage chunk at a time (only a concatenated PGD spans chunks).
   */
  private forEachEntry(table: Paddr, size: number, visit: (idx: number, lo: number, hi: number) => void): void {
    for (let off = 0; off < size; ) {
      const at = table + off;
      const run = Math.min(size - off, CHUNK_BYTES - (at % CHUNK_BYTES));
      const w = this.read(chunkOf(at));
      const base = PhysMemory.wordIndex(at);
      const first = off / 8;
      for (let i = 0, n = run / 8; i < n; i++) {
        const lo = w[base + 2 * i]! | 0;
        const hi = w[base + 2 * i + 1]! | 0;
        if ((lo | hi) !== 0) visit(first + i, lo, hi);
      }
      off += run;
    }
  }

  /**
   * Post-order teardown of the table at `level` (children before parent), under `flush`.
   * As __arm_lpae_free_pgtable, only the table's own size is scanned: slots a kernel-mode
   * run wrote past a small PGD (inside its 64-byte allocation) are not, and what they
   * point to leaks as in the kernel. Teardown reads are not access-checked: the model's
   * teardown must hand every table back, whatever the host may read.
   */
  freeTable(level: number, table: Paddr, flush: FlushToken): void {
    const size = tableSize(this.g, level);
    if (level < 3) {
      const leaf = this.leafType(level);
      this.forEachEntry(table, size, (_i, lo, hi) => {
        if ((lo & PTE_TYPE_MASK) !== leaf) this.freeTable(level + 1, pteToPaddr(lo, hi, this.g.granule), flush);
      });
    }
    this.freePages(table, size, level, flush);
  }

  // ---- map ------------------------------------------------------------------------

  /**
   * __arm_lpae_map from the PGD: bytes mapped (the kernel's `*mapped` increment; the
   * kernel maps at most one table page's worth per call), or a negative errno, in which
   * case nothing was mapped.
   */
  map(r: MapRequest): number {
    const g = this.g;
    const big = this.big;
    // The IOVA as two int32 halves (ToInt32 is exact for the low word of any safe integer).
    const ilo = r.i52 | 0;
    const ihi = hi32(r.i52);
    // Pages (not blocks) may start at the last-level table the walk cache knows.
    const wc = r.pgsize === g.granule ? this.walkCache() : null;
    if (wc !== null) {
      const h = wc.find(this.leafTag(ilo, ihi), ihi >>> this.tagShift);
      if (h >= 0) {
        // The last level is never the start level here (walk-cache.ts), and no guard is installed.
        const i3 = (ilo >>> this.leafShift) & this.leafMask;
        const run = this.run;
        run.level = 3;
        run.tableHi = wc.kHi[h]!;
        run.tableLo = wc.tableLo(h);
        run.idx = i3;
        run.n = Math.min(r.pgcount, this.leafMask + 1 - i3);
        run.fresh = false;
        run.w = wc.chunk[h]!;
        run.base = wc.base[h]! + 2 * i3;
        return this.writeLeaves(r, run);
      }
    }
    let level = g.startLevel;
    let table = this.pgd;
    let idx = this.index(ilo, ihi, level);
    // The slot's chunk as int32 halves and its word in the chunk (see translate).
    const pgdAt = table + idx * 8;
    let kHi = hi32(pgdAt);
    let kLo = (pgdAt | 0) >>> CHUNK_SHIFT;
    let slot = PhysMemory.wordIndex(pgdAt);
    // A table allocated by this call is known to be empty: no check pass over it.
    let fresh = false;
    for (;;) {
      const w = this.words(kHi, kLo);
      if (r.pgsize === g.blockSize[level]) {
        let n = Math.min(r.pgcount, maxEntries(g, idx));
        if (level === g.startLevel) n = this.clampAtPgd(idx, n, r.strict);
        const run = this.run;
        run.level = level;
        run.tableHi = hi32(table);
        run.tableLo = table | 0;
        run.idx = idx;
        run.n = n;
        run.fresh = fresh;
        run.w = w;
        run.base = slot;
        return this.writeLeaves(r, run);
      }
      if (level >= 3) return E_INVAL;
      if (!fresh && this.mem.guard !== null) this.guardRead(table, idx, 1);
      // `| 0`: descriptor halves as int32 (a uint32 above 2^31 would be a double in V8).
      let lo = w[slot]! | 0;
      let hi = w[slot + 1]! | 0;
      if ((lo | hi) === 0) {
        // May the slot be written? Asked before allocating: a refused write (a table the
        // host gave away) must not strand a new table that nothing links to.
        this.guardWrite(table, idx, 1);
        const child = this.allocPages(g.granule, r.ctx, 'table', level + 1);
        if (child === null) return E_NOMEM;
        // arm_lpae_install_table: the slot is still empty (operations are serialised).
        lo = paddrToPteLo(child) | PTE_TYPE_TABLE;
        hi = paddrToPteHi(child) | this.nsTable;
        w[slot] = lo;
        w[slot + 1] = hi;
        if (!this.coherent) {
          this.sync(table, idx, 1);
          hi |= PTE_HI_SW_SYNC;
          w[slot + 1] = hi;
        }
        // The kernel walks on through the descriptor, so a table the allocator placed off
        // its granule (kernel mode) is used at the encoded address: declare that one written.
        const used = pteToPaddr(lo, hi, g.granule);
        if (used !== child) this.mem.touch(used, g.granule);
        if (level + 1 < 3) this.upperAdded(used, g.granule, 1);
        // Known empty when it is provably zero (strict mode's checks, or memory untouched since
        // zeroed): kernel mode trusts no allocator, so a table merely claimed zero is checked.
        fresh = this.allocatedZero && used === child;
      } else {
        if (!this.coherent && !(hi & PTE_HI_SW_SYNC)) this.sync(table, idx, 1);
        fresh = false;
      }
      if ((lo & PTE_TYPE_MASK) === this.leafType(level)) return E_EXIST;
      level++;
      const tLo = pteAddrLo(lo, big);
      kHi = pteAddrHi(lo, hi, big);
      kLo = tLo >>> CHUNK_SHIFT;
      table = kHi * TWO_32 + (tLo >>> 0);
      idx = this.index(ilo, ihi, level);
      const base = (tLo & (CHUNK_BYTES - 1)) >>> 2;
      if (level === 3 && wc !== null) this.rememberLeafTable(wc, ilo, ihi, kHi, kLo, base);
      slot = base + 2 * idx;
    }
  }

  /**
   * The kernel bounds a batch by the granule-sized table page, not by the PGD, so a run
   * past the end of a small PGD writes beyond it. Strict mode clamps to the PGD. Kernel
   * mode reproduces writes that stay inside the PGD's allocation (max(size, 64) bytes, as
   * the kernel's own memory would hold them) and refuses to write past it, which in the
   * kernel corrupts memory (the reference oracle reports it as a fatal out-of-bounds write).
   */
  private clampAtPgd(idx: number, n: number, strict: boolean): number {
    const g = this.g;
    if (strict) return Math.min(n, g.pgdEntries - idx);
    const slots = allocSizeFor(g.pgdSize) / 8;
    if (idx + n > slots) {
      throw new IoPgtableError('EINVAL', `out-of-bounds: entries ${idx}..${idx + n - 1} lie past the ${slots}-slot PGD allocation (the kernel would write outside it)`);
    }
    return n;
  }

  /**
   * arm_lpae_init_pte for n slots: the kernel checks every slot (a leaf is EEXIST, a
   * table is torn down) before it writes any. Slots are nearly always empty, so the check
   * and the write are one pass: the first non-empty slot stops it, the slots written so
   * far (all empty before) are cleared again, and the kernel's check runs on the run as
   * it was. A table allocated by this call needs no check at all. With access control
   * installed the order of reads and writes is the kernel's: check pass, then write.
   */
  private writeLeaves(r: MapRequest, run: LeafRun): number {
    const { level, idx, n, fresh, base } = run;
    const table = run.tableHi * TWO_32 + (run.tableLo >>> 0);
    // The slot's chunk as the descent found it (a live table's chunk always exists).
    const w = run.w !== this.absent ? run.w : this.write(table + idx * 8);
    if (this.mem.guard !== null) {
      if (!fresh) {
        this.guardRead(table, idx, n);
        let any = 0;
        for (let s = base, end = base + 2 * n; s < end; s++) any |= w[s]!;
        if (any !== 0) {
          const ret = this.clearWay(r, level, table, idx, n);
          if (ret !== E_OK) return ret;
        }
      }
      this.guardWrite(table, idx, n);
      this.fill(r, level, w, base, n, false);
    } else {
      const done = this.fill(r, level, w, base, n, !fresh);
      if (done < n) {
        w.fill(0, base, base + 2 * done);
        const ret = this.clearWay(r, level, table, idx, n);
        if (ret !== E_OK) return ret;
        this.fill(r, level, w, base, n, false);
      }
    }
    if (!this.coherent) this.sync(table, idx, n);
    return n * this.g.blockSize[level]!;
  }

  /**
   * Write n leaves from word `base` of `w`: __arm_lpae_init_pte's loop. With `check`,
   * stops at the first slot that is not empty and returns how many were written.
   * Integer arithmetic only: the output address is kept as two int32 halves, and the
   * carry out of the low half is found once per run (entries until it wraps), not per entry.
   */
  private fill(r: MapRequest, level: number, w: Uint32Array, base: number, n: number, check: boolean): number {
    const bs = this.g.blockSize[level]!;
    const lo0 = r.tLo | this.leafType(level);
    const tHi = r.tHi;
    // Bits 11..0 are not address bits: masked once (every step is a multiple of 4 KiB).
    let aLo = r.paddr & PTE_LO_ADDR_MASK;
    let aHi = hi32(r.paddr);
    // Blocks of 4 GiB and up step the high half only. `| 0`: the geometry's sizes are
    // doubles (it holds sizes up to 2^48), and the loop must add int32s.
    const stepLo = bs < TWO_32 ? bs | 0 : 0;
    const stepHi = bs < TWO_32 ? 0 : hi32(bs);
    let s = base;
    let i = 0;
    while (i < n) {
      // PA[51:48] fold into bits 15:12 (a no-op below 2^48, needed for 52-bit 64K tables).
      const loBits = lo0 | (((aHi >>> 16) & 0xf) << 12);
      const hiBits = tHi | (aHi & PTE_HI_ADDR_MASK);
      // Entries before the low half wraps (all of them when it cannot).
      let k = n - i;
      if (stepLo === 0) k = 1;
      // (Compared as room left, a double from the first call: an int32 sum would overflow.)
      else if (k * stepLo > TWO_32 - (aLo >>> 0)) k = Math.ceil((TWO_32 - (aLo >>> 0)) / stepLo);
      const end = s + 2 * k;
      if (check) {
        for (; s < end; s += 2) {
          if ((w[s]! | w[s + 1]!) !== 0) return i + (s - (end - 2 * k)) / 2;
          w[s] = loBits | aLo;
          w[s + 1] = hiBits;
          aLo = (aLo + stepLo) | 0;
        }
      } else {
        for (; s < end; s += 2) {
          w[s] = loBits | aLo;
          w[s + 1] = hiBits;
          aLo = (aLo + stepLo) | 0;
        }
      }
      i += k;
      aHi += stepLo !== 0 ? 1 : stepHi;
    }
    return n;
  }

  /**
   * The slots are not all empty. Strict mode first refuses anything mapped below them (so a
   * rejected map tears nothing down); then the kernel's check: a leaf is EEXIST, a table is
   * unmapped (one block at this level, NULL gather) and freed.
   */
  private clearWay(r: MapRequest, level: number, table: Paddr, idx: number, n: number): number {
    if (r.strict && this.anyMapped(level, table, idx, n)) return E_EXIST;
    const bs = this.g.blockSize[level]!;
    const at = table + idx * 8;
    const w = this.read(chunkOf(at));
    const base = PhysMemory.wordIndex(at);
    const leaf = this.leafType(level);
    for (let i = 0; i < n; i++) {
      const lo = w[base + 2 * i]! | 0;
      if ((lo & PTE_TYPE_MASK) === leaf) return E_EXIST;
      if ((lo & PTE_TYPE_MASK) === PTE_TYPE_TABLE) {
        const u = this.inner;
        u.iova = r.iova + i * bs;
        u.i52 = r.i52 + i * bs;
        u.pgsize = bs;
        u.pgcount = 1;
        u.gather = null;
        u.strict = false;
        if (this.unmapAt(u, level, hi32(table), table | 0) !== bs) return E_INVAL;
      }
    }
    return E_OK;
  }

  /**
   * Strict mode: is anything mapped in these n slots, directly or in a table below them?
   * (On the way down a table is only allocated where the path was empty, and everything
   * below a new table is empty, so a strict EEXIST can never follow a fresh allocation.)
   */
  private anyMapped(level: number, table: Paddr, idx: number, n: number): boolean {
    const at = table + idx * 8;
    const w = this.read(chunkOf(at));
    const base = PhysMemory.wordIndex(at);
    const leaf = this.leafType(level);
    for (let s = base, end = base + 2 * n; s < end; s += 2) {
      const lo = w[s]! | 0;
      const hi = w[s + 1]! | 0;
      if ((lo | hi) === 0) continue;
      if ((lo & PTE_TYPE_MASK) === leaf) return true;
      if (level < 3 && (lo & PTE_TYPE_MASK) === PTE_TYPE_TABLE) {
        const child = pteToPaddr(lo, hi, this.g.granule);
        this.guardRead(child, 0, this.g.ptesPerTable);
        if (this.anyMapped(level + 1, child, 0, this.g.ptesPerTable)) return true;
      }
    }
    return false;
  }

  // ---- unmap ----------------------------------------------------------------------

  /** arm_lpae_unmap_pages after validation: from the PGD. */
  unmap(r: UnmapRequest): number {
    const wc = r.pgsize === this.g.granule ? this.walkCache() : null;
    if (wc !== null) {
      const ihi = hi32(r.i52);
      const h = wc.find(this.leafTag(r.i52 | 0, ihi), ihi >>> this.tagShift);
      if (h >= 0) return this.unmapLeaves(r, wc, h);
    }
    return this.unmapAt(r, this.g.startLevel, hi32(this.pgd), this.pgd | 0);
  }

  /**
   * __arm_lpae_unmap: bytes unmapped, or UNMAP_ENOENT when the first entry on the path is
   * empty. Sub-tables under removed entries are freed right after tlb_flush_walk.
   */
  private unmapAt(r: UnmapRequest, level: number, tHi: number, tLo: number): number {
    // The table's address comes as int32 halves: a double argument would be boxed per call.
    let table = tHi * TWO_32 + (tLo >>> 0);
    const g = this.g;
    const big = this.big;
    const ilo = r.i52 | 0;
    const ihi = hi32(r.i52);
    let idx = this.index(ilo, ihi, level);
    const at = table + idx * 8;
    let kHi = hi32(at);
    let kLo = (at | 0) >>> CHUNK_SHIFT;
    let slot = PhysMemory.wordIndex(at);
    for (;;) {
      // A live table's chunk array never moves (allocPages materialises it), so one lookup serves the loop.
      const w = this.words(kHi, kLo);
      const bs = g.blockSize[level]!;
      const leaf = this.leafType(level);
      if (r.pgsize === bs) {
        let n = Math.min(r.pgcount, maxEntries(g, idx));
        if (level === g.startLevel) n = this.clampAtPgd(idx, n, r.strict);
        if (this.mem.guard !== null) this.guardRead(table, idx, n);
        let i = 0;
        let flush: FlushToken | null = null;
        for (let s = slot; i < n; i++, s += 2) {
          const lo = w[s]! | 0;
          const hi = w[s + 1]! | 0;
          if ((lo | hi) === 0) break;
          if ((lo & PTE_TYPE_MASK) !== leaf) {
            this.clear(table, idx + i, 1);
            this.flushWalk(r.iova + i * bs, bs);
            flush ??= this.cfg.flush.tokenFor(r.gather);
            this.freeTable(level + 1, pteToPaddr(lo, hi, g.granule), flush);
          }
        }
        if (i === 0) return UNMAP_ENOENT;
        // __arm_lpae_clear_pte over the run (zeroes keep a frame's zero state: not marked written).
        if (this.mem.guard !== null) this.guardWrite(table, idx, i);
        w.fill(0, slot, slot + 2 * i);
        if (!this.coherent) this.sync(table, idx, i);
        this.addPages(r, i, bs);
        return i * bs;
      }
      if (this.mem.guard !== null) this.guardRead(table, idx, 1);
      const lo0 = w[slot]! | 0;
      const hi0 = w[slot + 1]! | 0;
      if ((lo0 | hi0) === 0) return UNMAP_ENOENT;
      if ((lo0 & PTE_TYPE_MASK) === leaf) return 0; // "Unmap of a partial large IOPTE is not allowed"
      if (level === 3) return 0;
      level++;
      const tLo = pteAddrLo(lo0, big);
      kHi = pteAddrHi(lo0, hi0, big);
      kLo = tLo >>> CHUNK_SHIFT;
      table = kHi * TWO_32 + (tLo >>> 0);
      idx = this.index(ilo, ihi, level);
      slot = ((tLo & (CHUNK_BYTES - 1)) >>> 2) + 2 * idx;
    }
  }

  /**
   * unmapAt for granule pages in a last-level table the walk cache found (no guard, coherent
   * walk: see walk-cache.ts). The same reads and writes without the walk's generality; a slot
   * that holds anything but a page (what the kernel takes for a table) hands the call to
   * unmapAt before anything was written.
   */
  private unmapLeaves(r: UnmapRequest, wc: WalkCache, h: number): number {
    const idx = ((r.i52 | 0) >>> this.leafShift) & this.leafMask;
    const n = Math.min(r.pgcount, this.leafMask + 1 - idx);
    const w = wc.chunk[h]!;
    const slot = wc.base[h]! + 2 * idx;
    const page = this.pageType;
    let i = 0;
    for (let s = slot; i < n; i++, s += 2) {
      const lo = w[s]! | 0;
      if ((lo | w[s + 1]!) === 0) break;
      if ((lo & PTE_TYPE_MASK) !== page) return this.unmapAt(r, 3, wc.kHi[h]!, wc.tableLo(h));
    }
    if (i === 0) return UNMAP_ENOENT;
    w.fill(0, slot, slot + 2 * i);
    const size = this.g.granule;
    this.addPages(r, i, size);
    return i * size;
  }

  /** io_pgtable_tlb_add_page for each of the `count` entries of `size` an unmap cleared (unless the gather is queued). */
  private addPages(r: UnmapRequest, count: number, size: number): void {
    const gather = r.gather;
    if (gather === null || gather.queued) return;
    const addPage = this.cfg.tlb.tlbAddPage;
    if (addPage === undefined) return;
    const cookie = this.cfg.cookie;
    for (let j = 0, iova = r.iova; j < count; j++, iova += size) {
      try {
        addPage(gather, iova, size, cookie);
      } catch (error) {
        this.callbackFailed('tlbAddPage', error);
      }
    }
  }

  private clear(table: Paddr, idx: number, n: number): void {
    this.guardWrite(table, idx, n);
    // Zeroes keep a frame's zero state true: no need to mark it written.
    const at = table + idx * 8;
    const start = PhysMemory.wordIndex(at);
    this.write(at).fill(0, start, start + 2 * n);
    if (!this.coherent) this.sync(table, idx, n);
  }

  // ---- walks ----------------------------------------------------------------------

  /**
   * The low half of the walk cache's tag of the IOVA (ilo, ihi): its bits above the
   * last-level table (the high half is `ihi >>> tagShift`). Tiny on purpose: V8 always
   * inlines it, where a call taking `ilo` (any int32, not always a small integer) would box it.
   */
  private leafTag(ilo: number, ihi: number): number {
    return (ilo >>> this.tagShift) | (ihi << (32 - this.tagShift));
  }

  /**
   * Remember a last-level table a walk reached: not one in memory never written (a hit writes
   * through its chunk), nor one reached through a table this page table did not install (a
   * descriptor written through memory may point anywhere, and the cache only hears of writes
   * to the tables it knows: see upperFrames).
   */
  private rememberLeafTable(wc: WalkCache, ilo: number, ihi: number, kHi: number, kLo: number, base: number): void {
    const chunk = this.words(kHi, kLo);
    if (chunk === this.absent || !this.pathKnown(ilo, ihi)) return;
    wc.put(this.leafTag(ilo, ihi), ihi >>> this.tagShift, kHi, kLo, base, chunk);
  }

  /** The walk cache if it may be used now (see walk-cache.ts), emptied if memory was written since it was filled. */
  private walkCache(): WalkCache | null {
    const m = this.mem;
    if (!this.wcAllowed || m.guard !== null || m.tables !== 1) return null;
    const wc = this.wc;
    // The common case in few bytecodes (V8 inlines it into every map, unmap and lookup).
    if (wc !== null && wc.gen === m.gen && (this.liveTables <= wc.slots || wc.slots >= MAX_WALK_SLOTS)) return wc;
    return this.renewWalkCache();
  }

  /**
   * Make the walk cache (sized to the tree: a slot per live table, rounded up to a power of
   * two), or bring it up to date: kept when the few writes since it was filled (MemoryStore's
   * log) all missed the tables above the last level, emptied otherwise.
   */
  private renewWalkCache(): WalkCache {
    const m = this.mem;
    let wc = this.wc;
    if (wc === null || (this.liveTables > wc.slots && wc.slots < MAX_WALK_SLOTS)) wc = this.wc = new WalkCache(walkSlotsFor(this.liveTables));
    if (wc.gen !== m.gen) {
      if (wc.gen >= 0 && m.gen - wc.gen <= WRITE_LOG && !this.upperWritten(wc.gen, m.gen)) wc.gen = m.gen;
      else wc.clear(m.gen);
    }
    return wc;
  }

  /** Did one of the logged writes from gen `from` to `to` touch a frame of a table above the last level? */
  private upperWritten(from: number, to: number): boolean {
    const m = this.mem;
    const upper = this.upperFrames;
    for (let g = from; g < to; g++) {
      const i = g % WRITE_LOG;
      const f0 = Math.floor(m.logAt[i]! / 0x1000);
      const f1 = Math.ceil((m.logAt[i]! + m.logSize[i]!) / 0x1000);
      if (f1 - f0 <= upper.size) {
        for (let f = f0; f < f1; f++) if (upper.has(f)) return true;
      } else {
        for (const f of upper.keys()) if (f >= f0 && f < f1) return true;
      }
    }
    return false;
  }

  /** Does the walk to the IOVA (ilo, ihi) read only tables above the last level that are in upperFrames? */
  private pathKnown(ilo: number, ihi: number): boolean {
    let table = this.pgd;
    for (let level = this.g.startLevel; level < 3; level++) {
      const at = table + 8 * this.index(ilo, ihi, level);
      if (!this.upperFrames.has(Math.floor(at / 0x1000))) return false;
      const w = this.read(chunkOf(at));
      const slot = PhysMemory.wordIndex(at);
      const lo = w[slot]! | 0;
      if ((lo & PTE_TYPE_MASK) !== PTE_TYPE_TABLE) return false;
      table = pteToPaddr(lo, w[slot + 1]! | 0, this.g.granule);
    }
    return true;
  }

  /** Count (`by` 1) or forget (`by` -1) a table above the last level at [p, p + size). */
  private upperAdded(p: Paddr, size: number, by: number): void {
    for (let f = Math.floor(p / 0x1000), end = Math.ceil((p + size) / 0x1000); f < end; f++) {
      const n = (this.upperFrames.get(f) ?? 0) + by;
      if (n > 0) this.upperFrames.set(f, n);
      else this.upperFrames.delete(f);
    }
  }


  /**
   * iova_to_phys: the output address for `i52` (low 52 bits of the IOVA), or -1 when an
   * invalid entry is met. Kept small on purpose: V8 inlines it (and PageTable.iovaToPhys)
   * into the caller's loop only under its bytecode-size limit, and inlined, the 64-bit
   * result needs no heap number per call.
   */
  translate(i52: number): number {
    const ihi = hi32(i52);
    const ilo = i52 | 0;
    let level = this.g.startLevel;
    // A table's chunk as the address's bits 51..32 (`kHi`) and 31..16 (`kLo`), both int32:
    // the cache compares them without float arithmetic. The PGD slot's chunk comes from
    // its address (a concatenated PGD spans chunks); below it, a table is granule-aligned
    // in one chunk, found from the descriptor's halves.
    let kHi: number;
    let kLo: number;
    let slot: number;
    const wc = this.walkCache();
    const h = wc === null ? -1 : wc.find(this.leafTag(ilo, ihi), ihi >>> this.tagShift);
    if (h >= 0) {
      level = 3;
      kHi = wc!.kHi[h]!;
      kLo = wc!.kLo[h]!;
      slot = wc!.base[h]! + 2 * ((ilo >>> this.leafShift) & this.leafMask);
    } else {
      const pgdAt = this.pgd + 8 * this.index(ilo, ihi, level);
      kHi = hi32(pgdAt);
      kLo = (pgdAt | 0) >>> CHUNK_SHIFT;
      slot = PhysMemory.wordIndex(pgdAt);
    }
    for (;;) {
      if (this.mem.guard !== null) this.checkWalkRead(kHi, kLo, slot);
      const w = this.words(kHi, kLo);
      const lo = w[slot]! | 0;
      const hi = w[slot + 1]! | 0;
      if ((lo & PTE_TYPE_MASK) === this.leafType(level)) {
        // iopte_to_paddr | (iova & (block - 1)): the kernel ORs the offset in, so unaligned
        // output-address bits stay visible (FORMAT.md note 9).
        return (pteAddrHi(lo, hi, this.big) | (ihi & this.offHi[level]!)) * TWO_32 + ((pteAddrLo(lo, this.big) | (ilo & this.offLo[level]!)) >>> 0);
      }
      if (level === 3 || (lo & PTE_TYPE_MASK) !== PTE_TYPE_TABLE) return -1;
      level++;
      const tLo = pteAddrLo(lo, this.big);
      kHi = pteAddrHi(lo, hi, this.big);
      kLo = tLo >>> CHUNK_SHIFT;
      const base = (tLo & (CHUNK_BYTES - 1)) >>> 2;
      if (level === 3 && wc !== null) this.rememberLeafTable(wc, ilo, ihi, kHi, kLo, base);
      slot = base + 2 * this.index(ilo, ihi, level);
    }
  }

  /** translate's read of the slot (kHi, kLo, slot) under access control. */
  private checkWalkRead(kHi: number, kLo: number, slot: number): void {
    this.mem.guard?.check('read', kHi * TWO_32 + kLo * CHUNK_BYTES + slot * 4, 8, 'pgtable');
  }

  /**
   * The word array of the chunk whose address bits 51..32 are `kHi` and 31..16 `kLo` (see
   * translate). One int32 compare: the tag is both halves packed, exact for tables below
   * 2^48 (every other chunk is tagged so that it never hits, and is found by readSlow).
   */
  private words(kHi: number, kLo: number): Uint32Array {
    const h = kLo & (CACHE_SLOTS - 1);
    return this.cacheTag[h] === ((kHi << 16) | kLo) ? this.cacheChunks[h]! : this.readSlow(kHi, kLo);
  }

  /** The chunk (kHi, kLo) of a walk on a cache miss (see translate), cached when it exists. */
  private readSlow(kHi: number, kLo: number): Uint32Array {
    const c = this.mem.peekKey(kHi * CHUNKS_PER_4G + kLo);
    if (c !== this.absent) {
      this.cacheSet(kLo & (CACHE_SLOTS - 1), kHi * CHUNKS_PER_4G + kLo, c);
    }
    return c;
  }

  /**
   * arm_lpae_pgtable_walk: every descriptor on the path, by absolute level, and whether it
   * ended in a leaf (0) or an invalid entry (-22).
   */
  walkPath(i52: number): { ret: number; path: Array<Leaf | undefined> } {
    const ilo = i52 | 0;
    const ihi = hi32(i52);
    const path: Array<Leaf | undefined> = [];
    let level = this.g.startLevel;
    let table = this.pgd;
    for (;;) {
      const idx = this.index(ilo, ihi, level);
      const at = table + idx * 8;
      this.guardRead(table, idx, 1);
      const w = this.read(chunkOf(at));
      const slot = PhysMemory.wordIndex(at);
      const lo = w[slot]! | 0;
      const hi = w[slot + 1]! | 0;
      path[level] = { level, lo, hi };
      if (this.isLeafLo(lo, level)) return { ret: E_OK, path };
      if (level === 3 || (lo & PTE_TYPE_MASK) !== PTE_TYPE_TABLE) return { ret: E_INVAL, path };
      table = pteToPaddr(lo, hi, this.g.granule);
      level++;
    }
  }

  /**
   * read_and_clear_dirty's walk over [iova, iova + size): records writeable-dirty leaves
   * (DBM set, AP[2] clear) and, unless `noClear`, makes them writeable-clean by setting AP[2].
   */
  dirtyWalk(iova: number, size: number, noClear: boolean, rec: DirtyRecorder): number {
    const cursor = { addr: iova, end: iova + size };
    return this.dirtyLevel(this.g.startLevel, this.pgd, noClear, rec, cursor);
  }

  private dirtyLevel(level: number, table: Paddr, noClear: boolean, rec: DirtyRecorder, at: { addr: number; end: number }): number {
    const g = this.g;
    const maxE = level === g.startLevel ? g.pgdEntries : g.ptesPerTable;
    const bs = g.blockSize[level]!;
    for (let idx = this.index(at.addr | 0, hi32(at.addr), level); idx < maxE && at.addr < at.end; idx++) {
      const p = table + idx * 8;
      this.guardRead(table, idx, 1);
      const w = this.read(chunkOf(p));
      const slot = PhysMemory.wordIndex(p);
      const lo = w[slot]! | 0;
      const hi = w[slot + 1]! | 0;
      if (this.isLeafLo(lo, level)) {
        if ((hi & PTE_HI_DBM) !== 0 && (lo & PTE_AP_RDONLY) === 0) {
          rec.record(at.addr, bs);
          if (!noClear) {
            this.guardWrite(table, idx, 1);
            this.write(p)[slot] = lo | PTE_AP_RDONLY;
          }
        }
        at.addr += bs;
        continue;
      }
      if (level === 3 || (lo & PTE_TYPE_MASK) !== PTE_TYPE_TABLE) return E_INVAL;
      const ret = this.dirtyLevel(level + 1, pteToPaddr(lo, hi, g.granule), noClear, rec, at);
      if (ret !== E_OK) return ret;
    }
    return E_OK;
  }

  /**
   * Every table reachable from the PGD, in address order: its non-empty slots (index ->
   * descriptor as 64-bit value). `asHost`: each table read is a host read, access-checked
   * (pt.tables()); otherwise the device's view (hw.deviceTables: the IOMMU walks tables the
   * host may not read, as device accesses are the VM's).
   */
  snapshot(asHost: boolean): Map<Paddr, Map<number, bigint>> {
    const out = new Map<Paddr, Map<number, bigint>>();
    const visit = (level: number, table: Paddr): void => {
      const entries = new Map<number, bigint>();
      out.set(table, entries);
      // The PGD's whole allocation: a kernel-mode run may have written past pgdSize.
      const size = level === this.g.startLevel ? allocSizeFor(this.g.pgdSize) : this.g.granule;
      if (asHost) this.guardRead(table, 0, size / 8);
      this.forEachEntry(table, size, (i, lo, hi) => {
        entries.set(i, pteToBigInt(lo, hi));
        if (level < 3 && !this.isLeafLo(lo, level)) visit(level + 1, pteToPaddr(lo, hi, this.g.granule));
      });
    };
    visit(this.g.startLevel, this.pgd);
    return new Map([...out.entries()].sort((a, b) => a[0] - b[0]));
  }

  /** Teardown: tlb_flush_all, then free every table post-order, PGD last, under `gather`'s flush. */
  destroy(gather: IotlbGather | null): void {
    this.mem.tables--;
    try {
      this.cfg.tlb.tlbFlushAll?.(this.cfg.cookie);
    } catch (error) {
      this.callbackFailed('tlbFlushAll', error);
    }
    this.freeTable(this.g.startLevel, this.pgd, this.cfg.flush.tokenFor(gather));
  }
}

/**
 * Can the model hold a PGD at `p`? 8-byte aligned, and every granule page of it (the
 * most one map or unmap call writes) inside one storage chunk: true of a PGD inside one
 * chunk, and of a granule-aligned one of any size (chunks are a multiple of every granule).
 */
function pgdModellable(p: Paddr, allocSize: number, granule: number): boolean {
  if (p % 8 !== 0) return false;
  if (chunkOf(p) === chunkOf(p + allocSize - 1)) return true;
  return p % granule === 0;
}

/**
 * An error thrown by an allocator hook, as the caller sees it: the project's typed errors
 * (the contract's, the core's own such as a refused re-entrant call, the IOMMU model's
 * findings: every one says `[iopgt] [source]` first) pass through; anything else becomes
 * an AllocatorFaultError (`no-throw`) naming the allocator, with the original as `cause`.
 */
function asTypedError(e: unknown, allocator: string, call: string): Error {
  if (e instanceof AllocatorFaultError || e instanceof AllocatorMisuseError || e instanceof AccountingError || e instanceof IoPgtableError || e instanceof TableFreeError) return e;
  if (e instanceof Error && e.message.startsWith('[iopgt] [')) return e;
  const why = e instanceof Error ? e.message : describeValue(e);
  const err = new AllocatorFaultError(allocator, 'no-throw', `${call} threw instead of returning null: ${why.length > 200 ? why.slice(0, 200) + '...' : why}`);
  Object.defineProperty(err, 'cause', { value: e, configurable: true, writable: true });
  return err;
}
