import type { Paddr, PhysMemoryAccess } from '@io-pgtable/allocator-api';

/** log2 of the storage chunk: 1 MiB, the largest table (16 concatenated 64K granules). */
export const CHUNK_SHIFT = 20;
export const CHUNK_BYTES = 1 << CHUNK_SHIFT;
const CHUNK_WORDS = CHUNK_BYTES >>> 2;
const ZERO_CHUNK = new Uint32Array(CHUNK_WORDS);

/** Who touches memory: the page-table code, a plugin, or the device (IOMMU model). */
export type Accessor = 'pgtable' | 'allocator' | 'device';
export type AccessKind = 'write' | 'zero' | 'clean' | 'read';

/**
 * Access control hook: secure-share installs one so that CPU writes, zeroing and cache
 * maintenance of assigned pages are seen. It may throw to model a fault.
 */
export interface AccessGuard {
  check(kind: AccessKind, paddr: Paddr, size: number, who: Accessor): void;
}

/**
 * Sparse simulated physical memory. Storage is allocated in 1 MiB chunks of 32-bit
 * words the first time a chunk is written, so a 52-bit physical space costs nothing
 * until touched. A naturally aligned table of up to 1 MiB always lies in one chunk,
 * which is what lets the page-table code index descriptors directly in a typed array.
 *
 * Descriptors are little-endian 64-bit values stored as two words: `lo` (bits 0..31)
 * at word 2i and `hi` (bits 32..63) at word 2i+1.
 */
export class PhysMemory implements PhysMemoryAccess {
  private readonly chunks = new Map<number, Uint32Array>();
  private lastKey = -1;
  private lastChunk: Uint32Array = ZERO_CHUNK;
  /** Installed by an access-control model (secure-share); null when memory is open. */
  guard: AccessGuard | null = null;

  /** Number of 1 MiB chunks that have been touched. */
  get touchedChunks(): number {
    return this.chunks.size;
  }

  /**
   * The word array holding `paddr`, created zeroed on first use. Callers index it with
   * {@link wordIndex}. Cached for the common case of consecutive accesses to one chunk.
   */
  chunk(paddr: Paddr): Uint32Array {
    const key = Math.floor(paddr / CHUNK_BYTES);
    if (key === this.lastKey) return this.lastChunk;
    let c = this.chunks.get(key);
    if (c === undefined) {
      c = new Uint32Array(CHUNK_WORDS);
      this.chunks.set(key, c);
    }
    this.lastKey = key;
    this.lastChunk = c;
    return c;
  }

  /** Like {@link chunk} but never allocates: untouched memory reads as a shared zero chunk. */
  peek(paddr: Paddr): Uint32Array {
    const key = Math.floor(paddr / CHUNK_BYTES);
    if (key === this.lastKey) return this.lastChunk;
    const c = this.chunks.get(key);
    if (c === undefined) return ZERO_CHUNK;
    this.lastKey = key;
    this.lastChunk = c;
    return c;
  }

  /** Word index of `paddr` inside its chunk. */
  static wordIndex(paddr: Paddr): number {
    return (paddr % CHUNK_BYTES) >>> 2;
  }

  /** Read the 64-bit descriptor at `paddr` as a bigint (API boundary; not for hot loops). */
  read64(paddr: Paddr): bigint {
    const c = this.peek(paddr);
    const w = PhysMemory.wordIndex(paddr);
    return (BigInt(c[w + 1]!) << 32n) | BigInt(c[w]!);
  }

  /** Write a 64-bit value at `paddr` (test and tooling use; the core writes words directly). */
  write64(paddr: Paddr, value: bigint, who: Accessor = 'allocator'): void {
    this.guard?.check('write', paddr, 8, who);
    const c = this.chunk(paddr);
    const w = PhysMemory.wordIndex(paddr);
    c[w] = Number(value & 0xffffffffn);
    c[w + 1] = Number((value >> 32n) & 0xffffffffn);
  }

  /** Read `size` bytes (a multiple of 4) as words; used by the device model and dumps. */
  readWords(paddr: Paddr, size: number): Uint32Array {
    const c = this.peek(paddr);
    const w = PhysMemory.wordIndex(paddr);
    return c.slice(w, w + (size >>> 2));
  }

  zero(paddr: Paddr, size: number, who: Accessor = 'allocator'): void {
    this.guard?.check('zero', paddr, size, who);
    this.forEachSpan(paddr, size, (c, w, n) => {
      if (c !== ZERO_CHUNK) c.fill(0, w, w + n);
    }, false);
  }

  isZero(paddr: Paddr, size: number): boolean {
    let p = paddr;
    let left = size;
    while (left > 0) {
      const inChunk = Math.min(left, CHUNK_BYTES - (p % CHUNK_BYTES));
      const c = this.peek(p);
      if (c !== ZERO_CHUNK) {
        const start = PhysMemory.wordIndex(p);
        for (let i = start, end = start + (inChunk >>> 2); i < end; i++) if (c[i] !== 0) return false;
      }
      p += inChunk;
      left -= inChunk;
    }
    return true;
  }

  clean(paddr: Paddr, size: number, who: Accessor = 'allocator'): void {
    this.guard?.check('clean', paddr, size, who);
  }

  /** Fill a range with a byte pattern (tests use it to poison freed memory). */
  fill(paddr: Paddr, size: number, byte: number, who: Accessor = 'allocator'): void {
    this.guard?.check('write', paddr, size, who);
    const word = (byte & 0xff) * 0x01010101;
    this.forEachSpan(paddr, size, (c, w, n) => c.fill(word, w, w + n), true);
  }

  private forEachSpan(
    paddr: Paddr,
    size: number,
    fn: (c: Uint32Array, word: number, words: number) => void,
    create: boolean,
  ): void {
    let p = paddr;
    let left = size;
    while (left > 0) {
      const inChunk = Math.min(left, CHUNK_BYTES - (p % CHUNK_BYTES));
      fn(create ? this.chunk(p) : this.peek(p), PhysMemory.wordIndex(p), inChunk >>> 2);
      p += inChunk;
      left -= inChunk;
    }
  }
}
