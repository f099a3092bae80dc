import {
  AllocatorMisuseError,
  TableLedger,
  asAllocatorError,
  isPowerOfTwo,
  type AllocCtx,
  type AllocatorCaps,
  type AllocatorRule,
  type AllocatorStats,
  type FlushToken,
  type FreeCtx,
  type Paddr,
  type PhysMemoryAccess,
  type TableAllocator,
} from '@io-pgtable/allocator-api';
import {
  CAP_MAX_SIZE,
  CAP_MAY_FAIL,
  CAP_MIN_SIZE,
  CAP_REUSE,
  CAP_ZEROES,
  FEATURE_RESERVE,
  IMPORT_MODULE,
  REUSE_POLICIES,
  ZERO_POLICIES,
  ctxOf,
  freeFlagsOf,
  gfpOf,
  type AbiExports,
} from './abi.js';
import { CAllocatorError, CAllocatorLoadError, type CFault } from './errors.js';
import { wasm } from './wasm.js';
import { checkAbiVersion, compileCAllocator, type CAllocatorModule, type WasmSource } from './module.js';

/**
 * The simulated physical memory the C code reaches through its imports. `PhysMemory` of
 * `@io-pgtable/core` is one; `read64`/`write64` are needed only by C code that calls
 * `iopgt_read64`/`iopgt_write64`.
 */
export interface CMemory extends PhysMemoryAccess {
  read64?(paddr: Paddr): bigint;
  write64?(paddr: Paddr, value: bigint, who?: 'allocator'): void;
}

export interface CAllocatorOptions {
  /** The backing store the C code's `iopgt_backing_alloc`/`iopgt_backing_free` reach. */
  readonly backing: TableAllocator;
  /** The memory table pages live in (default `backing.memory`). */
  readonly memory?: CMemory;
  /** Name in messages and `caps.name` (default: the C `caps.name`). */
  readonly name?: string;
  /** Receives every `iopgt_log` line (default: kept in {@link CAllocator.logs} only). */
  readonly log?: (line: string) => void;
}

/** A prepared two-phase reservation of a C allocator (`ops.reserve`). */
export interface CReservation {
  /** The job handle the C code returned. */
  readonly job: number;
  /** Tables reserved by prepare. */
  readonly reserved: number;
  /** Tables this job's run phase has taken so far (`ops.consumed`). */
  readonly consumed: number;
  /** Run `fn` with this job's reservation active (`run_begin` .. `run_end`). */
  run<T>(fn: () => T): T;
  /** Give back what the job did not consume; exactly once (later calls do nothing). */
  release(): void;
}

/** A C allocator adapted to the contract. */
export interface CAllocator extends TableAllocator {
  readonly inner: TableAllocator;
  /** Where the wasm came from. */
  readonly source: string;
  /** True when the C code implements the reservation ops (`reserve` .. `consumed`). */
  readonly supportsReservation: boolean;
  /** The last 64 `iopgt_log` lines. */
  readonly logs: readonly string[];
  /** Runs the C `drain` op (a no-op when it has none). */
  drain(): void;
  /** The error that made this instance unusable, or null. */
  readonly failure: CAllocatorError | null;
  /**
   * Prepare a reservation of `tables` tables of `tableSize` bytes (`ops.reserve`); null
   * when the C code could not reserve them (it must then have given everything back).
   * @throws CAllocatorError `bad-call` when the C code has no reservation ops.
   */
  reserve(tables: number, tableSize: number): CReservation | null;
}

const TWO_32 = 2 ** 32;
/** Physical addresses are below 2^52 (the largest LPAE output address space). */
const PA_HI_LIMIT = 2 ** 20;
const LOG_LINES = 64;
const decoder = new TextDecoder();

function hex(p: number): string {
  return `0x${p.toString(16)}`;
}

/**
 * Instantiate a C allocator from its wasm (a path, bytes or a compiled module) over
 * `opts.backing`. Each call creates a fresh instance (its own linear memory and state);
 * the module itself is compiled once per path.
 *
 * @example
 * const alloc = loadCAllocator('alloc.wasm', { backing: createSystemAllocator() });
 */
