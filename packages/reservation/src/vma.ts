/**
 * The VM's record of what is mapped where (drm_gpuvm's VMAs, reduced to what the page
 * table model needs): non-overlapping [start, end) ranges with their output address and
 * protection, kept sorted. Needed to remap the border pieces of a split block with the
 * block's attributes, and to unmap only what is mapped.
 */
import type { ProtName } from '@io-pgtable/core';

export type VmaProt = number | readonly ProtName[];

export interface Vma {
  readonly start: number;
  readonly end: number;
  readonly paddr: number;
  readonly prot: VmaProt;
}

export class VmaMap {
  private readonly list: Vma[] = [];

  /** Index of the first VMA whose end is above `addr`. */
  private firstEndingAfter(addr: number): number {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.list[mid]!.end <= addr) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  get size(): number {
    return this.list.length;
  }

  /** The VMA containing `addr`, if any. */
  find(addr: number): Vma | undefined {
    const v = this.list[this.firstEndingAfter(addr)];
    return v !== undefined && v.start <= addr ? v : undefined;
  }

  /** Insert a range; the caller guarantees it does not overlap (the page table refused overlaps). */
  insert(v: Vma): void {
    this.list.splice(this.firstEndingAfter(v.start), 0, v);
  }

  /** The mapped pieces of [start, end), clipped, in address order. */
  pieces(start: number, end: number): Vma[] {
    const out: Vma[] = [];
    for (let i = this.firstEndingAfter(start); i < this.list.length && this.list[i]!.start < end; i++) {
      const v = this.list[i]!;
      const s = Math.max(start, v.start);
      const e = Math.min(end, v.end);
      out.push({ start: s, end: e, paddr: v.paddr + (s - v.start), prot: v.prot });
    }
    return out;
  }

  /** Forget [start, end): VMAs straddling an edge are trimmed. */
  remove(start: number, end: number): void {
    const i = this.firstEndingAfter(start);
    let j = i;
    const keep: Vma[] = [];
    while (j < this.list.length && this.list[j]!.start < end) {
      const v = this.list[j]!;
      if (v.start < start) keep.push({ ...v, end: start });
      if (v.end > end) keep.push({ start: end, end: v.end, paddr: v.paddr + (end - v.start), prot: v.prot });
      j++;
    }
    this.list.splice(i, j - i, ...keep);
  }
}
