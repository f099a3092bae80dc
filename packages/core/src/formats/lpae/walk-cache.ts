/**
 * A page table's walk cache: where the last-level table of an IOVA lives, by the IOVA
 * bits above that table (what a real IOMMU's walk cache holds for its table walks). A
 * map, unmap or lookup of a 4 KiB-granule page that hits goes straight to the leaf table
 * instead of reading the levels above it again; the descriptors it then reads and writes
 * are the kernel's, so results are bit-exact.
 *
 * It is only an index of the tree, so it is valid while the tree above the last level
 * has not changed. The engine drops it when it frees a table (the only way its own
 * writes unlink one), and it is used only while nothing else can write the tree: a
 * coherent walk (a non-coherent walk syncs upper-level slots on every map), no access
 * guard (whose checks must see every read), the only page table on its memory, and no
 * write through memory since it was filled (MemoryStore.gen).
 */
export const WALK_SLOTS = 512;

export class WalkCache {
  /** The tag (IOVA bits above the last-level table) as int32 halves; tagHi -1 is empty. */
  readonly tagLo = new Int32Array(WALK_SLOTS);
  readonly tagHi = new Int32Array(WALK_SLOTS).fill(-1);
  /** The table: its chunk as packed halves (see LpaeEngine.words), the word of its slot 0, its address. */
  readonly kHi = new Int32Array(WALK_SLOTS);
  readonly kLo = new Int32Array(WALK_SLOTS);
  readonly base = new Int32Array(WALK_SLOTS);
  readonly table = new Float64Array(WALK_SLOTS);
  /** MemoryStore.gen when the entries were made; -1 once the engine dropped them. */
  gen = -1;

  clear(gen: number): void {
    this.tagHi.fill(-1);
    this.gen = gen;
  }

  /** Slot of a hit for (tagLo, tagHi), or -1. */
  find(tagLo: number, tagHi: number): number {
    const h = tagLo & (WALK_SLOTS - 1);
    return this.tagLo[h] === tagLo && this.tagHi[h] === tagHi ? h : -1;
  }

  put(tagLo: number, tagHi: number, kHi: number, kLo: number, base: number, table: number): void {
    const h = tagLo & (WALK_SLOTS - 1);
    this.tagLo[h] = tagLo;
    this.tagHi[h] = tagHi;
    this.kHi[h] = kHi;
    this.kLo[h] = kLo;
    this.base[h] = base;
    this.table[h] = table;
  }
}
