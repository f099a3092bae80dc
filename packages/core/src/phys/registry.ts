import { CHUNK_BYTES } from './memory.js';

const SLOT = 64; // the smallest table allocation
const WORDS_PER_CHUNK = CHUNK_BYTES / SLOT / 32;

/**
 * Which 64-byte slots of physical memory hold a live page table. Lets the core reject
 * an allocator that hands out memory overlapping a live table in O(size / 2 KiB).
 * Tables are naturally aligned and at most 1 MiB, so each lies within one chunk.
 */
export class TableRegistry {
  private readonly chunks = new Map<number, Uint32Array>();

  private bits(paddr: number, create: boolean): Uint32Array | undefined {
    const key = Math.floor(paddr / CHUNK_BYTES);
    let b = this.chunks.get(key);
    if (b === undefined && create) this.chunks.set(key, (b = new Uint32Array(WORDS_PER_CHUNK)));
    return b;
  }

  private forSlots(paddr: number, size: number, fn: (b: Uint32Array, word: number, mask: number) => boolean, create: boolean): boolean {
    const b = this.bits(paddr, create);
    if (b === undefined) return false;
    const first = (paddr % CHUNK_BYTES) / SLOT;
    const count = Math.max(1, size / SLOT);
    for (let s = first; s < first + count; ) {
      const word = s >>> 5;
      const bit = s & 31;
      const n = Math.min(32 - bit, first + count - s);
      const mask = n === 32 ? 0xffffffff : ((1 << n) - 1) << bit;
      if (fn(b, word, mask | 0)) return true;
      s += n;
    }
    return false;
  }

  /** True if any slot of `[paddr, paddr + size)` belongs to a live table. */
  overlaps(paddr: number, size: number): boolean {
    return this.forSlots(paddr, size, (b, w, m) => (b[w]! & m) !== 0, false);
  }

  add(paddr: number, size: number): void {
    this.forSlots(paddr, size, (b, w, m) => ((b[w] = b[w]! | m), false), true);
  }

  remove(paddr: number, size: number): void {
    this.forSlots(paddr, size, (b, w, m) => ((b[w] = b[w]! & ~m), false), false);
  }
}
