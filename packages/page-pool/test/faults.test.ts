/**
 * Issue 14, the pool's part: a page still assigned away from the host is never taken back
 * for reuse, and a throwing backing allocator never makes the pool lose or double-count a
 * page.
 */
import { AllocatorFaultError, AllocatorMisuseError, BLOCKING_CTX, assertAccounting, type AllocatorStats } from '@io-pgtable/allocator-api';
import { throwingBacking, thrown } from '@io-pgtable/conformance';
import { PhysMemory, createSystemAllocator, type AccessKind } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import { withPagePool } from '../src/index.js';

const PAGE = 4096;

/** A memory whose access control refuses every access of `kinds` to the pages in `away` (what secure-share does for assigned pages). */
function guarded(kinds: readonly AccessKind[] = ['release', 'zero', 'write', 'clean', 'read']) {
  const memory = new PhysMemory();
  const away = new Set<number>();
  const refused: string[] = [];
  memory.addGuard({
    check(kind, paddr, size) {
      if (!kinds.includes(kind)) return;
      for (let p = paddr - (paddr % PAGE); p < paddr + size; p += PAGE) {
        if (away.has(p)) {
          refused.push(`${kind} 0x${p.toString(16)}`);
          throw new AllocatorMisuseError('access-control', 'access-violation', `${kind} of 0x${p.toString(16)}`, p);
        }
      }
    },
  });
  return { memory, away, refused };
}



const same = (a: AllocatorStats, b: AllocatorStats) => expect(JSON.stringify(a)).toBe(JSON.stringify(b));

describe('page-pool: the release access check', () => {
  it.each(['on-alloc', 'on-free'] as const)('a free of a page still assigned away is refused, typed, with nothing changed (zero %s)', (zero) => {
    const { memory, away } = guarded(['release']);
    const system = createSystemAllocator({ memory });
    const pool = withPagePool(system, { zero });
    const p = pool.alloc(PAGE, BLOCKING_CTX)!;
    away.add(p);
    const before = pool.stats();
    const e = thrown(() => pool.free(p, PAGE));
    expect(e).toBeInstanceOf(AllocatorMisuseError);
    expect((e as AllocatorMisuseError).rule).toBe('access-violation');
    same(pool.stats(), before);
    // Still live here: nothing was pooled, so no later alloc can get it.
    pool.flushDone();
    expect(pool.idlePages(PAGE)).toBe(0);
    expect(pool.alloc(PAGE, BLOCKING_CTX)).not.toBe(p);
    // Given back to the host, the same free goes through.
    away.delete(p);
    pool.free(p, PAGE);
    pool.flushDone();
    expect(pool.idlePages(PAGE)).toBe(1);
    assertAccounting(pool);
  });

  it('a flushed free (synchronous tlb_flush_walk) of an assigned page is refused as well', () => {
    const { memory, away } = guarded(['release']);
    const pool = withPagePool(createSystemAllocator({ memory }));
    const p = pool.alloc(PAGE, BLOCKING_CTX)!;
    away.add(p);
    const ctx = { kind: 'table' as const, level: 3, flush: { id: 1, done: true } };
    expect(thrown(() => pool.free(p, PAGE, ctx))).toBeInstanceOf(AllocatorMisuseError);
    expect(pool.stats()).toMatchObject({ live: PAGE, cached: 0, liveTables: 1 });
  });

  it('a pooled page assigned away while idle is never handed out again: the alloc fails typed, the page is quarantined', () => {
    const { memory, away } = guarded(['zero']);
    const pool = withPagePool(createSystemAllocator({ memory }));
    expect(pool.refill()).toBe(64);
    const top = pool.alloc(PAGE, BLOCKING_CTX)!;
    pool.free(top, PAGE);
    pool.flushDone();
    away.add(top);
    expect(thrown(() => pool.alloc(PAGE, BLOCKING_CTX))).toBeInstanceOf(AllocatorMisuseError);
    expect(pool.stats()).toMatchObject({ quarantined: PAGE, live: 0 });
    assertAccounting(pool);
    const next = pool.alloc(PAGE, BLOCKING_CTX)!;
    expect(next).not.toBe(top);
    pool.free(next, PAGE);
    pool.flushDone();
    // Drain retries the quarantined page; the system allocator takes it once it is the host's again.
    away.delete(top);
    pool.drain();
    expect(pool.stats().outstanding).toBe(0);
  });
});

