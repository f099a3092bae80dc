/**
 * A GPU VM as a VM_BIND driver sees it: one page table whose allocator is a
 * reservation allocator, a VMA record, and the run step of a bind job (Panthor's
 * `panthor_vm_exec_op`): apply the ops in order, undo a failed op's partial mappings,
 * flush once at the end, and mark the VM unusable when a reservation ran dry.
 */
import type { AllocCtx } from '@io-pgtable/allocator-api';
import { createPageTable, type FlushOps, type FormatName, type Geometry, type PageTable, type PgtableCfg } from '@io-pgtable/core';
import { leafLevelOf, type CountOp, type CountSplitPolicy } from './count.js';
import type { Reservation, ReservationAllocator } from './reservation.js';
import { VmaMap, type VmaProt } from './vma.js';

export interface BindMapOp {
  readonly kind: 'map';
  readonly iova: number;
  readonly size: number;
  readonly paddr: number;
  /** Default `['read', 'write']`. */
  readonly prot?: VmaProt;
  /** Leaf size; default: the largest page of the bitmap that fits (iommu_map's choice). */
  readonly pgsize?: number;
}
export interface BindUnmapOp {
  readonly kind: 'unmap';
  readonly iova: number;
  readonly size: number;
}
export type BindOp = BindMapOp | BindUnmapOp;

/** Why an op failed. `exhausted` is a counting bug (the job's reservation ran dry). */
export type BindFailure = 'exhausted' | 'unusable' | 'pgtable' | 'block-cut';

/** A failed op, returned (never thrown) from a run. */
export class BindError extends Error {
  override readonly name = 'BindError';
  readonly rule: 'reservation-exhausted' | undefined;
  constructor(
    readonly code: 'EINVAL' | 'ERANGE' | 'EEXIST' | 'ENOMEM',
    readonly reason: BindFailure,
    readonly opIndex: number,
    message: string,
  ) {
    super(`[iopgt] [reservation] ${code}: op ${opIndex}: ${message}`);
    this.rule = reason === 'exhausted' ? 'reservation-exhausted' : undefined;
  }
}

export type RunResult = { readonly ok: true; readonly opsDone: number } | { readonly ok: false; readonly opsDone: number; readonly error: BindError };

export interface VmOptions {
  readonly format: FormatName;
  readonly cfg: PgtableCfg;
  /** How unmaps that cut a block are handled (default `none`, Linux >= 6.13). */
  readonly split?: CountSplitPolicy;
  /** Refuse every later op after a run ran out of reserved tables (default true, as Panthor). */
  readonly markUnusable?: boolean;
  readonly tlb?: FlushOps;
}

/** What Panthor passes to map_pages inside run_job; the reservation allocator ignores mayBlock. */
const RUN_CTX: AllocCtx = Object.freeze({ mayBlock: true, phase: 'run' });

export class Vm {
  readonly pageTable: PageTable;
  readonly geometry: Geometry;
  readonly pgsizeBitmap: number;
  readonly split: CountSplitPolicy;
  readonly markUnusable: boolean;
  readonly vmas = new VmaMap();
  private unusableFlag = false;
  private readonly sizes: number[];

  /** Creates the page table: the PGD comes from the backing allocator, outside any op. */
  constructor(
    readonly allocator: ReservationAllocator,
    opts: VmOptions,
  ) {
    this.pageTable = createPageTable(opts.format, opts.cfg, { allocator, ...(opts.tlb ? { tlb: opts.tlb } : {}) });
    this.geometry = this.pageTable.geometry;
    this.pgsizeBitmap = this.pageTable.cfg.pgsizeBitmap;
    this.split = opts.split ?? 'none';
    this.markUnusable = opts.markUnusable ?? true;
    const sizes: number[] = [];
    for (let l = 3; l >= this.geometry.startLevel; l--) {
      const s = this.geometry.blockSize[l]!;
      if (Math.floor(this.pgsizeBitmap / s) % 2 === 1) sizes.push(s);
    }
    this.sizes = sizes; // ascending
  }

  /** True once a run ran dry with `markUnusable`: later runs are refused. */
  get unusable(): boolean {
    return this.unusableFlag;
  }

