import { ATOMIC_CTX, AllocatorMisuseError, BLOCKING_CTX, assertAccounting } from '@io-pgtable/allocator-api';
import { IotlbGather, createPageTable } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import { withPagePool } from '../src/index.js';
import { assertLayered, spyBacking } from './helpers.js';

const SZ_4K = 4096;
const SZ_2M = 0x20_0000;
const SZ_1G = 0x4000_0000;

function misuse(fn: () => unknown): AllocatorMisuseError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AllocatorMisuseError);
    return e as AllocatorMisuseError;
  }
  throw new Error('expected an AllocatorMisuseError');
}

describe('withPagePool: caps and options', () => {
  it('declares deferred free, its zero policy and its name', () => {
    const b = spyBacking();
    expect(withPagePool(b).caps).toMatchObject({ name: 'page-pool', defersFree: true, zeroes: 'on-alloc', minSize: 64, maxSize: b.caps.maxSize });
    expect(withPagePool(b, { zero: 'on-free', name: 'pt-pool' }).caps).toMatchObject({ name: 'pt-pool', zeroes: 'on-free' });
  });

  it('forwards the backing memory', () => {
    const b = spyBacking();
    expect(withPagePool(b).memory).toBe(b.memory);
  });

  it.each([
    [{ zero: 'never' as never }, /zero must be/],
    [{ lowWatermark: -1 }, /lowWatermark/],
    [{ lowWatermark: 1.5 }, /lowWatermark/],
    [{ lowWatermark: 4, highWatermark: 2 }, /highWatermark/],
    [{ sizes: [48] }, /size 48/],
    [{ sizes: [2 << 20] }, /size 2097152/],
  ])('rejects bad options %j with a RangeError', (opts, re) => {
    expect(() => withPagePool(spyBacking(), opts)).toThrow(re);
  });
});

describe('withPagePool: hits and misses', () => {
  it('a miss goes to the backing allocator with the caller context', () => {
    const b = spyBacking();
    const pool = withPagePool(b);
    const p = pool.alloc(SZ_4K, ATOMIC_CTX);
    expect(p).not.toBeNull();
    expect(b.ctxs).toEqual([ATOMIC_CTX]);
    expect(pool.counters()).toMatchObject({ hits: 0, misses: 1 });
    expect(pool.stats()).toMatchObject({ outstanding: SZ_4K, live: SZ_4K, liveTables: 1, backingCalls: 1 });
    assertLayered(pool, b);
  });

  it('after the flush a freed page is served again without a backing call', () => {
    const b = spyBacking();
    const pool = withPagePool(b);
    const p = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    pool.free(p, SZ_4K);
    pool.flushDone();
    expect(pool.alloc(SZ_4K, ATOMIC_CTX)).toBe(p);
    expect(b.system.allocCalls).toBe(1);
    expect(pool.counters()).toMatchObject({ hits: 1, misses: 1 });
    expect(pool.stats().backingCalls).toBe(1);
    assertLayered(pool, b);
  });

  it('hands out the most recently freed page first', () => {
    const b = spyBacking();
    const pool = withPagePool(b);
    const [x, y] = [pool.alloc(SZ_4K, BLOCKING_CTX)!, pool.alloc(SZ_4K, BLOCKING_CTX)!];
    pool.free(x, SZ_4K);
    pool.free(y, SZ_4K);
    pool.flushDone();
    expect(pool.alloc(SZ_4K, BLOCKING_CTX)).toBe(y);
    expect(pool.alloc(SZ_4K, BLOCKING_CTX)).toBe(x);
  });

  it('keys the pool by allocated size: a 16-byte PGD freed as 16 is reused for 64-byte requests only', () => {
    const b = spyBacking({ minBlock: 64 });
    const pool = withPagePool(b);
    const pgd = pool.alloc(64, BLOCKING_CTX)!;
    pool.free(pgd, 16);
    pool.flushDone();
    expect(pool.idlePages(64)).toBe(1);
    const big = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    expect(big).not.toBe(pgd);
    expect(pool.alloc(64, BLOCKING_CTX)).toBe(pgd);
    expect(pool.counters()).toMatchObject({ hits: 1, misses: 2 });
    assertLayered(pool, b);
  });

  it('a backing failure on a miss returns null and changes nothing', () => {
    const b = spyBacking({ failWhen: (n) => n === 1 });
    const pool = withPagePool(b);
    pool.alloc(SZ_4K, BLOCKING_CTX);
    const before = pool.stats();
    expect(pool.alloc(SZ_4K, BLOCKING_CTX)).toBeNull();
    expect(pool.stats()).toEqual({ ...before, backingCalls: 2 });
    expect(pool.caps.mayFail).toBe(true);
    assertLayered(pool, b);
  });

  it('rejects a size that is not a power of two in [64, maxSize] with a size error', () => {
    const pool = withPagePool(spyBacking());
    for (const size of [0, 32, 96, 2 << 20]) {
      expect(misuse(() => pool.alloc(size, BLOCKING_CTX)).rule).toBe('size');
    }
    expect(pool.stats()).toMatchObject({ outstanding: 0, backingCalls: 0 });
  });
});