describe('page-pool: a throwing inner free never loses a page', () => {
  it('shrink keeps the page whose free threw (idle, accounted), reports the error, and returns every other one; the next shrink returns it', () => {
    const f = throwingBacking(createSystemAllocator());
    const pool = withPagePool(f.allocator, { highWatermark: 4 });
    expect(pool.refill()).toBe(4);
    f.freeThrows = 1;
    const e = thrown(() => pool.shrink());
    expect(e).toBeInstanceOf(AllocatorFaultError);
    expect((e as AllocatorFaultError).rule).toBe('no-throw');
    expect((e as Error).message).toMatch(/^\[iopgt\] \[page-pool\] no-throw: inner free of 0x[0-9a-f]+ threw: injected: free failed$/);
    expect(pool.idlePages(PAGE)).toBe(1);
    expect(pool.stats()).toMatchObject({ outstanding: PAGE, cached: PAGE });
    expect(f.allocator.stats().outstanding).toBe(PAGE);
    assertAccounting(pool);
    expect(pool.shrink()).toBe(1);
    expect(f.allocator.stats().outstanding).toBe(0);
    expect(pool.stats().outstanding).toBe(0);
  });

  it('a free past the high watermark whose inner free throws keeps the page idle; flushDone reports it and trim returns it', () => {
    const f = throwingBacking(createSystemAllocator());
    const pool = withPagePool(f.allocator, { highWatermark: 0 });
    const p = pool.alloc(PAGE, BLOCKING_CTX)!;
    const q = pool.alloc(PAGE, BLOCKING_CTX)!;
    pool.free(p, PAGE);
    pool.free(q, PAGE);
    f.freeThrows = 1;
    expect(thrown(() => pool.flushDone())).toBeInstanceOf(AllocatorFaultError);
    // The second page of the same flush still went down: the loop continued past the failure.
    expect(f.allocator.stats().outstanding).toBe(PAGE);
    expect(pool.stats()).toMatchObject({ outstanding: PAGE, cached: PAGE, pendingFlush: 0 });
    assertAccounting(pool);
    expect(pool.trim()).toBe(1);
    expect(pool.stats().outstanding).toBe(0);
  });

  it('two failures in one drain are both reported, and both pages stay accounted', () => {
    const f = throwingBacking(createSystemAllocator());
    const pool = withPagePool(f.allocator, { highWatermark: 3 });
    pool.refill();
    f.freeThrows = 2;
    const e = thrown(() => pool.drain());
    expect(e).toBeInstanceOf(AggregateError);
    expect((e as AggregateError).errors).toHaveLength(2);
    expect((e as Error).message).toMatch(/^\[iopgt\] \[page-pool\] 2 operations failed/);
    expect(pool.stats()).toMatchObject({ outstanding: 2 * PAGE, cached: 2 * PAGE });
    pool.drain();
    expect(pool.stats().outstanding).toBe(0);
    expect(f.allocator.stats().outstanding).toBe(0);
  });
});

describe('page-pool: a throwing inner alloc surfaces typed, state unchanged', () => {
  it('a miss whose inner alloc throws: AllocatorFaultError (no-throw) with the cause, nothing held', () => {
    const f = throwingBacking(createSystemAllocator());
    const pool = withPagePool(f.allocator);
    const before = pool.stats();
    f.allocThrows = 1;
    const e = thrown(() => pool.alloc(PAGE, BLOCKING_CTX));
    expect(e).toBeInstanceOf(AllocatorFaultError);
    expect((e as Error & { cause: unknown }).cause).toBeInstanceOf(Error);
    expect({ ...pool.stats(), backingCalls: 0 }).toEqual({ ...before, backingCalls: 0 });
  });

  it('a refill whose inner alloc throws part-way keeps (and accounts) the pages it got, and reports typed', () => {
    let n = 0;
    const system = createSystemAllocator();
    const pool = withPagePool(
      {
        ...system,
        alloc(size, ctx) {
          if (n++ === 3) throw new Error('injected');
          return system.alloc(size, ctx);
        },
      },
      { highWatermark: 8 },
    );
    expect(thrown(() => pool.refill())).toBeInstanceOf(AllocatorFaultError);
    expect(pool.idlePages(PAGE)).toBe(3);
    expect(pool.stats()).toMatchObject({ outstanding: 3 * PAGE, cached: 3 * PAGE });
    expect(system.stats().outstanding).toBe(3 * PAGE);
  });

  it('a typed error from the layer below passes through unchanged', () => {
    const system = createSystemAllocator();
    const own = new AllocatorMisuseError('below', 'size', 'no');
    const pool = withPagePool({ ...system, alloc: () => { throw own; } });
    expect(thrown(() => pool.alloc(PAGE, BLOCKING_CTX))).toBe(own);
  });
});

describe('page-pool: a synchronous free whose inner free throws changes nothing', () => {
  it('above the high watermark, a flushed free whose inner free throws leaves the table live; the same free then succeeds', () => {
    const f = throwingBacking(createSystemAllocator());
    const pool = withPagePool(f.allocator, { highWatermark: 0 });
    const p = pool.alloc(PAGE, BLOCKING_CTX)!;
    const ctx = { kind: 'table' as const, level: 3, flush: { id: 1, done: true } };
    const before = pool.stats();
    f.freeThrows = 1;
    expect(thrown(() => pool.free(p, PAGE, ctx))).toBeInstanceOf(AllocatorFaultError);
    same(pool.stats(), before);
    pool.free(p, PAGE, ctx);
    expect(pool.stats().outstanding).toBe(0);
  });
});

describe('page-pool: messages cap echoed values', () => {
  const huge = 'x'.repeat(1 << 20);
  it.each([
    ['zero', () => withPagePool(createSystemAllocator(), { zero: huge as never })],
    ['lowWatermark', () => withPagePool(createSystemAllocator(), { lowWatermark: huge as never })],
    ['sizes', () => withPagePool(createSystemAllocator(), { sizes: [huge as never] })],
    ['shrink', () => withPagePool(createSystemAllocator()).shrink(huge as never)],
    ['free', () => withPagePool(createSystemAllocator()).free(huge as never, huge as never)],
    ['alloc', () => withPagePool(createSystemAllocator()).alloc(huge as never, BLOCKING_CTX)],
  ])('%s given a 1 MiB string: a typed error whose message stays under 300 characters', (_what, fn) => {
    const e = thrown(fn);
    expect(e instanceof RangeError || e instanceof AllocatorMisuseError).toBe(true);
    expect((e as Error).message.length).toBeLessThan(300);
  });
});
