/**
 * The LPAE engine: map, unmap, walk and teardown over descriptors in simulated memory,
 * following io-pgtable-arm.c (v6.19 cycle) step by step. Addresses come in already
 * validated and converted: `iova` in signed-64 number form (for events), `i52` its low
 * 52 bits (for indexing). Hot loops read and write 32-bit words; no BigInt, no objects.
 */
import { AllocatorFaultError, checkAllocation, describeValue, isPaddr, type AllocCtx, type FlushToken, type FreeCtx, type MapCtx, type Paddr, type TableKind } from '@io-pgtable/allocator-api';
import { hex, low52 } from '../../addr.js';
import { completedToken } from '../../gather.js';
import { IoPgtableError } from '../../errors.js';
import type { FormatName } from '../../constants.js';
import { Quirk } from '../../constants.js';
import type { FlushTracker } from '../../flush.js';
import type { IotlbGather } from '../../gather.js';
import { levelIndex, maxEntries, tableSize, type Geometry } from '../../geometry.js';
import { CHUNK_BYTES, CHUNK_SHIFT, PhysMemory, storeOf, type MemoryStore } from '../../phys/memory.js';
import { TableRegistry } from '../../phys/registry.js';
import type { DmaOps, FlushOps } from '../../types.js';
import {
  PTE_AP_RDONLY,
  PTE_HI_DBM,
  PTE_HI_NSTABLE,
  PTE_HI_SW_SYNC,
  PTE_TYPE_BLOCK,
  PTE_TYPE_MASK,
  PTE_TYPE_PAGE,
  PTE_TYPE_TABLE,
  paddrToPteHi,
  paddrToPteLo,
  pteToPaddr,
} from './pte.js';

/** Kernel return codes used inside the engine. */
export const E_OK = 0;
export const E_INVAL = -22;
export const E_RANGE = -34;
export const E_EXIST = -17;
export const E_NOMEM = -12;
/** `-ENOENT` returned through `size_t` by `__arm_lpae_unmap`. */
export const UNMAP_ENOENT = -2;

export interface EngineHooks {
  alloc(size: number, ctx: AllocCtx): Paddr | null;
  free(paddr: Paddr, size: number, ctx: FreeCtx): void;
  /** Name used when blaming the allocator. */
  allocatorName: string;
}

export interface EngineConfig {
  fmt: FormatName;
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
  /** Which token covers each free, and the page table's unsynced gathers. */
  flush: FlushTracker;
  /** Tables are shared across page tables that share memory, to catch cross-table overlap. */
  registry: TableRegistry;
}

/** Records a dirty range for read_and_clear_dirty (iommu_dirty_bitmap_record). */
export interface DirtyRecorder {
  record(iova: number, size: number): void;
}

export class LpaeEngine {
  readonly g: Geometry;
  readonly mali: boolean;
  readonly coherent: boolean;
  /** The memory's store: live word arrays, guards composed (internal to core). */
  readonly mem: MemoryStore;
  pgd: Paddr = -1;
  liveTables = 0;
  liveBytes = 0;
  /** Bytes mapped by the last `map` (the kernel's `*mapped` accumulator). */
  mapped = 0;
  private readonly nsTable: number;

  constructor(readonly cfg: EngineConfig) {
    this.g = cfg.geometry;
    this.mali = cfg.fmt === 'ARM_MALI_LPAE';
    this.coherent = cfg.coherentWalk;
    this.mem = storeOf(cfg.memory);
    this.nsTable = cfg.quirks & Quirk.ARM_NS ? PTE_HI_NSTABLE : 0;
  }

  // ---- table memory -------------------------------------------------------------