describe('withPagePool: deferred free', () => {
  it('a freed page is pending, not reused, until flushDone', () => {
    const b = spyBacking();
    const pool = withPagePool(b);
    const p = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    pool.free(p, SZ_4K);
    expect(pool.stats()).toMatchObject({ live: 0, pendingFlush: SZ_4K, cached: 0, outstanding: SZ_4K });
    expect(pool.counters().pendingFlushPages).toBe(1);
    const q = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    expect(q).not.toBe(p);
    assertLayered(pool, b);
    pool.flushDone();
    expect(pool.stats()).toMatchObject({ pendingFlush: 0, cached: SZ_4K });
    expect(pool.alloc(SZ_4K, BLOCKING_CTX)).toBe(p);
  });

  it('does not touch a pending page before the flush (its old entries may still be walked)', () => {
    const b = spyBacking();
    const pool = withPagePool(b, { zero: 'on-free' });
    const p = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    b.system.memory.fill(p, SZ_4K, 0xa5);
    pool.free(p, SZ_4K);
    expect(b.memory.isZero(p, SZ_4K)).toBe(false);
    pool.flushDone();
    expect(b.memory.isZero(p, SZ_4K)).toBe(true);
  });

  it('forwards flushDone to the backing allocator after draining its own pending list', () => {
    const b = spyBacking();
    const pool = withPagePool(b, { highWatermark: 0 });
    const p = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    pool.free(p, SZ_4K);
    pool.flushDone();
    expect(b.frees).toEqual([[p, SZ_4K]]);
    expect(b.flushes).toBe(1);
  });
});

describe('withPagePool: zero policy', () => {
  it.each(['on-alloc', 'on-free'] as const)('%s: an allocation after a dirty free reads as zero', (zero) => {
    const b = spyBacking();
    const pool = withPagePool(b, { zero });
    const p = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    b.system.memory.fill(p, SZ_4K, 0xff);
    pool.free(p, SZ_4K);
    pool.flushDone();
    const q = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    expect(q).toBe(p);
    expect(b.memory.isZero(q, SZ_4K)).toBe(true);
  });

  it.each([
    ['on-alloc', 0, 1],
    ['on-free', 1, 0],
  ] as const)('%s zeroes %i times at the flush and %i times at hand-out', (zero, atFlush, atAlloc) => {
    const b = spyBacking();
    const zeroes: number[] = [];
    b.system.memory.guard = { check: (kind, paddr) => void (kind === 'zero' && zeroes.push(paddr)) };
    const pool = withPagePool(b, { zero });
    const p = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    pool.free(p, SZ_4K);
    pool.flushDone();
    expect(zeroes.length).toBe(atFlush);
    pool.alloc(SZ_4K, BLOCKING_CTX);
    expect(zeroes.length).toBe(atFlush + atAlloc);
  });

  it('on-free does not zero pages it returns to the backing allocator', () => {
    const b = spyBacking();
    const zeroes: number[] = [];
    b.system.memory.guard = { check: (kind, paddr) => void (kind === 'zero' && zeroes.push(paddr)) };
    const pool = withPagePool(b, { zero: 'on-free', highWatermark: 1 });
    const ps = [0, 1, 2].map(() => pool.alloc(SZ_4K, BLOCKING_CTX)!);
    for (const p of ps) pool.free(p, SZ_4K);
    pool.flushDone();
    expect(zeroes).toEqual([ps[0]]);
  });
});

