/**
 * The reference model: what a correct io-pgtable should contain, kept as plain data
 * (leaf start -> {size, pa, prot, dirty}) plus the set of intermediate tables that exist,
 * each named by its level and the aligned window of input addresses it covers. It
 * predicts every result from FORMAT.md's prose rules and shares no code with core.
 *
 * Addresses are offsets inside the input address space (for TTBR1 tables, the distance
 * from the bottom of the upper region), so they are non-negative numbers below 2^52.
 */
import { levelOf, type RefShape } from './ref-geometry.js';

export const READ = 1;
export const WRITE = 2;

export interface RefLeaf {
  iova: number;
  size: number;
  pa: number;
  prot: number;
  /** Writeable-dirty as read_and_clear_dirty reports it (ARM_HD, S1 only). */
  dirty: boolean;
}

export interface MapPrediction {
  mapped: number;
  error?: 'EEXIST' | 'ENOMEM';
}
export interface UnmapPrediction {
  unmapped: number;
  error?: 'ENOENT' | 'EINVAL';
}
export interface DirtyPrediction {
  ret: 0 | -22;
  records: Array<[number, number]>;
}

export type Mode = 'strict' | 'kernel';

export class RefModel {
  readonly leaves = new Map<number, RefLeaf>();
  /** Per level (startLevel+1..3): window indexes (iova / blockSize(level - 1)) with a table. */
  readonly tables: Array<Set<number>> = [new Set(), new Set(), new Set(), new Set()];
  /** Table allocations attempted so far, the PGD included (index of the next one). */
  allocAttempts = 0;
  /** Fail exactly this allocation attempt (fault injection), or -1. */
  failAt = -1;
  /** Sizes leaves can have, largest first (lookups try each). */
  private readonly leafSizes: number[];

  constructor(
    readonly shape: RefShape,
    readonly mode: Mode,
    readonly hd: boolean,
  ) {
    this.leafSizes = shape.pgsizes.filter((s) => levelOf(shape, s) >= 0).reverse();
  }

  /** Number of live tables the page table should hold (PGD included). */
  get tableCount(): number {
    return 1 + this.tables[1]!.size + this.tables[2]!.size + this.tables[3]!.size;
  }

  /** Does creating the PGD succeed? Call once, before anything else. */
  createPgd(): boolean {
    return this.attemptAlloc();
  }

  private attemptAlloc(): boolean {
    const n = this.allocAttempts++;
    return n !== this.failAt;
  }

  leafAt(x: number): RefLeaf | undefined {
    for (const s of this.leafSizes) {
      const l = this.leaves.get(x - (x % s));
      if (l !== undefined && l.size === s) return l;
    }
    return undefined;
  }

  private hasTable(level: number, x: number): boolean {
    return this.tables[level]!.has(Math.floor(x / this.shape.blockSize[level - 1]!));
  }

  private addTable(level: number, x: number): void {
    this.tables[level]!.add(Math.floor(x / this.shape.blockSize[level - 1]!));
  }

  private overlapsLeaf(start: number, end: number): boolean {
    for (const l of this.leaves.values()) if (l.iova < end && start < l.iova + l.size) return true;
    return false;
  }

  /** Drop every leaf and table strictly below an entry of `level` covering [x, x + size). */
  private removeUnder(level: number, x: number, size: number): void {
    for (const [k, l] of this.leaves) if (l.iova >= x && l.iova < x + size && l.size < size) this.leaves.delete(k);
    for (let l = level + 1; l <= 3; l++) {
      const span = this.shape.blockSize[l - 1]!;
      for (const w of this.tables[l]!) if (w * span >= x && w * span < x + size) this.tables[l]!.delete(w);
    }
  }

  /** Entries one call may touch: it never crosses a granule-sized page of entries. */
  chunk(x: number, size: number, count: number): number {
    const e = this.shape.entries;
    return Math.min(count, e - (Math.floor(x / size) % e));
  }

