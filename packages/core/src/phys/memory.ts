import type { Paddr, PhysMemoryAccess } from '@io-pgtable/allocator-api';

/**
 * log2 of the storage chunk: 64 KiB, the largest granule. Every table but a concatenated
 * PGD (up to 1 MiB) fits in one chunk; such a PGD is granule-aligned, so each of its
 * granule pages (the most one map or unmap call touches) lies in one chunk. Small chunks
 * keep the storage close to the tables' own size (the last chunk is the only slack).
 */
export const CHUNK_SHIFT = 16;
export const CHUNK_BYTES = 1 << CHUNK_SHIFT;
/** Exact (a power of two): a multiply, where a division by a module constant is a divide (see hi32). */
const PER_CHUNK = 1 / CHUNK_BYTES;
const PER_FRAME = 1 / 0x1000;
/** Writes MemoryStore remembers the range of (a power of two). */
export const WRITE_LOG = 4;
/** The storage chunk of `paddr`: chunkOf(paddr). */
export function chunkOf(paddr: number): number {
  return Math.floor(paddr * PER_CHUNK);
}
const CHUNK_WORDS = CHUNK_BYTES >>> 2;
const ZERO_CHUNK = new Uint32Array(CHUNK_WORDS);
const FRAME_SHIFT = 12;
const FRAMES_PER_CHUNK = CHUNK_BYTES >>> FRAME_SHIFT;
const CLEAN_FRAMES = new Uint8Array(FRAMES_PER_CHUNK);

/** Who touches memory: the page-table code, a plugin, or the device (IOMMU model). */
export type Accessor = 'pgtable' | 'allocator' | 'device';
/** The accessors a caller of the public API may claim: device accesses come only from core's IOMMU model. */
export type HostAccessor = Exclude<Accessor, 'device'>;
/**
 * `release`: an allocator is about to take a page back for reuse by the host (a `free`
 * into the bottom allocator). A page still assigned away from the host must be refused.
 */
export type AccessKind = 'write' | 'zero' | 'clean' | 'read' | 'release';

/**
 * Access control hook: secure-share installs one so that CPU writes, zeroing, cache
 * maintenance, reads and releases of assigned pages are seen. It may throw to model a fault.
 */
export interface AccessGuard {
  check(kind: AccessKind, paddr: Paddr, size: number, who: Accessor): void;
}

/**
 * The storage behind a {@link PhysMemory}: live word arrays for the page-table engine,
 * the IOMMU model and the replay dumps. Never reachable from the public API (it is not
 * exported from the package entry point, and PhysMemory keeps it in a private field), so
 * nothing outside core can write memory except through the guarded methods.
 */
export class MemoryStore {
  readonly chunks = new Map<number, Uint32Array>();
  /**
   * Per chunk, which 4 KiB frames have ever been handed out for writing. A frame never
   * written is known to be zero without reading it: reading fresh memory first would make
   * the host fault each page in twice (zero page, then copy-on-write).
   */
  readonly written = new Map<number, Uint8Array>();
  /**
   * Bumped by every write that does not come from a page table's own fast paths (public
   * writes, zeroing, the IOMMU model): a page table's walk cache is valid only while no
   * such write touched a table above its leaves (see LpaeEngine and logAt below).
   */
  gen = 0;
  /**
   * Where the last WRITE_LOG bumps of `gen` wrote: the bump from `g` to `g + 1` records its
   * range at index `g % WRITE_LOG`. A walk cache a few writes behind asks whether any of them
   * touched a table above its leaves (LpaeEngine.renewWalkCache) instead of being emptied:
   * the allocator's zeroing of each new table would otherwise empty it on every allocation.
   */
  readonly logAt = new Float64Array(WRITE_LOG);
  readonly logSize = new Float64Array(WRITE_LOG);
  /** Page tables live on this memory; a walk cache is used only while it is 1. */
  tables = 0;
  lastKey = -1;
  lastChunk: Uint32Array = ZERO_CHUNK;
  lastWritten: Uint8Array = CLEAN_FRAMES;
  /** Every installed guard composed (access control first, then the open slot); null when none. */
  guard: AccessGuard | null = null;