  /**
   * The op as the counter sees it. With `exactPageSizes`, a map without a fixed pgsize
   * becomes the runs of pages `run` will really use (iommu_map's choice is a function
   * of iova, paddr and size alone, so this holds for queued jobs too).
   */
  countOps(op: BindOp, exactPageSizes = false): CountOp[] {
    if (!exactPageSizes || op.kind !== 'map' || op.pgsize !== undefined) return [this.countOp(op)];
    const out: CountOp[] = [];
    const end = op.iova + op.size;
    for (let iv = op.iova, pa = op.paddr; iv < end; ) {
      const { pgsize, count } = this.chunk(iv, pa, end);
      out.push({ kind: 'map', iova: iv, size: pgsize * count, pgsize });
      iv += pgsize * count;
      pa += pgsize * count;
    }
    return out;
  }

  /** The op as the counter sees it (worst-case page size). */
  countOp(op: BindOp): CountOp {
    return op.kind === 'map' ? { kind: 'map', iova: op.iova, size: op.size, ...(op.pgsize !== undefined ? { pgsize: op.pgsize } : {}) } : { kind: 'unmap', iova: op.iova, size: op.size };
  }

  /**
   * Run `ops` inside `reservation.run` (the signalling section), stopping at the first
   * failure. The failed op's partial mappings are undone; ops before it stay applied.
   * One flushDone at the end, as Panthor's single flush after the whole update.
   */
  run(reservation: Reservation, ops: readonly BindOp[]): RunResult {
    if (this.unusableFlag) return { ok: false, opsDone: 0, error: new BindError('EINVAL', 'unusable', 0, 'the VM is unusable after an earlier failed run') };
    return reservation.run(() => {
      let result: RunResult = { ok: true, opsDone: ops.length };
      for (let i = 0; i < ops.length; i++) {
        const err = ops[i]!.kind === 'map' ? this.execMap(ops[i] as BindMapOp, i) : this.execUnmap(ops[i] as BindUnmapOp, i);
        if (err !== null) {
          if (err.reason === 'exhausted' && this.markUnusable) this.unusableFlag = true;
          result = { ok: false, opsDone: i, error: err };
          break;
        }
      }
      this.allocator.flushDone();
      return result;
    });
  }

  /** Tear down the page table (outside any run) and flush. */
  destroy(): void {
    this.pageTable.free();
    this.allocator.flushDone();
  }

  // ---- map ----------------------------------------------------------------------

  /** Largest page size that fits at `iova`/`paddr` within `end`, and how many in a row. */
  private chunk(iova: number, paddr: number, end: number, forced?: number): { pgsize: number; count: number } {
    if (forced !== undefined) return { pgsize: forced, count: (end - iova) / forced };
    let pgsize = this.sizes[0]!;
    for (const s of this.sizes) if (iova % s === 0 && paddr % s === 0 && iova + s <= end) pgsize = s;
    let stop = iova + Math.floor((end - iova) / pgsize) * pgsize;
    for (const s of this.sizes) {
      if (s <= pgsize || (iova - paddr) % s !== 0) continue;
      const q = Math.ceil(iova / s) * s;
      if (q + s <= end && q < stop) stop = q;
    }
    return { pgsize, count: (stop - iova) / pgsize };
  }

  /** Map [iova, end) -> paddr; on failure unmaps what it mapped and returns the error. */
  private mapRange(iova: number, paddr: number, end: number, prot: VmaProt, forced: number | undefined, opIndex: number): BindError | null {
    const done: Array<[number, number, number]> = [];
    let iv = iova;
    let pa = paddr;
    while (iv < end) {
      const { pgsize, count } = this.chunk(iv, pa, end, forced);
      let left = count;
      while (left > 0) {
        const r = this.pageTable.mapPages(iv, pa, pgsize, left, prot, RUN_CTX);
        if (r.mapped > 0) done.push([iv, pgsize, r.mapped / pgsize]);
        iv += r.mapped;
        pa += r.mapped;
        left -= r.mapped / pgsize;
        if (r.error !== undefined || r.mapped === 0) {
          for (const [a, s, n] of done) this.unmapExact(a, s, n);
          const exhausted = r.error === 'ENOMEM' && this.allocator.active?.exhausted === true;
          const code = r.error ?? 'EINVAL';
          return new BindError(code, exhausted ? 'exhausted' : 'pgtable', opIndex, exhausted ? `the job's reservation ran out at iova 0x${iv.toString(16)} (count too small)` : (r.message ?? 'map failed'));
        }
      }
    }
    return null;
  }

