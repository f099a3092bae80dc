import { AllocatorFaultError, assertAccounting, drainAll, flushedCtx, type AllocCtx } from '@io-pgtable/allocator-api';
import { throwingBacking } from '@io-pgtable/conformance';
import { createSystemAllocator, PhysMemory } from '@io-pgtable/core';
import { describe, expect, test } from 'vitest';
import { createCAllocator } from '../src/index.js';
import { moduleOf } from './helpers/compiler.js';

const CTX: AllocCtx = { mayBlock: true, kind: 'table', level: 3 };
const PAGE = 4096;

/** A system allocator whose alloc number `at` (or the next free) throws, once. */
function flakyBacking(which: 'alloc' | 'free', at: number) {
  const system = createSystemAllocator({ memory: new PhysMemory() });
  const t = throwingBacking(system);
  if (which === 'alloc') t.allocThrowAt = at;
  else t.freeThrows = 1;
  return { system, backing: t.allocator };
}

describe('the C pool over a backing store that throws', () => {
  test('a throwing backing alloc is a NULL to the C code: typed AllocatorFaultError when it leaves no page, and the pool stays usable', () => {
    const { system, backing } = flakyBacking('alloc', 0);
    const pool = createCAllocator(moduleOf('c-page-pool/pool.c'), { backing });
    let e: unknown;
    try {
      pool.alloc(PAGE, CTX);
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(AllocatorFaultError);
    expect((e as Error).message).toMatch(/injected: alloc failed/);
    assertAccounting(pool);
    // Usable afterwards: the next allocation works and everything goes back.
    const p = pool.alloc(PAGE, CTX)!;
    expect(p).not.toBeNull();
    pool.free(p, PAGE, flushedCtx(undefined));
    drainAll(pool);
    expect(system.stats().outstanding).toBe(0);
  });

  test('a throwing backing free keeps the block (counted, cached), reports it typed from flushDone or drain, and the retry gives it back', () => {
    const { system, backing } = flakyBacking('free', 0);
    const pool = createCAllocator(moduleOf('c-page-pool/pool.c'), { backing });
    const pages = [0, 1, 2, 3].map(() => pool.alloc(PAGE, CTX)!);
    for (const p of pages) pool.free(p, PAGE, flushedCtx(undefined));
    const errors: unknown[] = [];
    for (let i = 0; i < 3 && system.stats().outstanding > 0; i++) {
      try {
        pool.flushDone();
        pool.drain!();
      } catch (e) {
        errors.push(e);
      }
      assertAccounting(pool);
    }
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(AllocatorFaultError);
    expect((errors[0] as Error).message).toMatch(/injected: free failed/);
    expect(system.stats().outstanding).toBe(0);
    expect(pool.stats().outstanding).toBe(0);
  });
});