export function loadCAllocator(src: WasmSource | CAllocatorModule, opts: CAllocatorOptions): CAllocator {
  return createCAllocator(compileCAllocator(src), opts);
}

/** Instantiate one allocator from a module compiled with {@link compileCAllocator}. */
export function createCAllocator(mod: CAllocatorModule, opts: CAllocatorOptions): CAllocator {
  const backing = opts.backing;
  const memory: CMemory = opts.memory ?? backing.memory;
  let name = opts.name ?? 'c-allocator';
  let ex!: AbiExports;
  let u8 = new Uint8Array(0);
  let u32 = new Uint32Array(0);
  let scratch = 0;
  let failure: CAllocatorError | null = null;
  const logs: string[] = [];

  /** Blocks the C code holds from the backing store: paddr -> size. */
  const held = new Map<Paddr, number>();
  /** Distinct sizes in `held`, so containment is a few lookups. */
  const heldSizes: number[] = [];
  let heldBytes = 0;
  let backingCalls = 0;
  let backingFreed = 0;
  /** The table a `free` call is handing to the C code (it may give that very page back at once). */
  let freeing = -1;
  /** The request being served, forwarded to the backing store when the gfp matches. */
  let current: AllocCtx | null = null;
  let currentGfp = -1;
  const ctxCache = new Map<number, AllocCtx>();
  let call = 'init';

  /** Tables handed out and not freed; created once the C name is known. */
  let live!: TableLedger;
  /**
   * Tables freed and not handed out again, while their block is still held: tells a
   * double free from a foreign one. Bounded by the memory held (entries go with the block).
   */
  const freed = new Set<Paddr>();
  let smallestTable = Infinity;

  function views(): void {
    const buf = ex.memory.buffer;
    u8 = new Uint8Array(buf);
    u32 = new Uint32Array(buf);
  }
  /** Typed arrays over a grown memory are detached (length 0): re-create them. */
  function mem32(): Uint32Array {
    if (u32.length === 0) views();
    return u32;
  }
  function cString(ptr: number, max: number): string {
    if (u8.length === 0) views();
    if (ptr === 0 || ptr >= u8.length) return '';
    let end = ptr;
    const limit = Math.min(u8.length, ptr + max);
    while (end < limit && u8[end] !== 0) end++;
    return decoder.decode(u8.subarray(ptr, end));
  }

  function fault(rule: AllocatorRule, kind: CFault, message: string, paddr?: number): CAllocatorError {
    return new CAllocatorError(name, rule, kind, call, message, paddr);
  }
  /** A host call the C code made with bad arguments: stops the C call (and the instance). */
  function badCall(rule: AllocatorRule, message: string, paddr?: number): never {
    throw fault(rule, 'bad-call', message, paddr);
  }

  /** The base of the held block containing `[pa, pa + size)`, or undefined. */
  function containing(pa: number, size: number): number | undefined {
    for (let i = 0; i < heldSizes.length; i++) {
      const s = heldSizes[i]!;
      if (s < size) continue;
      const base = pa - (pa % s);
      if (held.get(base) === s && pa + size <= base + s) return base;
    }
    return undefined;
  }
  function paOf(lo: number, hi: number, what: string): number {
    if (hi >>> 0 >= PA_HI_LIMIT) badCall('in-range', `${what} 0x${(hi >>> 0).toString(16)}${(lo >>> 0).toString(16).padStart(8, '0')} is above 2^52`);
    return (hi >>> 0) * TWO_32 + (lo >>> 0);
  }
  function ownRange(lo: number, hi: number, size: number, what: string): number {
    const pa = paOf(lo, hi, what);
    if (size === 0 || containing(pa, size) === undefined) {
      badCall('access-violation', `${what} [${hex(pa)}, +${size}) is not inside a backing page this allocator holds`, pa);
    }
    return pa;
  }
  function writeU64(ptr: number, value: number): void {
    if (ptr % 4 !== 0 || ptr + 8 > ex.memory.buffer.byteLength) badCall('in-range', `result pointer ${hex(ptr)} is not an aligned address in linear memory`);
    const m = mem32();
    m[ptr >>> 2] = value % TWO_32;
    m[(ptr >>> 2) + 1] = Math.floor(value / TWO_32);
  }

  /** A throw from the backing store during a C call, reported when that call returns. */
  let backingError: unknown = null;
  /**
   * Blocks the C code gave back whose backing free threw: still held (and counted in
   * `outstanding`), retried by the next flushDone or drain. The C code cannot be told a
   * free failed, so this side keeps them.
   */
  const parked = new Map<Paddr, number>();
  /** Bytes in `parked`: counted as cached (held, idle, on their way back). */
  let parkedBytes = 0;

  /** Hand a block the C code released back to the backing store; park it if that throws. */
  function giveBack(pa: Paddr, size: number): void {
    try {
      backing.free(pa, size);
    } catch (e) {
      parkError ??= e;
      if (!parked.has(pa)) parkedBytes += size;
      parked.set(pa, size);
      return;
    }
    if (parked.delete(pa)) parkedBytes -= size;
    held.delete(pa);
    heldBytes -= size;
    freed.delete(pa);
    if (smallestTable < size && freed.size > 0) for (let q = pa + smallestTable; q < pa + size; q += smallestTable) freed.delete(q);
    backingFreed++;
  }

  /** A throw from a backing free: reported by the next flushDone or drain, which retry. */
  let parkError: unknown = null;

  /** Retry the parked blocks. */
  function retryParked(): void {
    for (const [pa, size] of [...parked]) giveBack(pa, size);
  }

  /** After a flushDone or drain: a backing free that threw (now or before, and still failing) surfaces, typed. */
  function surfaceParkError(what: string): void {
    if (parkError === null) return;
    const e = parkError;
    parkError = null;
    throw asAllocatorError(e, name, `the backing store (${backing.caps.name}) free, during ${what}, (the block is kept and retried),`);
  }

  /** After a C call: a backing throw it absorbed surfaces now, typed; the instance stays usable. */
  function surfaceBackingError(what: string): void {
    if (backingError === null) return;
    const e = backingError;
    backingError = null;
    throw asAllocatorError(e, name, `the backing store (${backing.caps.name}), during ${what},`);
  }

  const imports: Record<string, (...a: number[]) => number | void> = {
    backing_alloc(size, gfp, out) {
      if (!isPowerOfTwo(size) || size < 64 || size > backing.caps.maxSize) {
        badCall('size', `iopgt_backing_alloc(${size}): the size is not a power of two in [64, ${backing.caps.maxSize}]`);
      }
      let ctx: AllocCtx;
      if (gfp === currentGfp && current !== null) ctx = current;
      else {
        let c = ctxCache.get(gfp);
        if (c === undefined) ctxCache.set(gfp, (c = ctxOf(gfp)));
        ctx = c;
      }
      backingCalls++;
      let pa: Paddr | null;
      try {
        pa = backing.alloc(size, ctx);
      } catch (e) {
        // The C code handles a NULL from below (ENOMEM); a throw through it would leave it
        // mid-operation. Report it after the C call returns (see surfaceBackingError).
        backingError ??= e;
        pa = null;
      }
      if (pa === null) {
        writeU64(out, 0);
        return 0;
      }
      held.set(pa, size);
      if (!heldSizes.includes(size)) heldSizes.push(size);
      heldBytes += size;
      writeU64(out, pa);
      return 1;
    },
    backing_free(lo, hi, size) {
      const pa = paOf(lo, hi, 'iopgt_backing_free of');
      const have = held.get(pa);
      if (have === undefined) badCall('foreign-free', `iopgt_backing_free(${hex(pa)}): not a block this allocator took from the backing store`, pa);
      if (have !== size) badCall('free-size', `iopgt_backing_free(${hex(pa)}, ${size}): the block was taken with size ${have}`, pa);
      // The table being freed right now may go straight back (its flush token is done).
      if (live.has(pa) && pa !== freeing) badCall('foreign-free', `iopgt_backing_free(${hex(pa)}): the page is a live table the page table still uses`, pa);
      giveBack(pa, size);
    },
    mem_zero(lo, hi, size) {
      memory.zero(ownRange(lo, hi, size, 'iopgt_zero of'), size);
    },
    mem_clean(lo, hi, size) {
      memory.clean(ownRange(lo, hi, size, 'iopgt_clean of'), size);
    },
    mem_is_zero(lo, hi, size) {
      return memory.isZero(ownRange(lo, hi, size, 'iopgt_is_zero of'), size) ? 1 : 0;
    },
    mem_write64(lo, hi, vlo, vhi) {
      const pa = ownRange(lo, hi, 8, 'iopgt_write64 at');
      if (pa % 8 !== 0) badCall('aligned', `iopgt_write64 at ${hex(pa)}: not 8-byte aligned`, pa);
      if (memory.write64 === undefined) badCall('access-violation', 'iopgt_write64: the memory given to the loader has no write64');
      memory.write64(pa, (BigInt(vhi! >>> 0) << 32n) | BigInt(vlo! >>> 0), 'allocator');
    },
    mem_read64(lo, hi, out) {
      const pa = ownRange(lo, hi, 8, 'iopgt_read64 at');
      if (pa % 8 !== 0) badCall('aligned', `iopgt_read64 at ${hex(pa)}: not 8-byte aligned`, pa);
      if (memory.read64 === undefined) badCall('access-violation', 'iopgt_read64: the memory given to the loader has no read64');
      const v = memory.read64(pa);
      if (out! % 4 !== 0 || out! + 8 > ex.memory.buffer.byteLength) badCall('in-range', `iopgt_read64 result pointer ${hex(out!)} is outside linear memory`);
      const m = mem32();
      m[out! >>> 2] = Number(v & 0xffffffffn);
      m[(out! >>> 2) + 1] = Number(v >> 32n);
    },
    log(ptr, len) {
      const line = cString(ptr, Math.min(len, 4096));
      if (logs.length === LOG_LINES) logs.shift();
      logs.push(line);
      opts.log?.(line);
    },
    assert_fail(expr, file, line) {
      throw fault('no-throw', 'assert', `IOPGT_ASSERT(${cString(expr, 256)}) failed at ${cString(file, 256)}:${line}`);
    },
  };

  /**
   * Every call into the C code goes through here: a trap, an out-of-bounds access or a
   * host-call error becomes a typed error, and the instance is then unusable (the C state
   * was left mid-operation), so one bad call cannot crash the runner or corrupt later runs.
   */
  function enter<T>(what: string, fn: () => T): T {
    begin(what);
    try {
      const r = fn();
      // A backing alloc that threw inside this call was a NULL to the C code, which handled
      // it (a short refill, a failed reservation): nothing is left to report.
      backingError = null;
      return r;
    } catch (e) {
      return failed(e, what);
    } finally {
      current = null;
      currentGfp = -1;
    }
  }
  /** The start of every call into C: refuses calls once the instance is unusable. */
  function begin(what: string): void {
    if (failure !== null) throw new CAllocatorError(name, failure.rule, 'unusable', what, `the allocator is unusable after an earlier error: ${failure.message}`);
    call = what;
  }
  /** A call into C threw: record why the instance is now unusable, and rethrow typed. */
  function failed(e: unknown, what: string): never {
    failure = translate(e, what);
    // A typed error from the backing store or an access guard keeps its own class
    // (the suite matches on it); everything else surfaces as the CAllocatorError.
    throw (e as { rule?: unknown }).rule !== undefined && !(e instanceof CAllocatorError) ? e : failure;
  }
  function translate(e: unknown, what: string): CAllocatorError {
    if (e instanceof CAllocatorError) return e;
    if (e instanceof wasm.RuntimeError) {
      const oob = /out of bounds/i.test(e.message);
      return new CAllocatorError(name, 'no-throw', oob ? 'out-of-bounds' : 'trap', what, `wasm trap: ${e.message}`);
    }
    if (e instanceof RangeError && /call stack/i.test(e.message)) {
      return new CAllocatorError(name, 'no-throw', 'trap', what, `wasm trap: stack overflow (${e.message})`);
    }
    // An error from the backing store or the memory's access guard: keep its rule.
    const rule = (e as { rule?: AllocatorRule }).rule ?? 'no-throw';
    return new CAllocatorError(name, rule, 'bad-call', what, `a host call failed: ${(e as Error).message ?? String(e)}`);
  }

  let instance: { readonly exports: Record<string, unknown> };
  try {
    instance = new wasm.Instance(mod.module, { [IMPORT_MODULE]: imports });
  } catch (e) {
    throw new CAllocatorLoadError(mod.source, `instantiation failed (${(e as Error).message})`);
  }
  ex = instance.exports as unknown as AbiExports;
  checkAbiVersion(mod.source, ex.iopgt_abi_version());
  views();
  scratch = ex.iopgt_abi_scratch() >>> 2;
  if (opts.name === undefined) name = cString(ex.iopgt_abi_name(), 128) || name;
  live = new TableLedger(name, { wasFreed: (p) => freed.has(p) });
  enter('init', () => ex.iopgt_abi_init());

  const minSize = ex.iopgt_abi_cap(CAP_MIN_SIZE) >>> 0;
  const maxSize = ex.iopgt_abi_cap(CAP_MAX_SIZE) >>> 0;
  const reuse = REUSE_POLICIES[ex.iopgt_abi_cap(CAP_REUSE)];
  const zeroes = ZERO_POLICIES[ex.iopgt_abi_cap(CAP_ZEROES)];
  if (!isPowerOfTwo(minSize) || minSize < 64 || !isPowerOfTwo(maxSize) || maxSize < minSize) {
    throw new CAllocatorLoadError(mod.source, `caps.min_size ${minSize} / max_size ${maxSize} must be powers of two with 64 <= min_size <= max_size`);
  }
  if (reuse === undefined || zeroes === undefined) {
    throw new CAllocatorLoadError(mod.source, 'caps.reuse must be an IOPGT_REUSE_* value and caps.zeroes an IOPGT_ZERO_* value');
  }
  const features = ex.iopgt_abi_features();
  const caps: AllocatorCaps = Object.freeze({
    name,
    minSize,
    maxSize,
    defersFree: reuse === 'after-flush',
    reuse,
    zeroes,
    mayFail: ex.iopgt_abi_cap(CAP_MAY_FAIL) !== 0 || backing.caps.mayFail,
  });

  function reserveJob(tables: number, tableSize: number): CReservation | null {
    if ((features & FEATURE_RESERVE) === 0) throw fault('alloc-outside-op', 'bad-call', 'the C code has no reservation ops (reserve, run_begin, run_end, release, consumed)');
    if (!Number.isSafeInteger(tables) || tables < 0 || tables > 0xffffffff) throw new RangeError(`[iopgt] [${name}] reserve: ${tables} is not a table count`);
    if (!isPowerOfTwo(tableSize) || tableSize < minSize || tableSize > maxSize) {
      throw new AllocatorMisuseError(name, 'size', `reserve: table size ${tableSize} is not a power of two in [${minSize}, ${maxSize}]`);
    }
    const job = enter('reserve', () => ex.iopgt_abi_reserve(tables, tableSize)) >>> 0;
    if (job === 0) return null;
    let released = false;
    /** What the job consumed, kept at release (the C code forgets a released job). */
    let consumedAtRelease = 0;
    return {
      job,
      reserved: tables,
      get consumed() {
        return released ? consumedAtRelease : enter('consumed', () => ex.iopgt_abi_consumed(job)) >>> 0;
      },
      run<T>(fn: () => T): T {
        if (released) throw new AllocatorMisuseError(name, 'alloc-outside-op', `job ${job} was already released`);
        enter('run_begin', () => ex.iopgt_abi_run_begin(job));
        try {
          return fn();
        } finally {
          if (failure === null) enter('run_end', () => ex.iopgt_abi_run_end(job));
        }
      },
      release() {
        if (released) return;
        consumedAtRelease = enter('consumed', () => ex.iopgt_abi_consumed(job)) >>> 0;
        released = true;
        enter('release', () => ex.iopgt_abi_release(job));
      },
    };
  }

  const allocator: CAllocator = {
    caps,
    inner: backing,
    memory: backing.memory,
    source: mod.source,
    supportsReservation: (features & FEATURE_RESERVE) !== 0,
    logs,
    get failure() {
      return failure;
    },
    alloc(size: number, ctx: AllocCtx): Paddr | null {
      if (!isPowerOfTwo(size) || size < minSize || size > maxSize) {
        throw new AllocatorMisuseError(name, 'size', `alloc size ${size} is not a power of two in [${minSize}, ${maxSize}]`);
      }
      const gfp = gfpOf(ctx);
      // Inlined enter(): the hot path allocates no closure.
      begin('alloc');
      current = ctx;
      currentGfp = gfp;
      try {
        ex.iopgt_abi_alloc(size, gfp);
      } catch (e) {
        failed(e, 'alloc');
      } finally {
        current = null;
        currentGfp = -1;
      }
      const m = mem32();
      const lo = m[scratch]!;
      const hi = m[scratch + 1]!;
      if (lo === 0 && hi === 0) {
        // Out of pages because the backing store threw (not because it said no): say so.
        surfaceBackingError('alloc');
        return null;
      }
      // A refill that failed part-way but still found a page: the page is what was asked for.
      backingError = null;
      call = 'alloc';
      if (hi >= PA_HI_LIMIT) throw fault('in-range', 'bad-return', `alloc(${size}) returned 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}, above 2^52`);
      const pa = hi * TWO_32 + lo;
      if (pa % size !== 0) throw fault('aligned', 'bad-return', `alloc(${size}) returned ${hex(pa)}, not aligned to its size`, pa);
      if (containing(pa, size) === undefined) {
        throw fault('in-range', 'bad-return', `alloc(${size}) returned ${hex(pa)}, which is not inside a backing page this allocator holds`, pa);
      }
      live.add(pa, size);
      freed.delete(pa);
      if (size < smallestTable) smallestTable = size;
      return pa;
    },
    free(paddr: Paddr, size: number, ctx?: FreeCtx): void {
      // The caller's misuse (double, foreign, wrongly sized free) is refused before the C
      // code sees it, as the kernel's callers are trusted and C allocators rarely check.
      const allocated = live.check(paddr, size);
      const flags = freeFlagsOf(ctx);
      const id = ctx?.flush.id ?? 0;
      freeing = paddr;
      begin('free');
      try {
        ex.iopgt_abi_free(paddr % TWO_32, Math.floor(paddr / TWO_32), allocated, flags, id % TWO_32, Math.floor(id / TWO_32));
      } catch (e) {
        failed(e, 'free');
      } finally {
        freeing = -1;
      }
      live.remove(paddr, size);
      freed.add(paddr);
    },
    flushDone(token?: FlushToken): void {
      const freedBefore = backingFreed;
      retryParked();
      if (token === undefined) enter('flush_done', () => ex.iopgt_abi_flush_done(0xffffffff, 0xffffffff));
      else enter('flush_done', () => ex.iopgt_abi_flush_done(token.id % TWO_32, Math.floor(token.id / TWO_32)));
      // Forward the completion down the stack. Pages given back from inside the callback
      // had their flush, so a deferring backing store may release them too.
      backing.flushDone(token);
      if (token !== undefined && backingFreed !== freedBefore && backing.caps.defersFree) backing.flushDone();
      surfaceParkError('flushDone');
    },
    stats(): AllocatorStats {
      const m = enter('stats', () => {
        ex.iopgt_abi_stats();
        return mem32();
      });
      const u64 = (i: number): number => m[scratch + 2 * i + 1]! * TWO_32 + m[scratch + 2 * i]!;
      return {
        outstanding: heldBytes,
        live: live.bytes,
        cached: u64(0) + parkedBytes,
        reserved: u64(1),
        pendingFlush: u64(2),
        quarantined: u64(3),
        liveTables: live.count,
        backingCalls,
      };
    },
    drain(): void {
      const freedBefore = backingFreed;
      retryParked();
      enter('drain', () => ex.iopgt_abi_drain());
      if (backingFreed !== freedBefore && backing.caps.defersFree) backing.flushDone();
      surfaceParkError('drain');
    },
    reserve: reserveJob,
  };
  return allocator;
}
