import type { TableAllocator } from '@io-pgtable/allocator-api';

/**
 * A backing allocator for fault tests: `inner` with `alloc` and `free` that throw a raw
 * error on the calls a test arms. Set `allocThrowAt` to the 0-based index of the alloc
 * that throws (counted in `allocs`), or `allocThrows` / `freeThrows` to make the next N
 * calls throw. Everything else forwards to `inner`.
 */
export interface ThrowingBacking {
  readonly allocator: TableAllocator;
  allocThrowAt: number;
  allocThrows: number;
  freeThrows: number;
  /** Alloc calls made so far. */
  allocs: number;
}

export function throwingBacking(inner: TableAllocator): ThrowingBacking {
  const f: ThrowingBacking = {
    allocThrowAt: -1,
    allocThrows: 0,
    freeThrows: 0,
    allocs: 0,
    allocator: {
      ...inner,
      alloc(size, ctx) {
        const n = f.allocs++;
        if (n === f.allocThrowAt) throw new Error('injected: alloc failed');
        if (f.allocThrows > 0) {
          f.allocThrows--;
          throw new Error('injected: alloc failed');
        }
        return inner.alloc(size, ctx);
      },
      free(p, size, ctx) {
        if (f.freeThrows > 0) {
          f.freeThrows--;
          throw new Error('injected: free failed');
        }
        inner.free(p, size, ctx);
      },
      flushDone: (t) => inner.flushDone(t),
      stats: () => inner.stats(),
    },
  };
  return f;
}