  /** map_pages of `count` aligned pages inside the address space (validated by the caller). */
  map(x: number, pa: number, size: number, count: number, prot: number): MapPrediction {
    const s = this.shape;
    const target = levelOf(s, size);
    const n = this.chunk(x, size, count);
    const end = x + n * size;
    if (this.mode === 'strict' && this.overlapsLeaf(x, end)) return { mapped: 0, error: 'EEXIST' };
    for (let l = s.startLevel; l < target; l++) {
      const big = this.leaves.get(x - (x % s.blockSize[l]!));
      if (big !== undefined && big.size === s.blockSize[l]) return { mapped: 0, error: 'EEXIST' };
      if (!this.hasTable(l + 1, x)) {
        if (!this.attemptAlloc()) return { mapped: 0, error: 'ENOMEM' };
        this.addTable(l + 1, x);
      }
    }
    for (let i = 0; i < n; i++) {
      const a = x + i * size;
      const here = this.leaves.get(a);
      if (here !== undefined && here.size === size) return { mapped: 0, error: 'EEXIST' };
      if (target < 3 && this.hasTable(target + 1, a)) this.removeUnder(target, a, size);
    }
    const dirty = this.hd && (prot & WRITE) !== 0;
    for (let i = 0; i < n; i++) this.leaves.set(x + i * size, { iova: x + i * size, size, pa: pa + i * size, prot, dirty });
    return { mapped: n * size };
  }

  /** unmap_pages of `count` aligned entries of `size` at `x` (validated by the caller). */
  unmap(x: number, size: number, count: number): UnmapPrediction {
    const s = this.shape;
    const target = levelOf(s, size);
    for (let l = s.startLevel; l < target; l++) {
      const big = this.leaves.get(x - (x % s.blockSize[l]!));
      if (big !== undefined && big.size === s.blockSize[l]) return { unmapped: 0, error: 'EINVAL' };
      if (!this.hasTable(l + 1, x)) return { unmapped: 0, error: 'ENOENT' };
    }
    const n = this.chunk(x, size, count);
    let i = 0;
    for (; i < n; i++) {
      const a = x + i * size;
      const leaf = this.leaves.get(a);
      const isLeaf = leaf !== undefined && leaf.size === size;
      if (!isLeaf && !(target < 3 && this.hasTable(target + 1, a))) break;
    }
    if (i === 0) return { unmapped: 0, error: 'ENOENT' };
    for (let j = 0; j < i; j++) {
      const a = x + j * size;
      const leaf = this.leaves.get(a);
      if (leaf !== undefined && leaf.size === size) this.leaves.delete(a);
      else this.removeUnder(target, a, size);
    }
    return { unmapped: i * size };
  }

  /** read_and_clear_dirty over [x, x + size), `x` the start of a leaf or a hole. */
  readAndClearDirty(x: number, size: number, noClear: boolean): DirtyPrediction {
    const records: Array<[number, number]> = [];
    let pos = x;
    while (pos < x + size) {
      const l = this.leafAt(pos);
      if (l === undefined) return { ret: -22, records };
      if (l.dirty) {
        records.push([pos, l.size]);
        if (!noClear) l.dirty = false;
      }
      pos += l.size;
    }
    return { ret: 0, records };
  }

  /** A device write through a DBM-capable IOMMU marks a writeable leaf dirty. */
  markDirty(x: number): void {
    const l = this.leafAt(x);
    if (l !== undefined && this.hd && (l.prot & WRITE) !== 0) l.dirty = true;
  }

  /** Expected iova_to_phys. */
  translate(x: number): number {
    const l = this.leafAt(x);
    return l === undefined ? 0 : l.pa + (x - l.iova);
  }

  /** Table identities as `level:window` strings, for comparison with a walk. */
  tableKeys(): Set<string> {
    const out = new Set<string>();
    for (let l = 1; l <= 3; l++) for (const w of this.tables[l]!) out.add(`${l}:${w}`);
    return out;
  }
}