  /**
   * The word array holding `paddr`, created zeroed on first use, for writing. Callers index
   * it with {@link PhysMemory.wordIndex}. Only the 4 KiB frame of `paddr` is recorded as
   * written: to write elsewhere through the same array, declare the range with
   * {@link touch} first (the engine touches every table when it is allocated). Callers
   * run `guard` before writing.
   */
  chunk(paddr: Paddr): Uint32Array {
    // The caller may write anywhere in the frame of paddr (see above).
    this.wrote(Math.floor(paddr * PER_FRAME) * 0x1000, 0x1000);
    const key = chunkOf(paddr);
    if (key !== this.lastKey) this.load(key, true);
    this.lastWritten[(paddr % CHUNK_BYTES) >>> FRAME_SHIFT] = 1;
    return this.lastChunk;
  }

  /** Like {@link chunk} but never allocates: untouched memory reads as a shared zero chunk. For reading only. */
  peek(paddr: Paddr): Uint32Array {
    const key = chunkOf(paddr);
    if (key === this.lastKey) return this.lastChunk;
    return this.load(key, false) ? this.lastChunk : ZERO_CHUNK;
  }

  /** {@link peek} by chunk number (`paddr >> CHUNK_SHIFT`), for walkers that keep addresses in 32-bit halves. */
  peekKey(key: number): Uint32Array {
    if (key === this.lastKey) return this.lastChunk;
    return this.load(key, false) ? this.lastChunk : ZERO_CHUNK;
  }

  /**
   * Declare `[paddr, paddr + size)` as about to be written (a new page table: the caller
   * will write anywhere in it through {@link chunk}). Materialises its chunk.
   */
  touch(paddr: Paddr, size: number): void {
    // No gen bump: no byte changes.
    let p = paddr;
    let left = size;
    while (left > 0) {
      const inChunk = Math.min(left, CHUNK_BYTES - (p % CHUNK_BYTES));
      const key = chunkOf(p);
      if (key !== this.lastKey) this.load(key, true);
      this.lastWritten.fill(1, (p % CHUNK_BYTES) >>> FRAME_SHIFT, ((p % CHUNK_BYTES) + inChunk + 0xfff) >>> FRAME_SHIFT);
      p += inChunk;
      left -= inChunk;
    }
  }

  /** Record a write of [paddr, paddr + size) that walk caches must hear of (bumps gen). */
  wrote(paddr: Paddr, size: number): void {
    const i = this.gen % WRITE_LOG;
    this.logAt[i] = paddr;
    this.logSize[i] = size;
    this.gen++;
  }

  /**
   * True if no frame of the range has been written since it was last zeroed (or ever):
   * then it is all zero, known in O(frames) without reading a word. False says nothing.
   */
  knownZero(paddr: Paddr, size: number): boolean {
    for (let f = Math.floor(paddr / 0x1000), end = Math.ceil((paddr + size) / 0x1000); f < end; f++) {
      const key = Math.floor(f / FRAMES_PER_CHUNK);
      if ((key === this.lastKey || this.load(key, false)) && this.lastWritten[f % FRAMES_PER_CHUNK] === 1) return false;
    }
    return true;
  }

