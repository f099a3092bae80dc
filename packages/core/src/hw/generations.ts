/**
 * Table generations: which allocation currently owns a piece of table memory, and which
 * freed tables are still inside their free window.
 *
 * The IOMMU model stamps every walk-cache entry with the generation of the table it points
 * to; a later walk through that entry into memory whose generation changed (freed, handed
 * out again, or reassigned to another owner) is a use-after-free the hardware would really
 * perform.
 *
 * The free window of a table runs from the moment the page table frees it (before the
 * allocator's `free` runs: the observer sits above the allocator) until the flush that
 * covers the free completes: its {@link FlushToken} reads `done`, or `flushDone()` /
 * `flushDone(token)` passes through the observer. Until then the device may still walk
 * the table (Panthor's no-op `tlb_flush_walk`), so any CPU write or zeroing of it (a
 * SLUB-style free-list pointer, zeroing inside `free`), any hand-out, return to a backing
 * store or reassignment is a finding. A free whose token is already done when `free` runs
 * (a synchronous flush came first) opens no window. Writes made through a path the memory
 * guard cannot see are caught when the window closes, by comparing the table with a copy
 * taken when it was freed.
 */
import type { AllocCtx, FlushToken, FreeCtx, Paddr, TableAllocator } from '@io-pgtable/allocator-api';
import type { PhysMemory, AccessGuard, AccessKind, Accessor } from '../phys/memory.js';
import type { Finding } from './findings.js';

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
  /** A free-window finding (also kept in {@link TableGenerations.findings}). */
  hazard?(finding: Finding): void;
}

/** A freed table waiting for the flush that covers its free. */
interface FreeWindow {
  readonly paddr: Paddr;
  readonly size: number;
  readonly token: FlushToken;
  readonly level: number;
  /** The table's words when it was freed (null when no memory is watched). */
  readonly snapshot: Uint32Array | null;
  /** A write was already reported: do not report the same table again when it closes. */
  reported: boolean;
}

const MIN = 64;
const MAX = 1 << 20;

export class TableGenerations {
  /** Free-window findings, in order: writes, zeroing and reuse of freed tables before their flush. */
  readonly findings: Finding[] = [];
  private readonly live = new Map<Paddr, TableRecord>();
  private readonly listeners = new Set<GenerationListener>();
  private readonly windows = new Map<Paddr, FreeWindow>();
  private nextGen = 1;
  private allocating = 0;
  private watched: PhysMemory | null = null;
  private watchers = 0;
  private guard: AccessGuard | null = null;
  private prevGuard: AccessGuard | null = null;

  /** Record an allocation of `[paddr, paddr + size)`; returns its generation. */
  allocated(paddr: Paddr, size: number): number {
    if (this.windows.size > 0) this.reuse('handed out again', paddr, size);
    const rec: TableRecord = { paddr, size, gen: this.nextGen++ };
    this.live.set(paddr, rec);
    for (const l of this.listeners) l.allocated(rec);
    return rec.gen;
  }

  /**
   * Record the free of the allocation at `paddr` (the logical size does not matter).
   * With a ctx whose flush token is not done yet, the table's free window opens.
   */
  freed(paddr: Paddr, ctx?: FreeCtx): void {
    const rec = this.live.get(paddr);
    if (rec === undefined) return;
    this.live.delete(paddr);
    if (ctx !== undefined && !ctx.flush.done) {
      const snapshot = this.watched === null ? null : this.watched.readWords(paddr, rec.size);
      this.windows.set(paddr, { paddr, size: rec.size, token: ctx.flush, level: ctx.level, snapshot, reported: false });
    }
    for (const l of this.listeners) l.freed(rec);
  }

  /**
   * A flush completed: close the free windows it covers (those of `token`, and any whose
   * token reads done; every window without a token), checking each table is unchanged.
   */
  flushed(token?: FlushToken): void {
    if (this.windows.size === 0) return;
    for (const w of [...this.windows.values()]) {
      if (token === undefined || w.token === token || w.token.id === token.id || w.token.done) this.close(w);
    }
  }