describe('withPagePool: misuse', () => {
  it('a double free of a pending page fails and changes nothing', () => {
    const b = spyBacking();
    const pool = withPagePool(b);
    const p = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    pool.free(p, SZ_4K);
    const before = pool.stats();
    const e = misuse(() => pool.free(p, SZ_4K));
    expect(e).toMatchObject({ rule: 'double-free', paddr: p, allocator: 'page-pool' });
    expect(e.message).toMatch(/^\[iopgt\] \[page-pool\] double-free: .*waiting for a flush/);
    expect(pool.stats()).toEqual(before);
    expect(pool.counters().pendingFlushPages).toBe(1);
  });

  it('a double free of an idle page fails and changes nothing', () => {
    const pool = withPagePool(spyBacking());
    const p = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    pool.free(p, SZ_4K);
    pool.flushDone();
    const before = pool.stats();
    expect(misuse(() => pool.free(p, SZ_4K)).message).toMatch(/idle in the pool/);
    expect(pool.stats()).toEqual(before);
    expect(pool.alloc(SZ_4K, BLOCKING_CTX)).toBe(p);
  });

  it('a foreign free fails, including a page the backing allocator handed to someone else', () => {
    const b = spyBacking();
    const pool = withPagePool(b);
    const mine = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    const theirs = b.system.alloc(SZ_4K, BLOCKING_CTX)!;
    expect(misuse(() => pool.free(theirs, SZ_4K)).rule).toBe('foreign-free');
    expect(misuse(() => pool.free(mine + 64, SZ_4K)).rule).toBe('foreign-free');
    expect(pool.stats()).toMatchObject({ live: SZ_4K, liveTables: 1 });
  });

  it('a free whose size does not match the allocated size class fails and changes nothing', () => {
    const pool = withPagePool(spyBacking());
    const p = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    const before = pool.stats();
    for (const size of [64, 8192, 0, -4096, Number.NaN]) {
      expect(misuse(() => pool.free(p, size)).rule).toBe('free-size');
    }
    expect(pool.stats()).toEqual(before);
    pool.free(p, SZ_4K);
    expect(pool.stats().pendingFlush).toBe(SZ_4K);
  });
});

describe('withPagePool: watermarks, refill, trim', () => {
  it('refill tops stocked sizes up to the high watermark with a blocking context', () => {
    const b = spyBacking();
    const pool = withPagePool(b, { lowWatermark: 2, highWatermark: 4 });
    expect(pool.needsRefill).toBe(true);
    expect(pool.refill()).toBe(4);
    expect(b.ctxs.every((c) => c.mayBlock)).toBe(true);
    expect(pool.needsRefill).toBe(false);
    expect(pool.stats()).toMatchObject({ cached: 4 * SZ_4K, outstanding: 4 * SZ_4K, live: 0 });
    expect(pool.counters()).toMatchObject({ refilled: 4, cachedPages: 4, peakCachedPages: 4, peakCachedBytes: 4 * SZ_4K });
    assertLayered(pool, b);
  });

  it('needsRefill turns true below the low watermark (hysteresis, not after every hit)', () => {
    const pool = withPagePool(spyBacking(), { lowWatermark: 2, highWatermark: 4 });
    pool.refill();
    pool.alloc(SZ_4K, ATOMIC_CTX);
    pool.alloc(SZ_4K, ATOMIC_CTX);
    expect(pool.needsRefill).toBe(false);
    pool.alloc(SZ_4K, ATOMIC_CTX);
    expect(pool.needsRefill).toBe(true);
    expect(pool.counters()).toMatchObject({ hits: 3, misses: 0 });
    expect(pool.refill()).toBe(3);
  });

  it('refill stocks every configured size and stops at the first backing failure', () => {
    const b = spyBacking({ minBlock: 64, failWhen: (n) => n >= 3 });
    const pool = withPagePool(b, { sizes: [64, SZ_4K], lowWatermark: 1, highWatermark: 2 });
    expect(pool.refill()).toBe(3);
    expect(pool.idlePages(64)).toBe(2);
    expect(pool.idlePages(SZ_4K)).toBe(1);
    expect(pool.needsRefill).toBe(false);
    assertLayered(pool, b);
  });

  it('flushDone keeps at most highWatermark idle pages per size and returns the rest', () => {
    const b = spyBacking();
    const pool = withPagePool(b, { highWatermark: 2 });
    const ps = [0, 1, 2, 3, 4].map(() => pool.alloc(SZ_4K, BLOCKING_CTX)!);
    for (const p of ps) pool.free(p, SZ_4K);
    pool.flushDone();
    expect(pool.idlePages(SZ_4K)).toBe(2);
    expect(pool.counters()).toMatchObject({ pagesReturned: 3, cachedPages: 2 });
    expect(b.frees.map(([p]) => p)).toEqual(ps.slice(2));
    expect(b.system.stats().live).toBe(2 * SZ_4K);
    assertLayered(pool, b);
  });

  it('setWatermarks trims idle pages to the new high mark, coldest first', () => {
    const b = spyBacking();
    const pool = withPagePool(b, { highWatermark: 8 });
    pool.refill();
    const cold = b.frees.length;
    expect(pool.setWatermarks(1, 3)).toBe(5);
    expect(b.frees.length - cold).toBe(5);
    expect(pool.idlePages(SZ_4K)).toBe(3);
    expect(pool.trim()).toBe(0);
    assertLayered(pool, b);
  });

  it('setWatermarks with bad values throws and keeps the old marks', () => {
    const pool = withPagePool(spyBacking(), { lowWatermark: 1, highWatermark: 3 });
    expect(() => pool.setWatermarks(5, 2)).toThrow(RangeError);
    expect(pool.refill()).toBe(3);
  });
});

