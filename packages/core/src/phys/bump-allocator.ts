import {
  AllocatorMisuseError,
  EMPTY_STATS,
  describeValue,
  type AllocCtx,
  type AllocatorCaps,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';
import { alignUp, hex } from '../addr.js';
import { IoPgtableError } from '../errors.js';
import { PhysMemory } from './memory.js';

export type BumpEvent = ['alloc', number, Paddr] | ['alloc_fail', number] | ['free', Paddr, number];

export interface BumpAllocatorOptions {
  memory?: PhysMemory;
  /**
   * First address handed out (FORMAT.md `allocBase`, default 0x80000000). A u64 is
   * accepted, but the model's physical addresses are numbers: `base + limit` must stay
   * at or below 2^53, or creation fails with IoPgtableError (EINVAL).
   */
  base?: Paddr | bigint;
  /** Bytes available from `base` (FORMAT.md `allocLimit`, default 0x40000000). */
  limit?: number | bigint;
  onEvent?: (e: BumpEvent) => void;
}

export interface BumpAllocator extends TableAllocator {
  readonly memory: PhysMemory;
  /** Live allocations (address -> allocated size), ascending by address. */
  liveAllocations(): Array<[Paddr, number]>;
}

/** Physical addresses are exact numbers only up to 2^53 (issue 14: a legal u64 above it must fail clearly). */
const PADDR_END = 2n ** 53n;

function exactAddress(v: number | bigint, what: string): number {
  const ok = typeof v === 'bigint' ? v >= 0n && v <= PADDR_END : Number.isSafeInteger(v) && v >= 0;
  if (!ok) {
    throw new IoPgtableError('EINVAL', `bump allocator: ${what} ${describeValue(v)} is not an address the model can represent (a non-negative integer at most 2^53)`);
  }
  return Number(v);
}

/**
 * The deterministic allocator of the reference vectors: a cursor that only moves up,
 * each allocation aligned to its own size at the absolute address, freed memory never
 * reused. Replaying a trace with it reproduces the kernel oracle's addresses exactly.
 */
export function createBumpAllocator(opts: BumpAllocatorOptions = {}): BumpAllocator {
  const memory = opts.memory ?? new PhysMemory();
  const base = exactAddress(opts.base ?? 0x8000_0000, 'allocBase');
  const end = exactAddress(BigInt(base) + BigInt(exactAddress(opts.limit ?? 0x4000_0000, 'allocLimit')), 'allocBase + allocLimit');
  const live = new Map<Paddr, number>();
  const dead = new Set<Paddr>();
  let cursor = base;
  let bytes = 0;
  const emit = opts.onEvent ?? (() => {});
  const caps: AllocatorCaps = Object.freeze({
    name: 'bump',
    minSize: 64,
    maxSize: 1 << 20,
    defersFree: false,
    reuse: 'immediate',
    zeroes: 'backing',
    mayFail: true,
  });
  return {
    caps,
    memory,
    alloc(size: number, _ctx: AllocCtx): Paddr | null {
      const addr = size > 0 ? alignUp(cursor, size) : cursor;
      if (size === 0 || addr + size > end) {
        emit(['alloc_fail', size]);
        return null;
      }
      cursor = addr + size;
      live.set(addr, size);
      bytes += size;
      emit(['alloc', size, addr]);
      return addr;
    },
    free(paddr: Paddr, size: number): void {
      const allocated = live.get(paddr);
      if (allocated === undefined) {
        const rule = dead.has(paddr) ? 'double-free' : 'foreign-free';
        throw new AllocatorMisuseError('bump', rule, `free of ${hex(paddr)}, which is not a live allocation`, paddr);
      }
      emit(['free', paddr, size]);
      live.delete(paddr);
      dead.add(paddr);
      bytes -= allocated;
    },
    flushDone() {},
    stats: () => ({ ...EMPTY_STATS, outstanding: bytes, live: bytes, liveTables: live.size }),
    liveAllocations: () => [...live.entries()].sort((a, b) => a[0] - b[0]),
  };
}
