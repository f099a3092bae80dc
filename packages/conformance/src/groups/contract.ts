/**
 * Contract group: direct alloc/free against the capability manifest (requirements 1-2).
 * Allocators that refuse allocations outside an operation (reservation) skip this group;
 * the same rules are checked through page tables by the `tables` group.
 */
import { ATOMIC_CTX, BLOCKING_CTX, isPowerOfTwo, type TableAllocator } from '@io-pgtable/allocator-api';
import { check, fail } from '../failure.js';
import { Harness } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions } from '../options.js';
import type { ConformanceCheck } from './group.js';

const ZERO_POLICIES = new Set(['on-alloc', 'on-free', 'backing']);

export function contractChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  const sizesOf = (a: TableAllocator) => {
    const out: number[] = [];
    for (let s = Math.max(64, a.caps.minSize); s <= Math.min(a.caps.maxSize, 1 << 20); s *= 2) out.push(s);
    return out;
  };
  return [
    {
      title: 'caps: a truthful manifest that serves the 64-byte minimum',
      run() {
        const h = new Harness(factory, options);
        const c = h.instance.caps;
        check(typeof c.name === 'string' && c.name.length > 0, 'caps', () => `caps.name must be a non-empty string, got ${JSON.stringify(c.name)}`);
        check(isPowerOfTwo(c.minSize) && isPowerOfTwo(c.maxSize) && c.minSize <= c.maxSize, 'caps', () => `caps.minSize ${c.minSize} / maxSize ${c.maxSize} must be powers of two, min <= max`);
        check(c.minSize <= 64, 'size', () => `caps.minSize is ${c.minSize}, but the kernel asks for 64-byte tables (max(size, 64))`);
        check(c.maxSize >= 4096, 'size', () => `caps.maxSize is ${c.maxSize}, smaller than one 4 KiB granule`);
        check(ZERO_POLICIES.has(c.zeroes), 'caps', () => `caps.zeroes must be on-alloc, on-free or backing, got ${JSON.stringify(c.zeroes)}`);
        check(typeof c.defersFree === 'boolean' && typeof c.mayFail === 'boolean', 'caps', () => 'caps.defersFree and caps.mayFail must be booleans');
        h.teardown();
      },
    },
    {
      title: 'alloc: zeroed, aligned, distinct memory for every size served, also when recycled',
      run() {
        const h = new Harness(factory, options);
        const sizes = sizesOf(h.instance);
        for (let round = 0; round < 2; round++) {
          const got: Array<[number, number]> = [];
          for (const size of sizes) {
            for (const ctx of [BLOCKING_CTX, ATOMIC_CTX, BLOCKING_CTX]) {
              const p = h.top.alloc(size, ctx);
              if (p === null) {
                if (!h.instance.caps.mayFail) fail('caps', `alloc(${size}) returned null with a healthy backing store, but caps.mayFail is false`);
                continue;
              }
              got.push([p, size]);
            }
          }
          h.checkAccounting(`after round ${round} of allocations`);
          // Free with the logical size: a 64-byte allocation may come back as 8, 16 or 32.
          for (const [i, [p, size]] of got.entries()) h.top.free(p, size === 64 ? 8 << (i % 4) : size);
          h.checkAccounting(`after round ${round} of frees`);
          h.flush();
        }
        h.teardown();
      },
    },
  ];
}
