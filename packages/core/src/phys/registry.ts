import { CHUNK_BYTES } from './memory.js';

/** The smallest table allocation: one bit of the registry per 64 bytes. */
const SLOT = 64;
const SLOTS_PER_CHUNK = CHUNK_BYTES / SLOT;
const WORDS_PER_CHUNK = SLOTS_PER_CHUNK / 32;

const OVERLAPS = 0;
const ADD = 1;
const REMOVE = 2;

/**
 * Which 64-byte slots of physical memory hold a live page table. Lets the core reject
 * an allocator that hands out memory overlapping a live table in O(size / 2 KiB), with
 * one bitmap per storage chunk (a concatenated PGD may span several).
 */
export class TableRegistry {
  private readonly chunks = new Map<number, Uint32Array>();

  /** True if any slot of `[paddr, paddr + size)` belongs to a live table. */
  overlaps(paddr: number, size: number): boolean {
    return this.apply(paddr, size, OVERLAPS);
  }

  add(paddr: number, size: number): void {
    this.apply(paddr, size, ADD);
  }

  remove(paddr: number, size: number): void {
    this.apply(paddr, size, REMOVE);
  }

  /** Visit the slots of the range chunk by chunk (no closure per call: allocation is a hot path). */
  private apply(paddr: number, size: number, op: number): boolean {
    let slot = Math.floor(paddr / SLOT);
    let left = Math.max(1, Math.ceil(size / SLOT));
    while (left > 0) {
      const key = Math.floor(slot / SLOTS_PER_CHUNK);
      const first = slot - key * SLOTS_PER_CHUNK;
      const count = Math.min(left, SLOTS_PER_CHUNK - first);
      let b = this.chunks.get(key);
      if (b === undefined && op === ADD) this.chunks.set(key, (b = new Uint32Array(WORDS_PER_CHUNK)));
      if (b !== undefined) {
        for (let s = first, end = first + count; s < end; ) {
          const bit = s & 31;
          const n = Math.min(32 - bit, end - s);
          const mask = n === 32 ? -1 : ((1 << n) - 1) << bit;
          const w = s >>> 5;
          if (op === OVERLAPS) {
            if ((b[w]! & mask) !== 0) return true;
          } else if (op === ADD) b[w] = b[w]! | mask;
          else b[w] = b[w]! & ~mask;
          s += n;
        }
      }
      slot += count;
      left -= count;
    }
    return false;
  }
}
