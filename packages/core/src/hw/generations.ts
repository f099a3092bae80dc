/**
 * Table generations: which allocation currently owns a piece of table memory. The
 * IOMMU model stamps every walk-cache entry with the generation of the table it points
 * to; a later walk through that entry into memory whose generation changed (freed,
 * handed out again, or reassigned to another owner) is a use-after-free the hardware
 * would really perform.
 */
import type { AllocCtx, Paddr, TableAllocator } from '@io-pgtable/allocator-api';

export interface TableRecord {
  readonly paddr: Paddr;
  /** Allocated size (what `alloc` was asked for). */
  readonly size: number;
  readonly gen: number;
}

/** What a generation tracker tells its listeners (IOMMU models). */
export interface GenerationListener {
  allocated(rec: TableRecord): void;
  freed(rec: TableRecord): void;
  reassigned(paddr: Paddr, size: number): void;
}

const MIN = 64;
const MAX = 1 << 20;

export class TableGenerations {
  private readonly live = new Map<Paddr, TableRecord>();
  private readonly listeners = new Set<GenerationListener>();
  private nextGen = 1;

  /** Record an allocation of `[paddr, paddr + size)`; returns its generation. */
  allocated(paddr: Paddr, size: number): number {
    const rec: TableRecord = { paddr, size, gen: this.nextGen++ };
    this.live.set(paddr, rec);
    for (const l of this.listeners) l.allocated(rec);
    return rec.gen;
  }

  /** Record the free of the allocation at `paddr` (the logical size does not matter). */
  freed(paddr: Paddr): void {
    const rec = this.live.get(paddr);
    if (rec === undefined) return;
    this.live.delete(paddr);
    for (const l of this.listeners) l.freed(rec);
  }

  /**
   * Memory changed owner without a free/alloc pair (secure-share reassignment): any walk
   * cache entry still pointing into it is now stale.
   */
  reassigned(paddr: Paddr, size: number): void {
    for (let p = paddr; p < paddr + size; ) {
      const rec = this.covering(p);
      if (rec !== undefined) {
        this.live.set(rec.paddr, { ...rec, gen: this.nextGen++ });
        p = rec.paddr + rec.size;
      } else p += MIN;
    }
    for (const l of this.listeners) l.reassigned(paddr, size);
  }

  /** The live allocation whose memory contains `paddr`, if any. */
  covering(paddr: Paddr): TableRecord | undefined {
    for (let s = MIN; s <= MAX; s *= 2) {
      const rec = this.live.get(paddr - (paddr % s));
      if (rec !== undefined && paddr < rec.paddr + rec.size) return rec;
    }
    return undefined;
  }

  get liveCount(): number {
    return this.live.size;
  }

  subscribe(l: GenerationListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /**
   * A pass-through decorator that reports the page table's allocations and frees here.
   * Put it directly under the page table (above the allocator under test) so that a
   * free is seen when the page table lets go of the table, not when a pool recycles it.
   */
  observe(inner: TableAllocator): TableAllocator {
    const observer: TableAllocator = {
      caps: inner.caps,
      memory: inner.memory,
      alloc: (size: number, ctx: AllocCtx) => {
        const p = inner.alloc(size, ctx);
        if (p !== null) this.allocated(p, size);
        return p;
      },
      free: (paddr: Paddr, size: number) => {
        inner.free(paddr, size);
        this.freed(paddr);
      },
      flushDone: () => inner.flushDone(),
      stats: () => inner.stats(),
    };
    if (inner.drain) observer.drain = () => inner.drain!();
    return observer;
  }
}