  /**
   * __arm_lpae_alloc_pages: allocate max(size, 64), check it, DMA-map it when
   * non-coherent. The allocator sees the caller's context plus what the table is.
   */
  allocPages(size: number, ctx: MapCtx, kind: TableKind, level: number): Paddr | null {
    const allocSize = size < 64 ? 64 : size;
    const p = this.cfg.hooks.alloc(allocSize, { ...ctx, kind, level });
    if (p === null || p === undefined) return null;
    this.verify(p, allocSize, kind);
    if (!this.coherent) {
      const dma = this.cfg.dma.map(p, size);
      if (!(dma >= 0)) {
        this.cfg.hooks.free(p, size, { kind, level, flush: completedToken() });
        return null;
      }
      if (dma !== p) {
        this.cfg.dma.unmap(dma, size);
        this.cfg.hooks.free(p, size, { kind, level, flush: completedToken() });
        return null;
      }
    }
    if (this.cfg.checkAllocations) this.cfg.registry.add(p, allocSize);
    // Materialise the table's chunk (peek() then sees the live array) and mark its frames written.
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
      const bad = checkAllocation(p, allocSize, { limit: 2 ** this.g.oas, overlaps: (a, n) => this.cfg.registry.overlaps(a, n), isZero: (a, n) => this.mem.isZero(a, n) });
      if (bad !== null) throw new AllocatorFaultError(name, bad.rule, `returned ${bad.detail}`, isPaddr(p) ? p : undefined);
      return;
    }
    if (!isPaddr(p)) throw new AllocatorFaultError(name, 'in-range', `returned ${describeValue(p)}, which is not a physical address`);
    if (kind === 'pgd' && (p % 8 !== 0 || Math.floor(p / CHUNK_BYTES) !== Math.floor((p + allocSize - 1) / CHUNK_BYTES))) {
      throw new AllocatorFaultError(name, 'aligned', `returned ${hex(p)} for the ${allocSize}-byte PGD: a PGD that is not 8-byte aligned or crosses a 1 MiB boundary cannot be modelled`, p);
    }
  }

  /** __arm_lpae_free_pages: DMA-unmap when non-coherent, then the free hook with the real size. */
  freePages(p: Paddr, size: number, level: number, flush: FlushToken): void {
    if (!this.coherent) this.cfg.dma.unmap(p, size);
    const allocSize = size < 64 ? 64 : size;
    if (this.cfg.checkAllocations) this.cfg.registry.remove(p, allocSize);
    this.liveTables--;
    this.liveBytes -= allocSize;
    this.cfg.hooks.free(p, size, { kind: level === this.g.startLevel ? 'pgd' : 'table', level, flush });
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
      const w = this.mem.peek(table);
      const base = PhysMemory.wordIndex(table);
      const entries = size / 8;
      for (let i = 0; i < entries; i++) {
        const lo = w[base + 2 * i]!;
        const hi = w[base + 2 * i + 1]!;
        if ((lo === 0 && hi === 0) || this.isLeafLo(lo, level)) continue;
        this.freeTable(level + 1, pteToPaddr(lo, hi, this.g.granule), flush);
      }
    }
    this.freePages(table, size, level, flush);
  }

  isLeafLo(lo: number, level: number): boolean {
    if (level === 3 && !this.mali) return (lo & PTE_TYPE_MASK) === PTE_TYPE_PAGE;
    return (lo & PTE_TYPE_MASK) === PTE_TYPE_BLOCK;
  }

  // ---- map ----------------------------------------------------------------------

  /**
   * __arm_lpae_map from the PGD. Returns 0 or a negative errno; adds to `this.mapped`.
   * Leaf attributes come pre-computed as a template (arm_lpae_prot_to_pte).
   */
  map(iova: number, i52: number, pa: number, pgsize: number, pgcount: number, tLo: number, tHi: number, ctx: MapCtx, strict: boolean): number {
    const g = this.g;
    const mem = this.mem;
    let level = g.startLevel;
    let table = this.pgd;
    for (;;) {
      const idx = levelIndex(g, i52, level);
      const bs = g.blockSize[level]!;
      if (pgsize === bs) {
        let n = Math.min(pgcount, maxEntries(g, idx));
        if (level === g.startLevel) n = this.clampAtPgd(idx, n, strict);
        if (strict && this.anyMapped(level, table, idx, n)) return E_EXIST;
        return this.initPtes(iova, pa, level, table, idx, n, tLo, tHi);
      }
      if (level >= 3) return E_INVAL;
      const w = mem.chunk(table);
      const slot = PhysMemory.wordIndex(table) + 2 * idx;
      let lo = w[slot]!;
      let hi = w[slot + 1]!;
      if (lo === 0 && hi === 0) {
        // May the slot be written? Asked before allocating: a refused write (a table the
        // host gave away) must not strand a new table that nothing links to.
        this.guardWrite(table, idx, 1);
        const child = this.allocPages(g.granule, ctx, 'table', level + 1);
        if (child === null) return E_NOMEM;
        // arm_lpae_install_table: the slot is still empty (operations are serialised).
        lo = (paddrToPteLo(child) | PTE_TYPE_TABLE) >>> 0;
        hi = (paddrToPteHi(child) | this.nsTable) >>> 0;
        const w2 = mem.chunk(table);
        w2[slot] = lo;
        w2[slot + 1] = hi;
        if (!this.coherent) {
          this.sync(table, idx, 1);
          hi = (hi | PTE_HI_SW_SYNC) >>> 0;
          w2[slot + 1] = hi;
        }
        // The kernel walks on through the descriptor, so a table the allocator placed off
        // its granule (kernel mode) is used at the encoded address: declare that one written.
        const used = pteToPaddr(lo, hi, g.granule);
        if (used !== child) mem.touch(used, g.granule);
      } else if (!this.coherent && !(hi & PTE_HI_SW_SYNC)) {
        this.sync(table, idx, 1);
      }
      if (this.isLeafLo(lo, level)) return E_EXIST;
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
    const slots = Math.max(g.pgdSize, 64) / 8;
    if (idx + n > slots) {
      throw new IoPgtableError('EINVAL', `out-of-bounds: entries ${idx}..${idx + n - 1} lie past the ${slots}-slot PGD allocation (the kernel would write outside it)`);
    }
    return n;
  }

  /**
   * Strict mode: is anything mapped in these n slots, directly or in a table below them?
   * Checked before the kernel's first pass, so a rejected map tears nothing down. (On the
   * way down, a table is only allocated where the path was empty, and everything below a
   * new table is empty, so a strict EEXIST can never follow a fresh allocation.)
   */
  private anyMapped(level: number, table: Paddr, idx: number, n: number): boolean {
    const w = this.mem.peek(table);
    const base = PhysMemory.wordIndex(table) + 2 * idx;
    for (let i = 0; i < 2 * n; i += 2) {
      const lo = w[base + i]!;
      const hi = w[base + i + 1]!;
      if (lo === 0 && hi === 0) continue;
      if (this.isLeafLo(lo, level)) return true;
      if (level < 3 && (lo & PTE_TYPE_MASK) === PTE_TYPE_TABLE) {
        if (this.anyMapped(level + 1, pteToPaddr(lo, hi, this.g.granule), 0, this.g.ptesPerTable)) return true;
      }
    }
    return false;
  }

  /** arm_lpae_init_pte: check all n slots first, tear down tables in the way, then write. */
  private initPtes(iova: number, pa: number, level: number, table: Paddr, idx: number, n: number, tLo: number, tHi: number): number {
    const g = this.g;
    const bs = g.blockSize[level]!;
    const base = PhysMemory.wordIndex(table);
    const w0 = this.mem.peek(table);
    for (let i = 0; i < n; i++) {
      const lo = w0[base + 2 * (idx + i)]!;
      if (this.isLeafLo(lo, level)) return E_EXIST;
      if ((lo & PTE_TYPE_MASK) === PTE_TYPE_TABLE) {
        // Replace a table by a block: unmap exactly one block at this level, NULL gather.
        const iv = iova + i * bs;
        if (this.unmapAt(iv, low52(iv), bs, 1, level, table, null) !== bs) return E_INVAL;
      }
    }
    const type = level === 3 && !this.mali ? PTE_TYPE_PAGE : PTE_TYPE_BLOCK;
    const lo0 = (tLo | type) >>> 0;
    this.guardWrite(table, idx, n);
    const w = this.mem.chunk(table);
    let slot = base + 2 * idx;
    if (bs < 0x1_0000_0000) {
      // Walk the output address as two 32-bit halves with a carry: integer ops only.
      // PA[51:48] fold into bits 15:12 (a no-op below 2^48, needed for 52-bit 64K tables).
      let aLo = pa % 0x1_0000_0000;
      let aHi = Math.floor(pa / 0x1_0000_0000);
      for (let i = 0; i < n; i++, slot += 2) {
        w[slot] = (lo0 | (aLo & 0xfffff000) | (((aHi >>> 16) & 0xf) << 12)) >>> 0;
        w[slot + 1] = (tHi | (aHi & 0xffff)) >>> 0;
        aLo += bs;
        if (aLo >= 0x1_0000_0000) {
          aLo -= 0x1_0000_0000;
          aHi++;
        }
      }
    } else {
      for (let i = 0, a = pa; i < n; i++, a += bs, slot += 2) {
        w[slot] = (lo0 | paddrToPteLo(a)) >>> 0;
        w[slot + 1] = (tHi | paddrToPteHi(a)) >>> 0;
      }
    }
    if (!this.coherent) this.sync(table, idx, n);
    this.mapped += n * bs;
    return E_OK;
  }

  // ---- unmap --------------------------------------------------------------------

  /** arm_lpae_unmap_pages after validation: from the PGD. */
  unmap(iova: number, i52: number, pgsize: number, pgcount: number, gather: IotlbGather | null, strict: boolean): number {
    return this.unmapAt(iova, i52, pgsize, pgcount, this.g.startLevel, this.pgd, gather, strict);
  }

  /**
   * __arm_lpae_unmap: returns bytes unmapped, or UNMAP_ENOENT when the first entry on the
   * path is empty. Sub-tables under removed entries are freed right after tlb_flush_walk.
   */
  unmapAt(iova: number, i52: number, pgsize: number, pgcount: number, level: number, table: Paddr, gather: IotlbGather | null, strict = false): number {
    const g = this.g;
    const mem = this.mem;
    const cookie = this.cfg.cookie;
    for (;;) {
      if (level === 4) return 0;
      const idx = levelIndex(g, i52, level);
      const base = PhysMemory.wordIndex(table);
      // A live table's chunk array never moves (allocPages materialises it), so one lookup serves the loop.
      const w = mem.peek(table);
      const lo0 = w[base + 2 * idx]!;
      const hi0 = w[base + 2 * idx + 1]!;
      if (lo0 === 0 && hi0 === 0) return UNMAP_ENOENT;
      const bs = g.blockSize[level]!;
      if (pgsize === bs) {
        let n = Math.min(pgcount, maxEntries(g, idx));
        if (level === g.startLevel) n = this.clampAtPgd(idx, n, strict);
        let i = 0;
        let flush: FlushToken | null = null;
        for (; i < n; i++) {
          const lo = w[base + 2 * (idx + i)]!;
          const hi = w[base + 2 * (idx + i) + 1]!;
          if (lo === 0 && hi === 0) break;
          if (!this.isLeafLo(lo, level)) {
            this.clear(table, idx + i, 1);
            this.cfg.tlb.tlbFlushWalk?.(iova + i * bs, bs, g.granule, cookie);
            flush ??= this.cfg.flush.tokenFor(gather);
            this.freeTable(level + 1, pteToPaddr(lo, hi, g.granule), flush);
          }
        }
        this.clear(table, idx, i);
        if (gather !== null && !gather.queued) {
          const addPage = this.cfg.tlb.tlbAddPage;
          if (addPage !== undefined) for (let j = 0; j < i; j++) addPage(gather, iova + j * bs, bs, cookie);
        }
        return i * bs;
      }
      if (this.isLeafLo(lo0, level)) return 0; // "Unmap of a partial large IOPTE is not allowed"
      table = pteToPaddr(lo0, hi0, g.granule);
      level++;
    }
  }

  private clear(table: Paddr, idx: number, n: number): void {
    if (n === 0) return;
    this.guardWrite(table, idx, n);
    const w = this.mem.chunk(table);
    const start = PhysMemory.wordIndex(table) + 2 * idx;
    w.fill(0, start, start + 2 * n);
    if (!this.coherent) this.sync(table, idx, n);
  }

  // ---- walks --------------------------------------------------------------------

  /**
   * iova_to_phys: the output address for `i52` (low 52 bits of the IOVA), or -1 when an
   * invalid entry is met. Level and descriptor of the leaf land in `lastLevel`/`lastLo`/`lastHi`.
   */
  lastLevel = 0;
  lastLo = 0;
  lastHi = 0;
  translate(i52: number): number {
    const g = this.g;
    const shifts = g.levelShift;
    const counts = g.indexCount;
    const big = g.granule === 0x10000;
    // Split once: indices, offsets and the OR below are 32-bit integer operations
    // (float % is a libm call and dominated this path).
    const ihi = Math.floor(i52 / 0x1_0000_0000) >>> 0;
    const ilo = i52 >>> 0;
    let level = g.startLevel;
    // The current table as a chunk number and a word index: no float arithmetic per level.
    let key = Math.floor(this.pgd / CHUNK_BYTES);
    let base = PhysMemory.wordIndex(this.pgd);
    for (;;) {
      const shift = shifts[level]!;
      const idxBits = shift >= 32 ? ihi >>> (shift - 32) : (ilo >>> shift) | (ihi << (32 - shift));
      const idx = idxBits & (counts[level]! - 1);
      const w = this.mem.peekKey(key);
      const slot = base + 2 * idx;
      const lo = w[slot]!;
      const hi = w[slot + 1]!;
      this.lastLevel = level;
      this.lastLo = lo;
      this.lastHi = hi;
      if (this.isLeafLo(lo, level)) {
        // iopte_to_paddr | (iova & (block - 1)): the kernel ORs the offset in, so unaligned
        // output-address bits stay visible (FORMAT.md note 9).
        let paLo: number;
        let paHi = hi & 0xffff;
        if (big) {
          paLo = lo & 0xffff0000;
          paHi |= ((lo >>> 12) & 0xf) << 16;
        } else {
          paLo = lo & 0xfffff000;
        }
        let offLo: number;
        let offHi = 0;
        if (shift >= 32) {
          offLo = ilo;
          offHi = ihi & ((1 << (shift - 32)) - 1);
        } else {
          offLo = ilo & ((2 ** shift - 1) | 0);
        }
        return (paHi | offHi) * 0x1_0000_0000 + ((paLo | offLo) >>> 0);
      }
      if (level === 3 || (lo & PTE_TYPE_MASK) !== PTE_TYPE_TABLE) return -1;
      const tLo = big ? lo & 0xffff0000 : lo & 0xfffff000;
      const tHi = big ? (hi & 0xffff) | (((lo >>> 12) & 0xf) << 16) : hi & 0xffff;
      key = tHi * (0x1_0000_0000 / CHUNK_BYTES) + (tLo >>> CHUNK_SHIFT);
      base = (tLo & (CHUNK_BYTES - 1)) >>> 2;
      level++;
    }
  }

  /** arm_lpae_pgtable_walk: every descriptor on the path, by absolute level. */
  walkPath(i52: number, out: Array<[number, number] | undefined>): number {
    const g = this.g;
    let level = g.startLevel;
    let table = this.pgd;
    for (;;) {
      const w = this.mem.peek(table);
      const slot = PhysMemory.wordIndex(table) + 2 * levelIndex(g, i52, level);
      const lo = w[slot]!;
      const hi = w[slot + 1]!;
      out[level] = [lo, hi];
      if (this.isLeafLo(lo, level)) return E_OK;
      if (level === 3 || (lo & PTE_TYPE_MASK) !== PTE_TYPE_TABLE) return E_INVAL;
      table = pteToPaddr(lo, hi, g.granule);
      level++;
    }
  }

  /**
   * read_and_clear_dirty's walk over [addr, end): records writeable-dirty leaves (DBM set,
   * AP[2] clear) and, unless `noClear`, makes them writeable-clean by setting AP[2].
   */
  private dAddr = 0;
  private dEnd = 0;
  dirtyWalk(iova: number, size: number, noClear: boolean, rec: DirtyRecorder): number {
    this.dAddr = iova;
    this.dEnd = iova + size;
    return this.dirtyLevel(this.g.startLevel, this.pgd, noClear, rec);
  }

  private dirtyLevel(level: number, table: Paddr, noClear: boolean, rec: DirtyRecorder): number {
    const g = this.g;
    const maxE = level === g.startLevel ? g.pgdEntries : g.ptesPerTable;
    const base = PhysMemory.wordIndex(table);
    const bs = g.blockSize[level]!;
    for (let idx = levelIndex(g, this.dAddr, level); idx < maxE && this.dAddr < this.dEnd; idx++) {
      const w = this.mem.peek(table);
      const lo = w[base + 2 * idx]!;
      const hi = w[base + 2 * idx + 1]!;
      if (this.isLeafLo(lo, level)) {
        if ((hi & PTE_HI_DBM) !== 0 && (lo & PTE_AP_RDONLY) === 0) {
          rec.record(this.dAddr, bs);
          if (!noClear) {
            this.guardWrite(table, idx, 1);
            this.mem.chunk(table)[base + 2 * idx] = (lo | PTE_AP_RDONLY) >>> 0;
          }
        }
        this.dAddr += bs;
        continue;
      }
      if (level === 3 || (lo & PTE_TYPE_MASK) !== PTE_TYPE_TABLE) return E_INVAL;
      const ret = this.dirtyLevel(level + 1, pteToPaddr(lo, hi, g.granule), noClear, rec);
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
