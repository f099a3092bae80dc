import { CHUNK_SHIFT } from '../../phys/memory.js';

/**
 * A page table's walk cache: where the last-level table of an IOVA lives, by the IOVA
 * bits above that table (what a real IOMMU's walk cache holds for its table walks). A
 * map, unmap or lookup of granule-sized pages that hits goes straight to the leaf table
 * instead of reading the levels above it again; the descriptors it then reads and writes
 * are the ones the kernel reads and writes, so results are bit-exact.
 *
 * It is only an index of the tree, so it is valid while the tree above the last level
 * has not changed. The engine drops it when it frees a table (the only way its own
 * writes unlink one), and it is used only while nothing else can write the tree: a
 * coherent walk (a non-coherent walk syncs upper-level slots on every map), no access
 * guard (whose checks must see every read), the only page table on its memory, and no
 * write through memory to a table above the last level since it was filled (MemoryStore.gen
 * and its log of the last writes, against LpaeEngine.upperFrames). A slot is filled only for
 * a walk through tables the page table installed: those are the tables whose writes it hears of.
 *
 * Direct-mapped, one slot per live table rounded up to a power of two (at least 512, at
 * most 4,096: 24 bytes a slot, under 1% of the 4 KiB a table costs). Too few slots cost
 * more than they save: with 512 slots for 2,048 last-level tables (W4) map and unmap ran
 * slower (209 -> 246 ns per op), as most walks missed and paid for filling the slot.
 */
export const MIN_WALK_SLOTS = 512;
export const MAX_WALK_SLOTS = 4096;

/** Slots for a tree of `tables` live tables. */
export function walkSlotsFor(tables: number): number {
  let n = MIN_WALK_SLOTS;
  while (n < tables && n < MAX_WALK_SLOTS) n *= 2;
  return n;
}


const EMPTY = new Uint32Array(0);

export class WalkCache {
  private readonly mask: number;
  /** The tag (IOVA bits above the last-level table) as int32 halves; tagHi -1 is empty. */
  readonly tagLo: Int32Array;
  readonly tagHi: Int32Array;
  /**
   * The table: its chunk as int32 halves (address bits 51..32 and 31..16, see
   * LpaeEngine.words) and the word of its slot 0 in that chunk, which together are its
   * address (see tableLo).
   */
  readonly kHi: Int32Array;
  readonly kLo: Int32Array;
  readonly base: Int32Array;
  /**
   * The table's chunk array itself: a hit reaches the descriptors without the chunk cache
   * (three dependent loads fewer before the leaf's cache miss can start).
   */
  readonly chunk: Uint32Array[];
  /** MemoryStore.gen when the entries were made; -1 once the engine dropped them. */
  gen = -1;

  constructor(readonly slots: number) {
    this.mask = slots - 1;
    this.tagLo = new Int32Array(slots);
    this.tagHi = new Int32Array(slots).fill(-1);
    this.kHi = new Int32Array(slots);
    this.kLo = new Int32Array(slots);
    this.base = new Int32Array(slots);
    this.chunk = new Array<Uint32Array>(slots).fill(EMPTY);
  }

  clear(gen: number): void {
    this.tagHi.fill(-1);
    this.gen = gen;
  }

  /** Slot of a hit for (tagLo, tagHi), or -1. */
  find(tagLo: number, tagHi: number): number {
    const h = tagLo & this.mask;
    return this.tagLo[h] === tagLo && this.tagHi[h] === tagHi ? h : -1;
  }

  /** The low half of the address of slot `h`'s table (its high half is kHi[h]). */
  tableLo(h: number): number {
    return (this.kLo[h]! << CHUNK_SHIFT) | (this.base[h]! << 2);
  }

  put(tagLo: number, tagHi: number, kHi: number, kLo: number, base: number, chunk: Uint32Array): void {
    const h = tagLo & this.mask;
    this.tagLo[h] = tagLo;
    this.tagHi[h] = tagHi;
    this.kHi[h] = kHi;
    this.kLo[h] = kLo;
    this.base[h] = base;
    this.chunk[h] = chunk;
  }
}