describe('withPagePool: shrink and drain', () => {
  function mixed() {
    const b = spyBacking();
    const pool = withPagePool(b, { highWatermark: 16 });
    const ps = Array.from({ length: 6 }, () => pool.alloc(SZ_4K, BLOCKING_CTX)!);
    pool.free(ps[0]!, SZ_4K);
    pool.free(ps[1]!, SZ_4K);
    pool.free(ps[2]!, SZ_4K);
    pool.flushDone(); // 3 idle
    pool.free(ps[3]!, SZ_4K); // 1 pending, 2 live
    return { b, pool, ps };
  }

  it('shrink releases only idle pages: never live or pending ones', () => {
    const { b, pool, ps } = mixed();
    expect(pool.shrink()).toBe(3);
    expect(pool.stats()).toMatchObject({ cached: 0, pendingFlush: SZ_4K, live: 2 * SZ_4K, outstanding: 3 * SZ_4K });
    expect(b.frees.map(([p]) => p).sort()).toEqual(ps.slice(0, 3).sort());
    expect(pool.counters()).toMatchObject({ pagesReturned: 3, pendingFlushPages: 1 });
    assertLayered(pool, b);
    pool.flushDone();
    expect(pool.alloc(SZ_4K, BLOCKING_CTX)).toBe(ps[3]);
  });

  it('shrink(n) releases at most n pages', () => {
    const { b, pool } = mixed();
    expect(pool.shrink(2)).toBe(2);
    expect(pool.idlePages(SZ_4K)).toBe(1);
    expect(pool.shrink(0)).toBe(0);
    expect(() => pool.shrink(-1)).toThrow(RangeError);
    assertLayered(pool, b);
  });

  it('drain at teardown returns every idle page and leaves the backing allocator empty', () => {
    const { b, pool, ps } = mixed();
    pool.free(ps[4]!, SZ_4K);
    pool.free(ps[5]!, SZ_4K);
    pool.flushDone();
    pool.drain();
    expect(pool.stats()).toMatchObject({ outstanding: 0, live: 0, cached: 0, pendingFlush: 0 });
    expect(b.system.stats().outstanding).toBe(0);
    expect(pool.counters()).toMatchObject({ pagesReturned: 6, peakCachedPages: 6 });
  });
});

describe('withPagePool: over a deferring backing allocator', () => {
  it('pages given back outside a flush go down under a completed flush token, with no flushDone', () => {
    const b = spyBacking({ defersFree: true });
    const pool = withPagePool(b, { highWatermark: 4 });
    pool.refill();
    expect(pool.shrink(2)).toBe(2);
    expect(pool.shrink(0)).toBe(0);
    expect(pool.setWatermarks(0, 1)).toBe(1);
    pool.drain();
    expect(b.frees).toHaveLength(4);
    expect(b.freeCtxs.map((c) => c?.flush.done)).toEqual([true, true, true, true]);
    expect(b.flushes).toBe(0);
  });

  it('a backing allocator that frees at once gets no extra flushDone', () => {
    const b = spyBacking();
    const pool = withPagePool(b, { highWatermark: 4 });
    pool.refill();
    pool.drain();
    expect(b.frees).toHaveLength(4);
    expect(b.flushes).toBe(0);
  });
});

