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
import { hex } from '../../addr.js';
import { IoPgtableError, TableFreeError, type TableFreeFailure } from '../../errors.js';
import { Quirk } from '../../constants.js';
import type { FlushTracker } from '../../flush.js';
import { completedToken, type IotlbGather } from '../../gather.js';
import { maxEntries, tableSize, type Geometry } from '../../geometry.js';
import { CHUNK_BYTES, CHUNK_SHIFT, PhysMemory, storeOf, type MemoryStore } from '../../phys/memory.js';
import { TableRegistry } from '../../phys/registry.js';
import type { DmaOps, FlushOps } from '../../types.js';
import type { LpaeFormatOps } from './ops.js';
import {
  PTE_AP_RDONLY,
  PTE_HI_DBM,
  PTE_HI_NSTABLE,
  PTE_HI_SW_SYNC,
  PTE_TYPE_BLOCK,
  PTE_TYPE_MASK,
  PTE_TYPE_TABLE,
  paddrToPteHi,
  paddrToPteLo,
  pteAddrHi,
  pteAddrLo,
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
/** Direct-mapped cache of chunk arrays by chunk number: walks need no Map probe per level. */
const CACHE_SLOTS = 64;

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
  private readonly cacheKeys = new Float64Array(CACHE_SLOTS).fill(-1);
  private readonly cacheChunks: Uint32Array[] = new Array<Uint32Array>(CACHE_SLOTS);
  /** What PhysMemory returns for memory never written: never cached. */
  private readonly absent: Uint32Array;
  /** Scratch request for the unmap a block replacing a table makes. */
  private readonly inner = new UnmapRequest();

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
    if (c !== this.absent) {
      this.cacheKeys[h] = key;
      this.cacheChunks[h] = c;
    }
    return c;
  }

  /** The word array holding `table` for writing (created if it does not exist yet). */
  private write(table: Paddr): Uint32Array {
    const key = Math.floor(table / CHUNK_BYTES);
    const h = key & (CACHE_SLOTS - 1);
    if (this.cacheKeys[h] === key) return this.cacheChunks[h]!;
    const c = this.mem.chunk(table);
    this.cacheKeys[h] = key;
    this.cacheChunks[h] = c;
    return c;
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
    // Materialise the table's chunk and mark its frames written (they will be).
    this.mem.touch(p, allocSize);
    this.liveTables++;
    this.liveBytes += allocSize;
    return p;
  }

  /**
   * The allocation checks. Strict mode makes all of them (allocator-api's
   * checkAllocation); the kernel makes none, so kernel mode only refuses what the model
   * cannot represent: a value that is not a physical address, and a PGD (the one table
   * written at its own address, not at a descriptor's) that is not 8-byte aligned or
   * crosses a 1 MiB storage chunk.
   */
  private verify(p: unknown, allocSize: number, kind: TableKind): void {
    const name = this.cfg.hooks.allocatorName;
    if (this.cfg.checkAllocations) {
      const bad = checkAllocation(p, allocSize, this.probe);
      if (bad !== null) throw new AllocatorFaultError(name, bad.rule, `returned ${bad.detail}`, isPaddr(p) ? p : undefined);
      return;
    }
    if (!isPaddr(p)) throw new AllocatorFaultError(name, 'in-range', `returned ${describeValue(p)}, which is not a physical address`);
    if (kind === 'pgd' && (p % 8 !== 0 || Math.floor(p / CHUNK_BYTES) !== Math.floor((p + allocSize - 1) / CHUNK_BYTES))) {
      throw new AllocatorFaultError(name, 'aligned', `returned ${hex(p)} for the ${allocSize}-byte PGD: a PGD that is not 8-byte aligned or crosses a 1 MiB boundary cannot be modelled`, p);
    }
  }

  /** What checkAllocation reads: made once (no closure per allocation). */
  private readonly probe: AllocationProbe;

  /** Return a table that was never linked in (DMA mapping refused it). */
  private giveBack(p: Paddr, size: number, kind: TableKind, level: number): void {
    try {
      this.cfg.hooks.free(p, size, { kind, level, flush: completedToken() });
    } catch (error) {
      (this.freeFailures ??= []).push({ paddr: p, size, level, error });
    }
  }

  /** __arm_lpae_free_pages: DMA-unmap when non-coherent, then the free hook with the real size. */
  freePages(p: Paddr, size: number, level: number, flush: FlushToken): void {
    if (!this.coherent) this.cfg.dma.unmap(p, size);
    const allocSize = allocSizeFor(size);
    if (this.cfg.checkAllocations) this.cfg.registry.remove(p, allocSize);
    try {
      this.cfg.hooks.free(p, size, { kind: level === this.g.startLevel ? 'pgd' : 'table', level, flush });
    } catch (error) {
      // Go on with the rest of the teardown; the operation reports every failure at its end.
      // The table stays counted as live: the allocator never took it back.
      (this.freeFailures ??= []).push({ paddr: p, size, level, error });
      return;
    }
    this.liveTables--;
    this.liveBytes -= allocSize;
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

  /** Post-order teardown of the table at `level` (children before parent), under `flush`. */
  freeTable(level: number, table: Paddr, flush: FlushToken): void {
    const size = tableSize(this.g, level);
    if (level < 3) {
      const w = this.read(Math.floor(table / CHUNK_BYTES));
      const base = PhysMemory.wordIndex(table);
      const leaf = this.leafType(level);
      for (let s = base, end = base + size / 4; s < end; s += 2) {
        const lo = w[s]!;
        const hi = w[s + 1]!;
        if ((lo | hi) === 0 || (lo & PTE_TYPE_MASK) === leaf) continue;
        this.freeTable(level + 1, pteToPaddr(lo, hi, this.g.granule), flush);
      }
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
    const ilo = r.i52 >>> 0;
    const ihi = (r.i52 / TWO_32) >>> 0;
    let level = g.startLevel;
    let table = this.pgd;
    // A table allocated by this call is known to be empty: no check pass over it.
    let fresh = false;
    for (;;) {
      const idx = this.index(ilo, ihi, level);
      if (r.pgsize === g.blockSize[level]) {
        let n = Math.min(r.pgcount, maxEntries(g, idx));
        if (level === g.startLevel) n = this.clampAtPgd(idx, n, r.strict);
        return this.writeLeaves(r, level, table, idx, n, fresh);
      }
      if (level >= 3) return E_INVAL;
      let w = this.write(table);
      const slot = PhysMemory.wordIndex(table) + 2 * idx;
      let lo = w[slot]!;
      let hi = w[slot + 1]!;
      if ((lo | hi) === 0) {
        // May the slot be written? Asked before allocating: a refused write (a table the
        // host gave away) must not strand a new table that nothing links to.
        this.guardWrite(table, idx, 1);
        const child = this.allocPages(g.granule, r.ctx, 'table', level + 1);
        if (child === null) return E_NOMEM;
        // arm_lpae_install_table: the slot is still empty (operations are serialised).
        lo = (paddrToPteLo(child) | PTE_TYPE_TABLE) >>> 0;
        hi = (paddrToPteHi(child) | this.nsTable) >>> 0;
        w = this.mem.chunk(table + idx * 8); // marks the entry's frame written
        w[slot] = lo;
        w[slot + 1] = hi;
        if (!this.coherent) {
          this.sync(table, idx, 1);
          hi = (hi | PTE_HI_SW_SYNC) >>> 0;
          w[slot + 1] = hi;
        }
        // The kernel walks on through the descriptor, so a table the allocator placed off
        // its granule (kernel mode) is used at the encoded address: declare that one written.
        const used = pteToPaddr(lo, hi, g.granule);
        if (used !== child) this.mem.touch(used, g.granule);
        // Known empty only when the allocation checks proved it zero (kernel mode trusts the allocator, as the kernel does).
        fresh = this.cfg.checkAllocations && used === child;
      } else {
        if (!this.coherent && !(hi & PTE_HI_SW_SYNC)) this.sync(table, idx, 1);
        fresh = false;
      }
      if ((lo & PTE_TYPE_MASK) === this.leafType(level)) return E_EXIST;
      table = pteToPaddr(lo, hi, g.granule);
      level++;
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
   * table is torn down) before it writes any. When the slots are all empty, which one
   * read-only pass proves (and a table allocated by this call needs not even that), the
   * check has nothing to do and the write follows at once.
   */
  private writeLeaves(r: MapRequest, level: number, table: Paddr, idx: number, n: number, fresh: boolean): number {
    const base = PhysMemory.wordIndex(table) + 2 * idx;
    if (!fresh) {
      const w = this.read(Math.floor(table / CHUNK_BYTES));
      let any = 0;
      for (let s = base, end = base + 2 * n; s < end; s++) any |= w[s]!;
      if (any !== 0) {
        const ret = this.clearWay(r, level, table, idx, n);
        if (ret !== E_OK) return ret;
      }
    }
    const bs = this.g.blockSize[level]!;
    this.guardWrite(table, idx, n);
    // Mark the frames these entries live in as written (PhysMemory answers isZero from that).
    this.mem.touch(table + idx * 8, n * 8);
    const w = this.write(table);
    const lo0 = r.tLo | this.leafType(level);
    const tHi = r.tHi;
    let s = base;
    const end = base + 2 * n;
    if (bs < TWO_32) {
      // The output address as two 32-bit halves with a carry: integer ops only.
      // PA[51:48] fold into bits 15:12 (a no-op below 2^48, needed for 52-bit 64K tables).
      // Bits 11..0 are not address bits: masked once (every step is a multiple of 4 KiB).
      let aLo = ((r.paddr >>> 0) & 0xfffff000) >>> 0;
      let aHi = (r.paddr / TWO_32) >>> 0;
      let loBits = lo0 | (((aHi >>> 16) & 0xf) << 12);
      let hiBits = tHi | (aHi & 0xffff);
      for (; s < end; s += 2) {
        w[s] = loBits | aLo;
        w[s + 1] = hiBits;
        aLo += bs;
        if (aLo >= TWO_32) {
          aLo -= TWO_32;
          aHi++;
          loBits = lo0 | (((aHi >>> 16) & 0xf) << 12);
          hiBits = tHi | (aHi & 0xffff);
        }
      }
    } else {
      for (let a = r.paddr; s < end; a += bs, s += 2) {
        w[s] = lo0 | paddrToPteLo(a);
        w[s + 1] = tHi | paddrToPteHi(a);
      }
    }
    if (!this.coherent) this.sync(table, idx, n);
    return n * bs;
  }

  /**
   * The slots are not all empty. Strict mode first refuses anything mapped below them (so a
   * rejected map tears nothing down); then the kernel's check: a leaf is EEXIST, a table is
   * unmapped (one block at this level, NULL gather) and freed.
   */
  private clearWay(r: MapRequest, level: number, table: Paddr, idx: number, n: number): number {
    if (r.strict && this.anyMapped(level, table, idx, n)) return E_EXIST;
    const g = this.g;
    const bs = g.blockSize[level]!;
    const w = this.read(Math.floor(table / CHUNK_BYTES));
    const base = PhysMemory.wordIndex(table) + 2 * idx;
    const leaf = this.leafType(level);
    for (let i = 0; i < n; i++) {
      const lo = w[base + 2 * i]!;
      if ((lo & PTE_TYPE_MASK) === leaf) return E_EXIST;
      if ((lo & PTE_TYPE_MASK) === PTE_TYPE_TABLE) {
        const u = this.inner;
        u.iova = r.iova + i * bs;
        u.i52 = r.i52 + i * bs;
        u.pgsize = bs;
        u.pgcount = 1;
        u.gather = null;
        u.strict = false;
        if (this.unmapAt(u, level, table) !== bs) return E_INVAL;
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
    const w = this.read(Math.floor(table / CHUNK_BYTES));
    const base = PhysMemory.wordIndex(table) + 2 * idx;
    const leaf = this.leafType(level);
    for (let s = base, end = base + 2 * n; s < end; s += 2) {
      const lo = w[s]!;
      const hi = w[s + 1]!;
      if ((lo | hi) === 0) continue;
      if ((lo & PTE_TYPE_MASK) === leaf) return true;
      if (level < 3 && (lo & PTE_TYPE_MASK) === PTE_TYPE_TABLE) {
        if (this.anyMapped(level + 1, pteToPaddr(lo, hi, this.g.granule), 0, this.g.ptesPerTable)) return true;
      }
    }
    return false;
  }

  // ---- unmap ----------------------------------------------------------------------

  /** arm_lpae_unmap_pages after validation: from the PGD. */
  unmap(r: UnmapRequest): number {
    return this.unmapAt(r, this.g.startLevel, this.pgd);
  }

  /**
   * __arm_lpae_unmap: bytes unmapped, or UNMAP_ENOENT when the first entry on the path is
   * empty. Sub-tables under removed entries are freed right after tlb_flush_walk.
   */
  private unmapAt(r: UnmapRequest, level: number, table: Paddr): number {
    const g = this.g;
    const cookie = this.cfg.cookie;
    const ilo = r.i52 >>> 0;
    const ihi = (r.i52 / TWO_32) >>> 0;
    for (;;) {
      if (level === 4) return 0;
      const idx = this.index(ilo, ihi, level);
      const base = PhysMemory.wordIndex(table) + 2 * idx;
      // A live table's chunk array never moves (allocPages materialises it), so one lookup serves the loop.
      const w = this.read(Math.floor(table / CHUNK_BYTES));
      const lo0 = w[base]!;
      const hi0 = w[base + 1]!;
      if ((lo0 | hi0) === 0) return UNMAP_ENOENT;
      const bs = g.blockSize[level]!;
      const leaf = this.leafType(level);
      if (r.pgsize === bs) {
        let n = Math.min(r.pgcount, maxEntries(g, idx));
        if (level === g.startLevel) n = this.clampAtPgd(idx, n, r.strict);
        let i = 0;
        let flush: FlushToken | null = null;
        for (let s = base; i < n; i++, s += 2) {
          const lo = w[s]!;
          const hi = w[s + 1]!;
          if ((lo | hi) === 0) break;
          if ((lo & PTE_TYPE_MASK) !== leaf) {
            this.clear(table, idx + i, 1);
            this.cfg.tlb.tlbFlushWalk?.(r.iova + i * bs, bs, g.granule, cookie);
            flush ??= this.cfg.flush.tokenFor(r.gather);
            this.freeTable(level + 1, pteToPaddr(lo, hi, g.granule), flush);
          }
        }
        this.clear(table, idx, i);
        const gather = r.gather;
        if (gather !== null && !gather.queued) {
          const addPage = this.cfg.tlb.tlbAddPage;
          if (addPage !== undefined) for (let j = 0; j < i; j++) addPage(gather, r.iova + j * bs, bs, cookie);
        }
        return i * bs;
      }
      if ((lo0 & PTE_TYPE_MASK) === leaf) return 0; // "Unmap of a partial large IOPTE is not allowed"
      table = pteToPaddr(lo0, hi0, g.granule);
      level++;
    }
  }

  private clear(table: Paddr, idx: number, n: number): void {
    if (n === 0) return;
    this.guardWrite(table, idx, n);
    // Zeroes keep a frame's zero state true: no need to mark it written.
    const w = this.write(table);
    const start = PhysMemory.wordIndex(table) + 2 * idx;
    w.fill(0, start, start + 2 * n);
    if (!this.coherent) this.sync(table, idx, n);
  }

  // ---- walks ----------------------------------------------------------------------

  /** iova_to_phys: the output address for `i52` (low 52 bits of the IOVA), or -1 when an invalid entry is met. */
  translate(i52: number): number {
    const big = this.big;
    // Split once: indices, offsets and the OR below are 32-bit integer operations.
    const ihi = (i52 / TWO_32) >>> 0;
    const ilo = i52 >>> 0;
    let level = this.g.startLevel;
    // The current table as a chunk number and a word index: no float arithmetic per level.
    let key = Math.floor(this.pgd / CHUNK_BYTES);
    let base = PhysMemory.wordIndex(this.pgd);
    for (;;) {
      const slot = base + 2 * this.index(ilo, ihi, level);
      const w = this.read(key);
      const lo = w[slot]!;
      const hi = w[slot + 1]!;
      if ((lo & PTE_TYPE_MASK) === this.leafType(level)) {
        // iopte_to_paddr | (iova & (block - 1)): the kernel ORs the offset in, so unaligned
        // output-address bits stay visible (FORMAT.md note 9).
        const shift = this.shifts[level]!;
        let offLo: number;
        let offHi = 0;
        if (shift >= 32) {
          offLo = ilo;
          offHi = ihi & ((1 << (shift - 32)) - 1);
        } else {
          offLo = ilo & ((2 ** shift - 1) | 0);
        }
        return (pteAddrHi(lo, hi, big) | offHi) * TWO_32 + ((pteAddrLo(lo, big) | offLo) >>> 0);
      }
      if (level === 3 || (lo & PTE_TYPE_MASK) !== PTE_TYPE_TABLE) return -1;
      const tLo = pteAddrLo(lo, big);
      key = pteAddrHi(lo, hi, big) * CHUNKS_PER_4G + (tLo >>> CHUNK_SHIFT);
      base = (tLo & (CHUNK_BYTES - 1)) >>> 2;
      level++;
    }
  }

  /**
   * arm_lpae_pgtable_walk: every descriptor on the path, by absolute level, and whether it
   * ended in a leaf (0) or an invalid entry (-22).
   */
  walkPath(i52: number): { ret: number; path: Array<Leaf | undefined> } {
    const ilo = i52 >>> 0;
    const ihi = (i52 / TWO_32) >>> 0;
    const path: Array<Leaf | undefined> = [];
    let level = this.g.startLevel;
    let table = this.pgd;
    for (;;) {
      const w = this.read(Math.floor(table / CHUNK_BYTES));
      const slot = PhysMemory.wordIndex(table) + 2 * this.index(ilo, ihi, level);
      const lo = w[slot]!;
      const hi = w[slot + 1]!;
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
    const base = PhysMemory.wordIndex(table);
    const bs = g.blockSize[level]!;
    for (let idx = this.index(at.addr >>> 0, (at.addr / TWO_32) >>> 0, level); idx < maxE && at.addr < at.end; idx++) {
      const w = this.read(Math.floor(table / CHUNK_BYTES));
      const lo = w[base + 2 * idx]!;
      const hi = w[base + 2 * idx + 1]!;
      if (this.isLeafLo(lo, level)) {
        if ((hi & PTE_HI_DBM) !== 0 && (lo & PTE_AP_RDONLY) === 0) {
          rec.record(at.addr, bs);
          if (!noClear) {
            this.guardWrite(table, idx, 1);
            this.mem.chunk(table + idx * 8)[base + 2 * idx] = lo | PTE_AP_RDONLY;
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

  /** Teardown: tlb_flush_all, then free every table post-order, PGD last, under `gather`'s flush. */
  destroy(gather: IotlbGather | null): void {
    this.cfg.tlb.tlbFlushAll?.(this.cfg.cookie);
    this.freeTable(this.g.startLevel, this.pgd, this.cfg.flush.tokenFor(gather));
  }
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