  /**
   * Memory changed owner without a free/alloc pair (secure-share reassignment): any walk
   * cache entry still pointing into it is now stale, and a table in its free window was
   * reassigned before its flush.
   */
  reassigned(paddr: Paddr, size: number): void {
    if (this.windows.size > 0) this.reuse('reassigned', paddr, size);
    for (let p = paddr; p < paddr + size; ) {
      const rec = this.covering(p);
      if (rec !== undefined) {
        this.live.set(rec.paddr, { ...rec, gen: this.nextGen++ });
        p = rec.paddr + rec.size;
      } else p += MIN;
    }
    for (const l of this.listeners) l.reassigned(paddr, size);
  }

  /**
   * Table memory changed hands where no observer sees it (e.g. a plugin gave it back to
   * its backing store): a finding when it is inside a free window.
   */
  released(how: string, paddr: Paddr, size: number): void {
    if (this.windows.size > 0) this.reuse(how, paddr, size);
  }

  /** The live allocation whose memory contains `paddr`, if any. */
  covering(paddr: Paddr): TableRecord | undefined {
    for (let s = MIN; s <= MAX; s *= 2) {
      const rec = this.live.get(paddr - (paddr % s));
      if (rec !== undefined && paddr < rec.paddr + rec.size) return rec;
    }
    return undefined;
  }

  /**
   * True while an observed `alloc` runs: a write into freed memory then is the hand-out
   * itself (an allocator zeroing a page it recycles), reported as reuse, not as a write.
   */
  get inAlloc(): boolean {
    return this.allocating > 0;
  }

  get liveCount(): number {
    return this.live.size;
  }

  /** Freed tables whose covering flush has not completed yet. */
  get openWindows(): number {
    for (const w of [...this.windows.values()]) if (w.token.done) this.close(w);
    return this.windows.size;
  }