  private execMap(op: BindMapOp, opIndex: number): BindError | null {
    if (op.pgsize !== undefined && leafLevelOf(this.geometry, op.pgsize) < 0) return new BindError('EINVAL', 'pgtable', opIndex, `pgsize ${op.pgsize} is not a page size of this table`);
    const prot = op.prot ?? ['read', 'write'];
    const err = this.mapRange(op.iova, op.paddr, op.iova + op.size, prot, op.pgsize, opIndex);
    if (err === null) this.vmas.insert({ start: op.iova, end: op.iova + op.size, paddr: op.paddr, prot });
    return err;
  }

  // ---- unmap --------------------------------------------------------------------

  /** Unmap exactly `count` pages of `pgsize` at `iova` (looping: one call covers one table). */
  private unmapExact(iova: number, pgsize: number, count: number): void {
    let iv = iova;
    let left = count;
    while (left > 0) {
      const r = this.pageTable.unmapPages(iv, pgsize, left);
      if (r.unmapped === 0) return;
      iv += r.unmapped;
      left -= r.unmapped / pgsize;
    }
  }

  /** Unmap mapped pieces of [start, end) with the largest page sizes their alignment allows. */
  private unmapRange(start: number, end: number): void {
    for (const v of this.vmas.pieces(start, end)) {
      let iv = v.start;
      while (iv < v.end) {
        // Virtual alignment only: a larger unmap over smaller pages removes them all.
        const { pgsize, count } = this.chunk(iv, iv, v.end);
        this.unmapExact(iv, pgsize, count);
        iv += pgsize * count;
      }
    }
  }

  /** The block mapping `edge` falls strictly inside, if any. */
  private blockCutAt(edge: number): { start: number; size: number } | null {
    const g = this.geometry;
    const top = 2 ** g.ias;
    if (edge >= top || edge < -top) return null;
    const l = this.pageTable.lookup(edge);
    if (l.kind !== 'mapped') return null;
    const s = g.blockSize[l.level]!;
    if (s === g.granule || edge % s === 0) return null;
    return { start: Math.floor(edge / s) * s, size: s };
  }

  private execUnmap(op: BindUnmapOp, opIndex: number): BindError | null {
    const end = op.iova + op.size;
    const left = this.blockCutAt(op.iova);
    const right = this.blockCutAt(end);
    if ((left || right) && this.split === 'none') {
      return new BindError('EINVAL', 'block-cut', opIndex, 'the unmap cuts a block mapping and the split policy is "none" (unmap whole blocks)');
    }
    // Border pieces to remap: [block start, iova) and [end, block end), with the block's attributes.
    const borders: Array<{ start: number; end: number; paddr: number; prot: VmaProt }> = [];
    if (left) {
      const v = this.vmas.find(left.start)!;
      borders.push({ start: left.start, end: op.iova, paddr: v.paddr + (left.start - v.start), prot: v.prot });
    }
    if (right) {
      const v = this.vmas.find(end)!;
      borders.push({ start: end, end: right.start + right.size, paddr: v.paddr + (end - v.start), prot: v.prot });
    }
    const wideStart = left ? left.start : op.iova;
    const wideEnd = right ? right.start + right.size : end;
    this.unmapRange(wideStart, wideEnd);
    this.vmas.remove(wideStart, wideEnd);
    for (const b of borders) {
      const err = this.mapRange(b.start, b.paddr, b.end, b.prot, undefined, opIndex);
      if (err !== null) {
        // The widened unmap cannot be taken back without the op's data: drop the borders
        // already remapped so no half state stays, and refuse further ops.
        for (const done of borders) if (done.start < b.start) this.unmapRange(done.start, done.end), this.vmas.remove(done.start, done.end);
        this.unusableFlag = true;
        return err;
      }
      this.vmas.insert({ start: b.start, end: b.end, paddr: b.paddr, prot: b.prot });
    }
    return null;
  }
}

/** Create a VM whose page table allocates from `allocator` (PGD from its backing, now). */
export function createVm(allocator: ReservationAllocator, opts: VmOptions): Vm {
  return new Vm(allocator, opts);
}