describe('withPagePool: under a page table', () => {
  it('map/unmap churn recycles tables only after the flush and tears down to zero', () => {
    const b = spyBacking();
    const pool = withPagePool(b, { highWatermark: 8 });
    const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: SZ_4K | SZ_2M | SZ_1G, ias: 48, oas: 48 }, { allocator: pool, tlb: { deferred: true } });
    for (let round = 0; round < 4; round++) {
      const iova = (round + 1) * SZ_1G;
      expect(pt.mapPages(iova, 0x1_0000_0000, SZ_4K, 2, ['read', 'write'])).toMatchObject({ mapped: 2 * SZ_4K });
      expect(pt.mapPages(iova + SZ_2M, 0x1_0000_0000, SZ_4K, 1, ['read'])).toMatchObject({ mapped: SZ_4K });
      // One 1 GiB unmap over a table frees the level-2 table and both leaf tables under it.
      expect(pt.unmapPages(iova, SZ_1G, 1, new IotlbGather())).toMatchObject({ unmapped: SZ_1G });
      expect(pool.counters().pendingFlushPages).toBe(3);
      assertLayered(pool, b);
      pool.flushDone();
    }
    // The PGD and round 0 (level-1 table + 3) missed; every later round was served by the pool.
    expect(pool.counters()).toMatchObject({ misses: 5, hits: 9 });
    pt.free();
    pool.flushDone();
    pool.drain();
    expect(b.system.stats()).toMatchObject({ outstanding: 0, liveTables: 0 });
    assertAccounting(pool);
  });
});

describe('withPagePool: flush tokens (contract v2)', () => {
  const token = (id: number) => ({ id, done: false });
  const freeCtx = (flush: { id: number; done: boolean }) => ({ kind: 'table' as const, level: 3, flush });

  it('a free under a completed token is reusable at once (the synchronous flush already ran)', () => {
    const pool = withPagePool(spyBacking(), { highWatermark: 4 });
    const p = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    pool.free(p, SZ_4K, freeCtx({ id: 1, done: true }));
    expect(pool.stats()).toMatchObject({ pendingFlush: 0, cached: SZ_4K });
    expect(pool.alloc(SZ_4K, BLOCKING_CTX)).toBe(p);
  });

  it('a free under a pending token waits for flushDone(that token); another token does not release it', () => {
    const pool = withPagePool(spyBacking(), { highWatermark: 4 });
    const a = token(10);
    const b = token(11);
    const pa = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    const pb = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    pool.free(pa, SZ_4K, freeCtx(a));
    pool.free(pb, SZ_4K, freeCtx(b));
    expect(pool.stats()).toMatchObject({ pendingFlush: 2 * SZ_4K, cached: 0 });
    b.done = true;
    pool.flushDone(b);
    expect(pool.stats()).toMatchObject({ pendingFlush: SZ_4K, cached: SZ_4K });
    expect(pool.counters().pendingFlushPages).toBe(1);
    expect(pool.alloc(SZ_4K, BLOCKING_CTX)).toBe(pb);
    const fresh = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    expect([pa, pb]).not.toContain(fresh);
    a.done = true;
    pool.flushDone(a);
    expect(pool.alloc(SZ_4K, BLOCKING_CTX)).toBe(pa);
  });

  it('above the high watermark a flushed page goes down with its own (now done) FreeCtx', () => {
    const b = spyBacking();
    const pool = withPagePool(b, { highWatermark: 0 });
    const t = token(12);
    const p = pool.alloc(SZ_4K, BLOCKING_CTX)!;
    const ctx = freeCtx(t);
    pool.free(p, SZ_4K, ctx);
    expect(b.frees).toHaveLength(0);
    t.done = true;
    pool.flushDone(t);
    expect(b.frees).toEqual([[p, SZ_4K]]);
    expect(b.freeCtxs).toEqual([ctx]);
  });

  it('refill forwards the ctx it is given; the default says what it is (a blocking lower-table allocation)', () => {
    const b = spyBacking();
    const pool = withPagePool(b, { highWatermark: 2 });
    pool.refill();
    const prepare = { mayBlock: true, phase: 'prepare' as const, kind: 'table' as const, level: 3 };
    pool.setWatermarks(0, 3);
    pool.refill(prepare);
    expect(b.ctxs).toEqual([
      { mayBlock: true, kind: 'table' },
      { mayBlock: true, kind: 'table' },
      prepare,
    ]);
  });

  it('a miss forwards the caller ctx itself (kind and level reach the layer below)', () => {
    const b = spyBacking();
    const pool = withPagePool(b);
    const ctx = { mayBlock: false, kind: 'pgd' as const, level: 0 };
    pool.alloc(SZ_4K, ctx);
    expect(b.ctxs[0]).toBe(ctx);
  });
});