  subscribe(l: GenerationListener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /**
   * See CPU writes and zeroing of `memory` (chains a guard onto `memory.guard`) and copy
   * each freed table when its window opens. One memory per tracker; calls nest (each
   * returns its own undo, the guard goes when the last one is undone).
   */
  watch(memory: PhysMemory): () => void {
    if (this.watched !== null && this.watched !== memory) throw new Error('[iopgt] [iommu] a TableGenerations watches one memory');
    if (this.watchers++ === 0) {
      this.watched = memory;
      this.prevGuard = memory.guard;
      const prev = this.prevGuard;
      const guard: AccessGuard = {
        check: (kind: AccessKind, p: Paddr, size: number, who: Accessor) => {
          if (this.windows.size > 0 && (kind === 'write' || kind === 'zero') && who !== 'device') this.written(kind, p, size, who);
          prev?.check(kind, p, size, who);
        },
      };
      this.guard = guard;
      memory.guard = guard;
    }
    let undone = false;
    return () => {
      if (undone) return;
      undone = true;
      if (--this.watchers > 0 || this.watched === null) return;
      if (this.watched.guard === this.guard) this.watched.guard = this.prevGuard;
      this.watched = null;
      this.guard = null;
    };
  }

  /**
   * A pass-through decorator that reports the page table's allocations and frees here.
   * Put it directly under the page table (above the allocator under test) so that a
   * free is seen when the page table lets go of the table (before the allocator's `free`
   * runs), not when a pool recycles it; flushes passing down close free windows before
   * the allocator below may recycle anything.
   */
  observe(inner: TableAllocator): TableAllocator {
    const observer: TableAllocator = {
      caps: inner.caps,
      memory: inner.memory,
      inner,
      alloc: (size: number, ctx: AllocCtx) => {
        let p: Paddr | null;
        this.allocating++;
        try {
          p = inner.alloc(size, ctx);
        } finally {
          this.allocating--;
        }
        if (p !== null) this.allocated(p, size);
        return p;
      },
      free: (paddr: Paddr, size: number, ctx?: FreeCtx) => {
        this.freed(paddr, ctx);
        inner.free(paddr, size, ctx);
      },
      flushDone: (token?: FlushToken) => {
        this.flushed(token);
        inner.flushDone(token);
      },
      stats: () => inner.stats(),
    };
    if (inner.drain) observer.drain = () => inner.drain!();
    return observer;
  }

  // --- internals -----------------------------------------------------------------------

  /** Free windows overlapping `[p, p + size)` that are still open (closing those whose token is done). */
  private overlapping(p: Paddr, size: number): FreeWindow[] {
    const out: FreeWindow[] = [];
    const end = p + size;
    if (this.windows.size <= 16 + size / MIN) {
      for (const w of this.windows.values()) if (w.paddr < end && p < w.paddr + w.size) out.push(w);
    } else {
      // Windows starting before p that reach into it, then every 64-byte base inside the range.
      for (let s = MIN; s <= MAX; s *= 2) {
        const w = this.windows.get(p - (p % s));
        if (w !== undefined && w.paddr < p && p < w.paddr + w.size && !out.includes(w)) out.push(w);
      }
      for (let q = p % MIN === 0 ? p : p - (p % MIN) + MIN; q < end; q += MIN) {
        const w = this.windows.get(q);
        if (w !== undefined) out.push(w);
      }
    }
    const open: FreeWindow[] = [];
    for (const w of out) {
      if (w.token.done) this.close(w);
      else open.push(w);
    }
    return open;
  }

  private written(kind: 'write' | 'zero', p: Paddr, size: number, who: Accessor): void {
    if (this.allocating > 0) {
      this.reuse(`${kind === 'zero' ? 'zeroed' : 'written'} by the ${who} while handing it out again`, p, size);
      return;
    }
    for (const w of this.overlapping(p, size)) {
      if (w.reported) continue;
      w.reported = true;
      this.freedFinding('write-before-flush', w, `freed level-${w.level} table 0x${w.paddr.toString(16)} was ${kind === 'zero' ? 'zeroed' : 'written'} by the ${who} (0x${p.toString(16)}+${size}) before the flush covering its free (token ${w.token.id}) completed: the device may still walk it`);
    }
  }

  private reuse(how: string, p: Paddr, size: number): void {
    for (const w of this.overlapping(p, size)) {
      this.windows.delete(w.paddr);
      if (w.reported) continue;
      this.freedFinding('reuse-before-flush', w, `freed level-${w.level} table 0x${w.paddr.toString(16)} was ${how} (0x${p.toString(16)}+${size}) before the flush covering its free (token ${w.token.id}) completed`);
    }
  }

  /** End a free window: the table must be exactly as the page table left it. */
  private close(w: FreeWindow): void {
    this.windows.delete(w.paddr);
    if (w.reported || w.snapshot === null || this.watched === null) return;
    const now = this.watched.readWords(w.paddr, w.size);
    for (let i = 0; i < now.length; i++) {
      if (now[i] !== w.snapshot[i]) {
        this.freedFinding('write-before-flush', w, `freed level-${w.level} table 0x${w.paddr.toString(16)} changed at byte ${i * 4} (0x${(w.snapshot[i]! >>> 0).toString(16)} -> 0x${(now[i]! >>> 0).toString(16)}) before the flush covering its free (token ${w.token.id}) completed: the device may still walk it`);
        return;
      }
    }
  }

  /** A finding about the freed table of window `w`: its rule is its kind; no IOVA applies. */
  private freedFinding(rule: 'write-before-flush' | 'reuse-before-flush', w: FreeWindow, message: string): void {
    this.report({ kind: rule, iova: NaN, paddr: w.paddr, level: w.level, rule, message });
  }

  private report(f: Finding): void {
    this.findings.push(f);
    for (const l of this.listeners) l.hazard?.(f);
  }
}
