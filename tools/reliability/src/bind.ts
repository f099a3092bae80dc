/**
 * Reservation stacks are driven the way a VM_BIND driver drives them: the page table
 * belongs to a `Vm` of @io-pgtable/reservation, maps and unmaps are jobs of a
 * `VmBindQueue` (counted and prepared at submit in a blocking context, run inside the
 * signalling section, released by `cleanup` afterwards), reads go straight to the table.
 *
 * This file holds the driver side (building the VM over the observed stack) and the
 * reference side of a job: which VMAs exist and what a VM unmap does to the model. The
 * reference shares no code with the reservation package.
 */
import type { TableAllocator } from '@io-pgtable/allocator-api';
import type { FlushOps } from '@io-pgtable/core';
import { VmBindQueue, createVm, type ReservationAllocator, type Vm } from '@io-pgtable/reservation';
import { usableSizes } from './commands.js';
import type { FuzzConfig } from './configs.js';
import type { RefModel } from './model.js';
import type { RefShape } from './ref-geometry.js';
import type { BindSetup } from './stacks.js';

export interface BindVm {
  vm: Vm;
  queue: VmBindQueue;
  /** Non-empty prepares so far (the index `shortJobAt` counts). */
  prepares(): number;
}

/**
 * Build the VM over the stack's reservation allocator. `observe` puts the IOMMU model's
 * allocation observer directly under the page table; `shortJobAt` makes the k-th
 * non-empty prepare reserve one page fewer than the queue counted (a counting bug on
 * purpose, so a run really exhausts its reservation).
 */
export function createBindVm(setup: BindSetup, cfg: FuzzConfig, env: { observe?: (a: TableAllocator) => TableAllocator; tlb?: FlushOps; shortJobAt?: number }): BindVm {
  const res = setup.reservation;
  const observed = env.observe ? env.observe(res) : res;
  let prepares = 0;
  const shortAt = env.shortJobAt ?? -1;
  // The VM sees the reservation allocator (prepare, active, unusable, drain) with alloc and
  // free going through the observer. A plain forwarding object, not Object.create(res):
  // V8 keeps prototype maps alive for a few GCs, which would pin a finished stack.
  const alloc: ReservationAllocator = {
    caps: res.caps,
    memory: res.memory,
    section: res.section,
    freePolicy: res.freePolicy,
    pageSize: res.pageSize,
    get active() {
      return res.active;
    },
    get unusable() {
      return res.unusable;
    },
    createReservation: (pageSize) => res.createReservation(pageSize),
    prepare: (count, ctx, pageSize) => res.prepare(count > 0 && prepares++ === shortAt ? count - 1 : count, ctx, pageSize),
    alloc: observed.alloc,
    free: observed.free,
    flushDone: () => res.flushDone(),
    stats: () => res.stats(),
    drain: () => res.drain?.(),
    counters: () => res.counters(),
  };
  const vm = createVm(alloc, {
    format: cfg.format,
    cfg: { pgsizeBitmap: cfg.pgsizeBitmap, ias: cfg.ias, oas: cfg.oas, quirks: cfg.quirks, coherentWalk: cfg.coherentWalk },
    split: 'none',
    ...(env.tlb ? { tlb: env.tlb } : {}),
  });
  return { vm, queue: new VmBindQueue(vm, { strategy: setup.strategy, admission: setup.admission }), prepares: () => prepares };
}

/** The reference VMA record: one range per successful map op, sorted, never merged. */
export class RefVmas {
  private list: Array<{ s: number; e: number }> = [];

  get size(): number {
    return this.list.length;
  }

  add(s: number, e: number): void {
    let i = 0;
    while (i < this.list.length && this.list[i]!.s < s) i++;
    this.list.splice(i, 0, { s, e });
  }

  /** Mapped pieces of [s, e), clipped, in order. */
  pieces(s: number, e: number): Array<{ s: number; e: number }> {
    const out: Array<{ s: number; e: number }> = [];
    for (const v of this.list) if (v.s < e && s < v.e) out.push({ s: Math.max(s, v.s), e: Math.min(e, v.e) });
    return out;
  }

  remove(s: number, e: number): void {
    const next: Array<{ s: number; e: number }> = [];
    for (const v of this.list) {
      if (v.e <= s || e <= v.s) next.push(v);
      else {
        if (v.s < s) next.push({ s: v.s, e: s });
        if (v.e > e) next.push({ s: e, e: v.e });
      }
    }
    this.list = next;
  }
}

/**
 * A VM unmap of [iova, iova + size) with split policy `none` (Linux >= 6.13): EINVAL
 * without any change when an edge falls strictly inside a block; otherwise every mapped
 * piece is unmapped with the largest page sizes its alignment allows, so a table goes
 * away exactly when such a page covers its whole window. Applies the result to `model`
 * and `vmas`; returns the error code, or null.
 */
export function applyVmUnmap(model: RefModel, shape: RefShape, vmas: RefVmas, iova: number, size: number): 'EINVAL' | null {
  const end = iova + size;
  if (cutsBlock(model, shape, iova, size)) return 'EINVAL';
  const sizes = usableSizes(shape);
  for (const piece of vmas.pieces(iova, end)) {
    for (let p = piece.s; p < piece.e; ) {
      let b = sizes[0]!;
      for (const z of sizes) if (p % z === 0 && p + z <= piece.e) b = z;
      model.unmap(p, b, 1);
      p += b;
    }
  }
  vmas.remove(iova, end);
  return null;
}

/** Does an edge of [iova, iova + size) fall strictly inside a block mapping? */
export function cutsBlock(model: RefModel, shape: RefShape, iova: number, size: number): boolean {
  const top = 2 ** shape.ias;
  for (const edge of [iova, iova + size]) {
    if (edge >= top) continue;
    const l = model.leafAt(edge);
    if (l !== undefined && l.size > shape.granule && edge !== l.iova) return true;
  }
  return false;
}
