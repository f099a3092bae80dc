import {
  AllocatorMisuseError,
  EMPTY_STATS,
  TableLedger,
  isPowerOfTwo,
  type AllocCtx,
  type AllocatorCaps,
  type AllocatorStats,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';
import { alignUp, hex } from '../addr.js';
import { PhysMemory } from './memory.js';

export interface SystemAllocatorOptions {
  /** Memory to allocate from; a fresh one by default. */
  memory?: PhysMemory;
  /**
   * First physical address of the region this allocator owns (default 2 GiB, so that
   * tables fit even a 32-bit output address space).
   */
  base?: Paddr;
  /** Size of the region in bytes (default 1 GiB). */
  limit?: number;
  /**
   * Smallest block handed out. The kernel's iommu-pages allocator never hands out less
   * than one CPU page (4 KiB), so a 64-byte PGD still costs a page; set 64 to model an
   * allocator that packs small tables.
   */
  minBlock?: number;
  /** Fault injection: return true to make the n-th call (0-based) fail with null. */
  failWhen?: (callIndex: number, size: number) => boolean;
  name?: string;
}

export interface SystemAllocator extends TableAllocator {
  readonly memory: PhysMemory;
  /** Number of well-formed alloc calls so far (successful or not); rejected misuse is not counted. */
  readonly allocCalls: number;
  /** Allocation size recorded for a live block, or undefined. */
  blockSize(paddr: Paddr): number | undefined;
}

/**
 * The default page allocator: zeroed, naturally aligned power-of-two blocks from a
 * region of simulated physical memory, with per-size free lists and exact accounting.
 * Like the kernel's iommu-pages it frees immediately: io-pgtable-arm calls the
 * synchronous `tlb_flush_walk` before freeing, so there is nothing to defer.
 */
export function createSystemAllocator(opts: SystemAllocatorOptions = {}): SystemAllocator {
  const memory = opts.memory ?? new PhysMemory();
  const base = opts.base ?? 0x8000_0000;
  const end = base + (opts.limit ?? 0x4000_0000);
  const minBlock = opts.minBlock ?? 4096;
  const name = opts.name ?? 'system';
  if (!isPowerOfTwo(minBlock) || minBlock < 64) throw new RangeError(`minBlock must be a power of two >= 64, got ${minBlock}`);
  if (base % minBlock !== 0) throw new RangeError(`base ${hex(base)} is not aligned to minBlock ${minBlock}`);

  const freeLists = new Map<number, Paddr[]>();
  /** Blocks on the free lists: a free of one of these is a double free. */
  const idle = new Set<Paddr>();
  /** Blocks handed out: paddr -> block size. */
  const live = new TableLedger(name, { minBlock, noun: 'block', wasFreed: (p) => idle.has(p) });
  let cursor = base;
  let calls = 0;

  const caps: AllocatorCaps = Object.freeze({
    name,
    minSize: 64,
    maxSize: 1 << 20,
    defersFree: false,
    reuse: 'immediate',
    zeroes: 'on-alloc',
    mayFail: opts.failWhen !== undefined,
  });

  function blockFor(size: number): number {
    return Math.max(minBlock, size);
  }

  function pushFree(p: Paddr, block: number): void {
    let list = freeLists.get(block);
    if (list === undefined) freeLists.set(block, (list = []));
    list.push(p);
    idle.add(p);
  }

  /** Carve a naturally aligned block from the bump cursor; the skipped gap is kept as free blocks. */
  function carve(block: number): Paddr | null {
    const p = alignUp(cursor, block);
    if (p + block > end) return null;
    let gap = cursor;
    while (gap < p) {
      // Largest power of two that is aligned at `gap` and fits before `p`.
      let b = minBlock;
      while (gap % (b * 2) === 0 && gap + b * 2 <= p) b *= 2;
      pushFree(gap, b);
      gap += b;
    }
    cursor = p + block;
    return p;
  }

  const allocator: SystemAllocator = {
    caps,
    memory,
    get allocCalls() {
      return calls;
    },
    alloc(size: number, _ctx: AllocCtx): Paddr | null {
      if (!isPowerOfTwo(size) || size < 64 || size > caps.maxSize) {
        throw new AllocatorMisuseError(name, 'size', `alloc size ${size} is not a power of two in [64, ${caps.maxSize}]`);
      }
      // Only well-formed calls count, so fault injection's call index is not shifted by misuse.
      const n = calls++;
      if (opts.failWhen?.(n, size)) return null;
      const block = blockFor(size);
      const list = freeLists.get(block);
      let p: Paddr | null;
      if (list !== undefined && list.length > 0) {
        p = list.pop()!;
        idle.delete(p);
        memory.zero(p, block, 'allocator');
      } else {
        p = carve(block);
        if (p === null) return null;
      }
      live.add(p, block);
      return p;
    },
    free(paddr: Paddr, size: number): void {
      // A page still assigned away from the host (secure-share) must not be recycled: the
      // guard refuses the release, and the block stays live (quarantined) here.
      memory.checkAccess('release', paddr, live.sizeOf(paddr) ?? 1, 'allocator');
      // Throws double-free / foreign-free / free-size, changing nothing.
      pushFree(paddr, live.remove(paddr, size));
    },
    flushDone() {},
    stats(): AllocatorStats {
      return { ...EMPTY_STATS, outstanding: live.bytes, live: live.bytes, liveTables: live.count };
    },
    blockSize: (paddr) => live.sizeOf(paddr),
  };
  return allocator;
}