  /** True if every byte of the range is zero; not an access (the strict-mode allocation check). */
  isZero(paddr: Paddr, size: number): boolean {
    let p = paddr;
    let left = size;
    while (left > 0) {
      // One frame (or the rest of the range) at a time; frames never written are zero.
      const inFrame = Math.min(left, 0x1000 - (p % 0x1000));
      const key = chunkOf(p);
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

  /**
   * The whole frames of a range that was just zeroed read as zero again without a scan:
   * isZero is then O(1) for a recycled, re-zeroed table, as for a fresh one.
   */
  forgetZeroed(paddr: Paddr, size: number): void {
    for (let f = Math.ceil(paddr / 0x1000), end = Math.floor((paddr + size) / 0x1000); f < end; f++) {
      const key = Math.floor(f / FRAMES_PER_CHUNK);
      if (key === this.lastKey || this.load(key, false)) this.lastWritten[f % FRAMES_PER_CHUNK] = 0;
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

  /** Run `fn` over the word spans of a range, chunk by chunk. */
  forEachSpan(paddr: Paddr, size: number, fn: (c: Uint32Array, word: number, words: number) => void, create: boolean): void {
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

/** Zero one span (a shared function: allocators zero a page per allocation). */
function zeroSpan(c: Uint32Array, w: number, n: number): void {
  if (c !== ZERO_CHUNK) c.fill(0, w, w + n);
}

/** Runs several guards in order; the first that throws wins. */
class GuardChain implements AccessGuard {
  constructor(private readonly guards: readonly AccessGuard[]) {}
  check(kind: AccessKind, paddr: Paddr, size: number, who: Accessor): void {
    const gs = this.guards;
    for (let i = 0; i < gs.length; i++) gs[i]!.check(kind, paddr, size, who);
  }
}

/**
 * The store of a memory, for core's engine, IOMMU model and replay. Set by PhysMemory's
 * static block (only the class body sees its private fields) and not exported from the
 * package entry point.
 */
export let storeOf: (memory: PhysMemory) => MemoryStore;

function isGuard(g: unknown): g is AccessGuard {
  return typeof g === 'object' && g !== null && typeof (g as AccessGuard).check === 'function';
}

function hostAccessor(who: unknown): HostAccessor {
  if (who === 'pgtable' || who === 'allocator') return who;
  // A caller claiming to be the device would skip access control: devices reach memory through hw.Iommu.
  throw new TypeError(`[iopgt] [memory] accessor ${JSON.stringify(String(who)).slice(0, 40)} is not 'pgtable' or 'allocator' (device accesses go through hw.Iommu)`);
}

/**
 * Sparse simulated physical memory. Storage is allocated in 64 KiB chunks of 32-bit
 * words the first time a chunk is written, so a 52-bit physical space costs nothing
 * until touched. A granule-aligned table page always lies in one chunk, which is what
 * lets the page-table code index descriptors directly in a typed array.
 *
 * Descriptors are little-endian 64-bit values stored as two words: `lo` (bits 0..31)
 * at word 2i and `hi` (bits 32..63) at word 2i+1.
 *
 * Every public write, zero, clean, read and release goes through the installed guards.
 * There is no public access to the word arrays: reads return copies.
 */
export class PhysMemory implements PhysMemoryAccess {
  readonly #store = new MemoryStore();
  /** Guards added with {@link addGuard}: only the function it returned removes one. */
  #added: readonly AccessGuard[] = [];
  #slot: AccessGuard | null = null;

  static {
    storeOf = (m: PhysMemory) => m.#store;
  }

  /**
   * An open guard slot for probes and observers (core's IOMMU model, tests): anyone may
   * set or clear it, so access control does not live here but in {@link addGuard}, which
   * this slot can neither see nor remove. It runs after the added guards.
   */
  get guard(): AccessGuard | null {
    return this.#slot;
  }
  set guard(g: AccessGuard | null) {
    if (g !== null && !isGuard(g)) throw new TypeError('[iopgt] [memory] guard must be null or an object with a check() method');
    this.#slot = g;
    this.#compose();
  }

  /**
   * Install `guard` for good: it sees every access until the returned function is called,
   * and nothing else can remove it (access control hands that function to no one).
   */
  addGuard(guard: AccessGuard): () => void {
    if (!isGuard(guard)) throw new TypeError('[iopgt] [memory] addGuard needs an object with a check() method');
    this.#added = [...this.#added, guard];
    this.#compose();
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      const i = this.#added.indexOf(guard);
      if (i >= 0) this.#added = [...this.#added.slice(0, i), ...this.#added.slice(i + 1)];
      this.#compose();
    };
  }

  #compose(): void {
    const all = this.#slot === null ? this.#added : [...this.#added, this.#slot];
    this.#store.guard = all.length === 0 ? null : all.length === 1 ? all[0]! : new GuardChain(all);
  }

  /** Run every guard for an access the caller is about to make; throws what a guard throws. */
  checkAccess(kind: AccessKind, paddr: Paddr, size: number, who: Accessor): void {
    this.#store.guard?.check(kind, paddr, size, who);
  }

  /** Number of storage chunks ({@link CHUNK_BYTES} each) that have been touched. */
  get touchedChunks(): number {
    return this.#store.chunks.size;
  }

  /**
   * Word index of `paddr` inside its chunk. `>>> 0` is ToUint32, exact for any integer
   * below 2^53, and much cheaper than a floating-point `%`.
   */
  static wordIndex(paddr: Paddr): number {
    return ((paddr >>> 0) & (CHUNK_BYTES - 1)) >>> 2;
  }

  /** Read the 64-bit descriptor at `paddr` as a bigint (API boundary; not for hot loops). */
  read64(paddr: Paddr, who: HostAccessor = 'allocator'): bigint {
    this.#store.guard?.check('read', paddr, 8, hostAccessor(who));
    const c = this.#store.peek(paddr);
    const w = PhysMemory.wordIndex(paddr);
    return (BigInt(c[w + 1]!) << 32n) | BigInt(c[w]!);
  }

  /** Read the 32-bit word at `paddr` (4-byte aligned). */
  read32(paddr: Paddr, who: HostAccessor = 'allocator'): number {
    this.#store.guard?.check('read', paddr, 4, hostAccessor(who));
    return this.#store.peek(paddr)[PhysMemory.wordIndex(paddr)]!;
  }

  /** A copy of `size` bytes (4-byte aligned, a multiple of 4) as words; used by dumps. */
  readWords(paddr: Paddr, size: number, who: HostAccessor = 'allocator'): Uint32Array {
    this.#store.guard?.check('read', paddr, size, hostAccessor(who));
    const out = new Uint32Array(size >>> 2);
    let at = 0;
    this.#store.forEachSpan(paddr, size, (c, w, n) => {
      out.set(c.subarray(w, w + n), at);
      at += n;
    }, false);
    return out;
  }

  /** Write a 64-bit value at `paddr` (test and tooling use; the core writes words directly). */
  write64(paddr: Paddr, value: bigint, who: HostAccessor = 'allocator'): void {
    this.#store.guard?.check('write', paddr, 8, hostAccessor(who));
    const c = this.#store.chunk(paddr);
    const w = PhysMemory.wordIndex(paddr);
    c[w] = Number(value & 0xffffffffn);
    c[w + 1] = Number((value >> 32n) & 0xffffffffn);
  }

  /**
   * Declare `[paddr, paddr + size)` as about to be written: materialises its chunk and
   * marks its frames written. Changes no byte.
   */
  touch(paddr: Paddr, size: number): void {
    this.#store.touch(paddr, size);
  }

  zero(paddr: Paddr, size: number, who: HostAccessor = 'allocator'): void {
    this.#store.guard?.check('zero', paddr, size, hostAccessor(who));
    this.#store.wrote(paddr, size);
    this.#store.forEachSpan(paddr, size, zeroSpan, false);
    this.#store.forgetZeroed(paddr, size);
  }

  /** True if every byte of `[paddr, paddr + size)` is zero. Not guarded: allocators check fresh pages with it. */
  isZero(paddr: Paddr, size: number): boolean {
    return this.#store.isZero(paddr, size);
  }

  clean(paddr: Paddr, size: number, who: HostAccessor = 'allocator'): void {
    this.#store.guard?.check('clean', paddr, size, hostAccessor(who));
  }

  /** Fill a range with a byte pattern (tests use it to poison freed memory). */
  fill(paddr: Paddr, size: number, byte: number, who: HostAccessor = 'allocator'): void {
    this.#store.guard?.check('write', paddr, size, hostAccessor(who));
    const word = (byte & 0xff) * 0x01010101;
    this.#store.forEachSpan(paddr, size, (c, w, n) => c.fill(word, w, w + n), true);
  }
}
