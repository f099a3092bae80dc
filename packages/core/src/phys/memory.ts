import type { Paddr, PhysMemoryAccess } from '@io-pgtable/allocator-api';

/** log2 of the storage chunk: 1 MiB, the largest table (16 concatenated 64K granules). */
export const CHUNK_SHIFT = 20;
export const CHUNK_BYTES = 1 << CHUNK_SHIFT;
const CHUNK_WORDS = CHUNK_BYTES >>> 2;
const ZERO_CHUNK = new Uint32Array(CHUNK_WORDS);
const FRAME_SHIFT = 12;
const FRAMES_PER_CHUNK = CHUNK_BYTES >>> FRAME_SHIFT;
const CLEAN_FRAMES = new Uint8Array(FRAMES_PER_CHUNK);

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
  /**
   * Per chunk, which 4 KiB frames have ever been handed out for writing. A frame never
   * written is known to be zero without reading it: reading fresh memory first would make
   * the host fault each page in twice (zero page, then copy-on-write).
   */
  private readonly written = new Map<number, Uint8Array>();
  private lastKey = -1;
  private lastChunk: Uint32Array = ZERO_CHUNK;
  private lastWritten: Uint8Array = CLEAN_FRAMES;
  /** Installed by an access-control model (secure-share); null when memory is open. */
  guard: AccessGuard | null = null;

  /** Number of 1 MiB chunks that have been touched. */
  get touchedChunks(): number {
    return this.chunks.size;
  }

  /**
   * The word array holding `paddr`, created zeroed on first use, for writing. Callers index
   * it with {@link wordIndex}. Only the 4 KiB frame of `paddr` is recorded as written: to
   * write elsewhere through the same array, declare the range with {@link touch} first
   * (page tables do: the core touches every table when it is allocated).
   */
  chunk(paddr: Paddr): Uint32Array {
    const key = Math.floor(paddr / CHUNK_BYTES);
    if (key !== this.lastKey) this.load(key, true);
    this.lastWritten[(paddr % CHUNK_BYTES) >>> FRAME_SHIFT] = 1;
    return this.lastChunk;
  }

  /**
   * Declare `[paddr, paddr + size)` as about to be written (a new page table: the caller
   * will write anywhere in it through {@link chunk}). Materialises its chunk.
   */
  touch(paddr: Paddr, size: number): void {
    let p = paddr;
    let left = size;
    while (left > 0) {
      const inChunk = Math.min(left, CHUNK_BYTES - (p % CHUNK_BYTES));
      const key = Math.floor(p / CHUNK_BYTES);
      if (key !== this.lastKey) this.load(key, true);
      this.lastWritten.fill(1, (p % CHUNK_BYTES) >>> FRAME_SHIFT, ((p % CHUNK_BYTES) + inChunk + 0xfff) >>> FRAME_SHIFT);
      p += inChunk;
      left -= inChunk;
    }
  }

  /** Make `key` the cached chunk; with `create`, allocate it if missing. False if absent. */
  private load(key: number, create: boolean): boolean {
    let c = this.chunks.get(key);
    let w = this.written.get(key);
    if (c === undefined || w === undefined) {
      if (!create) return false;
      c = new Uint32Array(CHUNK_WORDS);
      w = new Uint8Array(FRAMES_PER_CHUNK);
      this.chunks.set(key, c);
      this.written.set(key, w);
    }
    this.lastKey = key;
    this.lastChunk = c;
    this.lastWritten = w;
    return true;
  }

  /** Like {@link chunk} but never allocates: untouched memory reads as a shared zero chunk. */
  peek(paddr: Paddr): Uint32Array {
    const key = Math.floor(paddr / CHUNK_BYTES);
    if (key === this.lastKey) return this.lastChunk;
    return this.load(key, false) ? this.lastChunk : ZERO_CHUNK;
  }

  /**
   * Word index of `paddr` inside its chunk. `>>> 0` is ToUint32, exact for any integer
   * below 2^53, and much cheaper than a floating-point `%`.
   */
  static wordIndex(paddr: Paddr): number {
    return ((paddr >>> 0) & (CHUNK_BYTES - 1)) >>> 2;
  }

  /** {@link peek} by chunk number (`paddr >> 20`), for walkers that keep addresses in 32-bit halves. */
  peekKey(key: number): Uint32Array {
    if (key === this.lastKey) return this.lastChunk;
    return this.load(key, false) ? this.lastChunk : ZERO_CHUNK;
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
    // Whole frames zeroed read as zero without a scan again (isZero is O(1) for them): a
    // recycled, re-zeroed table is verified as cheaply as a fresh one.
    for (let f = Math.ceil(paddr / 0x1000), end = Math.floor((paddr + size) / 0x1000); f < end; f++) {
      const key = Math.floor(f / FRAMES_PER_CHUNK);
      if (key === this.lastKey || this.load(key, false)) this.lastWritten[f % FRAMES_PER_CHUNK] = 0;
    }
  }

  isZero(paddr: Paddr, size: number): boolean {
    let p = paddr;
    let left = size;
    while (left > 0) {
      // One frame (or the rest of the range) at a time; frames never written are zero.
      const inFrame = Math.min(left, 0x1000 - (p % 0x1000));
      const key = Math.floor(p / CHUNK_BYTES);
      if ((key === this.lastKey || this.load(key, false)) && this.lastWritten[(p % CHUNK_BYTES) >>> FRAME_SHIFT] === 1) {
        const c = this.lastChunk;
        const start = PhysMemory.wordIndex(p);
        for (let i = start, end = start + (inFrame >>> 2); i < end; i++) if (c[i] !== 0) return false;
      }
      p += inFrame;
      left -= inFrame;
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
    if (create) this.touch(paddr, size);
    let p = paddr;
    let left = size;
    while (left > 0) {
      const inChunk = Math.min(left, CHUNK_BYTES - (p % CHUNK_BYTES));
      fn(this.peek(p), PhysMemory.wordIndex(p), inChunk >>> 2);
      p += inChunk;
      left -= inChunk;
    }
  }
}
