import { ATOMIC_CTX, AllocatorMisuseError, BLOCKING_CTX } from '@io-pgtable/allocator-api';
import { IotlbGather, createPageTable } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import { withBatching } from '../src/index.js';
import { checkHeld, traced } from './helpers.js';

const SZ_4K = 4096;
const SZ_2M = 0x20_0000;
const SZ_1G = 0x4000_0000;

function ruleOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof AllocatorMisuseError) return e.rule;
    throw e;
  }
  return 'no error';
}

describe('withBatching: caps and options', () => {
  it('declares deferred free, backing zeroing and its name', () => {
    const t = traced();
    expect(withBatching(t.allocator, { batch: 4 }).caps).toMatchObject({
      name: 'batched',
      defersFree: true,
      zeroes: 'backing',
      mayFail: false,
      maxSize: t.system.caps.maxSize,
    });
    expect(withBatching(t.allocator, { batch: 4, name: 'bulk' }).caps.name).toBe('bulk');
    expect(withBatching(t.allocator, { batch: 4 }).memory).toBe(t.system.memory);
  });

  it.each([[{ batch: 0 }], [{ batch: 2.5 }], [{ batch: -1 }], [{ batch: Number.NaN }], [{ batch: 4, mode: 'some' as never }], [{} as never]])(
    'rejects %j with a RangeError',
    (opts) => {
      expect(() => withBatching(traced().allocator, opts)).toThrow(RangeError);
    },
  );
});

describe('withBatching: refills', () => {
  it('the first allocation takes one batch of N pages; the next N-1 make no backing call', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 8 });
    const first = a.alloc(SZ_4K, ATOMIC_CTX);
    expect(first).not.toBeNull();
    expect(t.system.allocCalls).toBe(8);
    expect(a.counters()).toMatchObject({ allocBatches: 1, innerAllocCalls: 8, pagesObtained: 8, pagesHeld: 7, lastRefillCount: 8 });
    for (let i = 0; i < 7; i++) a.alloc(SZ_4K, ATOMIC_CTX);
    expect(t.system.allocCalls).toBe(8);
    expect(a.stats()).toMatchObject({ backingCalls: 1, live: 8 * SZ_4K, cached: 0, liveTables: 8 });
    a.alloc(SZ_4K, ATOMIC_CTX);
    expect(a.counters()).toMatchObject({ allocBatches: 2, innerAllocCalls: 16, pagesPerBackingCall: 8, pagesHeld: 7 });
    checkHeld(a, t);
  });

  it('passes the caller context to every backing call of the refill', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 3 });
    a.alloc(SZ_4K, ATOMIC_CTX);
    expect(t.log.allocCtx).toEqual([ATOMIC_CTX, ATOMIC_CTX, ATOMIC_CTX]);
  });

  it('keeps a separate batch per allocation size', () => {
    const t = traced({ minBlock: 64 });
    const a = withBatching(t.allocator, { batch: 4 });
    const small = a.alloc(64, BLOCKING_CTX)!;
    const page = a.alloc(SZ_4K, BLOCKING_CTX)!;
    expect(small % 64).toBe(0);
    expect(page % SZ_4K).toBe(0);
    expect([a.heldPages(64), a.heldPages(SZ_4K)]).toEqual([3, 3]);
    expect(a.stats()).toMatchObject({ cached: 3 * 64 + 3 * SZ_4K, backingCalls: 2 });
    checkHeld(a, t);
  });

  it('refill() takes a batch now and returns the exact count', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 5 });
    expect(a.refill(SZ_4K, BLOCKING_CTX)).toBe(5);
    expect(a.heldPages(SZ_4K)).toBe(5);
    a.alloc(SZ_4K, ATOMIC_CTX);
    expect(a.counters()).toMatchObject({ allocBatches: 1, pagesHeld: 4 });
    expect(ruleOf(() => a.refill(96, BLOCKING_CTX))).toBe('size');
    checkHeld(a, t);
  });

  it('rejects a bad size with a size error and no backing call', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 2 });
    for (const size of [0, 32, 3000, 2 << 20]) expect(ruleOf(() => a.alloc(size, BLOCKING_CTX))).toBe('size');
    expect(t.system.allocCalls).toBe(0);
    expect(a.counters().allocBatches).toBe(0);
  });
});

describe('withBatching: short batches', () => {
  it('all-or-nothing: a short batch gives back every page it got and fails', () => {
    const t = traced({ failWhen: (n) => n >= 3 });
    const a = withBatching(t.allocator, { batch: 5 });
    expect(a.alloc(SZ_4K, BLOCKING_CTX)).toBeNull();
    expect(t.log.freed).toHaveLength(3);
    expect(t.system.stats().outstanding).toBe(0);
    expect(a.counters()).toMatchObject({ shortBatches: 1, pagesReleasedOnFailure: 3, lastRefillCount: 0, pagesHeld: 0, innerAllocCalls: 4 });
    expect(a.stats()).toMatchObject({ outstanding: 0, backingCalls: 1 });
    expect(a.caps.mayFail).toBe(true);
    checkHeld(a, t);
  });

  it('partial: keeps the pages it got, reports the exact count and serves from them', () => {
    const t = traced({ failWhen: (n) => n >= 3 });
    const a = withBatching(t.allocator, { batch: 5, mode: 'partial' });
    const p = a.alloc(SZ_4K, BLOCKING_CTX);
    expect(p).not.toBeNull();
    expect(a.counters()).toMatchObject({ shortBatches: 1, pagesReleasedOnFailure: 0, lastRefillCount: 3, pagesHeld: 2, pagesObtained: 3 });
    expect(t.log.freed).toHaveLength(0);
    checkHeld(a, t);
    a.alloc(SZ_4K, BLOCKING_CTX);
    a.alloc(SZ_4K, BLOCKING_CTX);
    expect(a.alloc(SZ_4K, BLOCKING_CTX)).toBeNull();
    expect(a.counters()).toMatchObject({ lastRefillCount: 0, allocBatches: 2, shortBatches: 2 });
    checkHeld(a, t);
  });

  it('partial refill() reports each exact count', () => {
    const t = traced({ failWhen: (n) => n === 2 || n >= 6 });
    const a = withBatching(t.allocator, { batch: 4, mode: 'partial' });
    expect(a.refill(SZ_4K, BLOCKING_CTX)).toBe(2);
    expect(a.refill(SZ_4K, BLOCKING_CTX)).toBe(3);
    expect(a.refill(SZ_4K, BLOCKING_CTX)).toBe(0);
    expect(a.heldPages(SZ_4K)).toBe(5);
    expect(a.counters().pagesPerBackingCall).toBeCloseTo(5 / 3, 12);
    checkHeld(a, t);
  });

  it('all-or-nothing refill() reports 0 or N, never a partial count', () => {
    const t = traced({ failWhen: (n) => n === 5 });
    const a = withBatching(t.allocator, { batch: 4 });
    expect(a.refill(SZ_4K, BLOCKING_CTX)).toBe(4);
    expect(a.refill(SZ_4K, BLOCKING_CTX)).toBe(0);
    expect(a.refill(SZ_4K, BLOCKING_CTX)).toBe(4);
    expect(a.counters()).toMatchObject({ pagesReleasedOnFailure: 1, pagesHeld: 8 });
    checkHeld(a, t);
  });
});

describe('withBatching: deferred, batched frees', () => {
  it('frees wait for flushDone, then go to the backing allocator in one batch', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 4 });
    const ps = [0, 1, 2].map(() => a.alloc(SZ_4K, BLOCKING_CTX)!);
    a.free(ps[0]!, SZ_4K);
    a.free(ps[2]!, SZ_4K);
    expect(t.log.freed).toEqual([]);
    expect(a.stats()).toMatchObject({ pendingFlush: 2 * SZ_4K, live: SZ_4K, cached: SZ_4K, outstanding: 4 * SZ_4K });
    expect(a.counters().pendingFlushPages).toBe(2);
    checkHeld(a, t);
    a.flushDone();
    expect(t.log.freed).toEqual([ps[0], ps[2]]);
    expect(t.log.flushes).toBe(1);
    expect(a.counters()).toMatchObject({ releaseBatches: 1, innerFreeCalls: 2, pendingFlushPages: 0 });
    checkHeld(a, t);
  });

  it('a flush with nothing pending is forwarded but is not a release batch', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 2 });
    a.flushDone();
    expect(t.log.flushes).toBe(1);
    expect(a.counters().releaseBatches).toBe(0);
  });

  it('a freed table is never handed out again before the flush', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 2 });
    const p = a.alloc(SZ_4K, BLOCKING_CTX)!;
    a.free(p, SZ_4K);
    const seen = new Set(Array.from({ length: 20 }, () => a.alloc(SZ_4K, BLOCKING_CTX)));
    expect(seen.has(p)).toBe(false);
  });

  it('accepts the logical size of a table allocated as 64 bytes', () => {
    const t = traced({ minBlock: 64 });
    const a = withBatching(t.allocator, { batch: 2 });
    const pgd = a.alloc(64, BLOCKING_CTX)!;
    a.free(pgd, 16);
    a.flushDone();
    expect(t.log.freed).toEqual([pgd]);
    checkHeld(a, t);
  });
});

describe('withBatching: misuse', () => {
  it('double, foreign and wrong-size frees throw and change nothing', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 2 });
    const p = a.alloc(SZ_4K, BLOCKING_CTX)!;
    const q = a.alloc(SZ_4K, BLOCKING_CTX)!;
    a.free(q, SZ_4K);
    const before = { stats: a.stats(), counters: a.counters() };
    expect(ruleOf(() => a.free(q, SZ_4K))).toBe('double-free');
    expect(ruleOf(() => a.free(p + SZ_4K * 16, SZ_4K))).toBe('foreign-free');
    expect(ruleOf(() => a.free(t.system.alloc(SZ_4K, BLOCKING_CTX)!, SZ_4K))).toBe('foreign-free');
    for (const size of [64, 8192, 0, Number.NaN]) expect(ruleOf(() => a.free(p, size))).toBe('free-size');
    expect({ stats: a.stats(), counters: a.counters() }).toEqual(before);
    a.free(p, SZ_4K);
    expect(a.counters().pendingFlushPages).toBe(2);
  });

  it('a page still held in the batch was never handed out: freeing it is foreign', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 2 });
    const p = a.alloc(SZ_4K, BLOCKING_CTX)!;
    const other = p ^ SZ_4K; // the batch is two adjacent pages from an empty system allocator
    expect(a.heldPages(SZ_4K)).toBe(1);
    const e = (() => {
      try {
        a.free(other, SZ_4K);
      } catch (err) {
        return err as AllocatorMisuseError;
      }
      return null;
    })();
    expect(e).toBeInstanceOf(AllocatorMisuseError);
    expect(e!.message).toMatch(/^\[iopgt\] \[batched\] foreign-free: /);
    expect(a.heldPages(SZ_4K)).toBe(1);
  });
});

describe('withBatching: drain', () => {
  it('drain returns held pages but leaves pending ones for their flush', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 4 });
    const p = a.alloc(SZ_4K, BLOCKING_CTX)!;
    a.free(p, SZ_4K);
    a.drain();
    expect(a.stats()).toMatchObject({ cached: 0, pendingFlush: SZ_4K, outstanding: SZ_4K });
    expect(a.counters().pagesHeld).toBe(0);
    checkHeld(a, t);
    a.flushDone();
    expect(t.system.stats().outstanding).toBe(0);
    expect(a.stats().outstanding).toBe(0);
  });
});

describe('withBatching: over a deferring backing allocator', () => {
  it('pages returned outside a flush (failed batch, drain) go down under a completed flush, with no flushDone', () => {
    const t = traced({ defersFree: true, failWhen: (n) => n === 5 });
    const a = withBatching(t.allocator, { batch: 3 });
    a.alloc(SZ_4K, BLOCKING_CTX);
    expect(a.alloc(SZ_4K, BLOCKING_CTX)).not.toBeNull();
    expect(a.alloc(SZ_4K, BLOCKING_CTX)).not.toBeNull();
    expect(a.alloc(SZ_4K, BLOCKING_CTX)).toBeNull(); // 2 of 3 obtained, both given back
    expect(t.log.freed).toHaveLength(2);
    a.refill(SZ_4K, BLOCKING_CTX);
    a.drain();
    expect(t.log.freed).toHaveLength(5);
    expect(t.log.freeCtx.every((c) => c?.flush.done === true)).toBe(true);
    expect(t.log.flushes).toBe(0);
  });

  it('a backing allocator that frees at once gets no extra flushDone', () => {
    const t = traced({ failWhen: (n) => n === 1 });
    const a = withBatching(t.allocator, { batch: 3 });
    expect(a.alloc(SZ_4K, BLOCKING_CTX)).toBeNull();
    a.refill(SZ_4K, BLOCKING_CTX);
    a.drain();
    expect(t.log.freed).toHaveLength(4);
    expect(t.log.flushes).toBe(0);
  });
});

describe('withBatching: under a page table', () => {
  it('map/unmap churn: tables come N per backing call and everything returns at teardown', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 16 });
    const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: SZ_4K | SZ_2M | SZ_1G, ias: 48, oas: 48 }, { allocator: a, tlb: { deferred: true } });
    for (let round = 0; round < 8; round++) {
      const iova = (round + 1) * SZ_1G;
      expect(pt.mapPages(iova, 0x1_0000_0000, SZ_4K, 4, ['read'])).toMatchObject({ mapped: 4 * SZ_4K });
      expect(pt.mapPages(iova + SZ_2M, 0x1_0000_0000, SZ_4K, 4, ['read'])).toMatchObject({ mapped: 4 * SZ_4K });
      expect(pt.unmapPages(iova, SZ_1G, 1, new IotlbGather())).toMatchObject({ unmapped: SZ_1G });
      checkHeld(a, t);
      a.flushDone();
    }
    // PGD + level-1 table + 8 rounds x 3 tables = 26 tables: two batches of 16.
    expect(a.counters()).toMatchObject({ allocBatches: 2, innerAllocCalls: 32, pagesHeld: 6, releaseBatches: 8, innerFreeCalls: 24 });
    pt.free();
    a.flushDone();
    a.drain();
    expect(t.system.stats()).toMatchObject({ outstanding: 0, liveTables: 0 });
    expect(a.stats()).toMatchObject({ outstanding: 0, live: 0, cached: 0, pendingFlush: 0 });
  });
});

describe('withBatching: flush tokens (contract v2)', () => {
  const freeCtx = (flush: { id: number; done: boolean }) => ({ kind: 'table' as const, level: 3, flush });

  it('frees wait for the flush of their own token; a completed token releases at once', () => {
    const t = traced();
    const a = withBatching(t.allocator, { batch: 4 });
    const [p, q, r] = [a.alloc(SZ_4K, BLOCKING_CTX)!, a.alloc(SZ_4K, BLOCKING_CTX)!, a.alloc(SZ_4K, BLOCKING_CTX)!];
    const x = { id: 20, done: false };
    const y = { id: 21, done: false };
    a.free(p, SZ_4K, freeCtx(x));
    a.free(q, SZ_4K, freeCtx(y));
    expect(a.stats().pendingFlush).toBe(2 * SZ_4K);
    y.done = true;
    a.flushDone(y);
    expect(t.log.freed).toEqual([q]);
    expect(a.counters()).toMatchObject({ pendingFlushPages: 1, releaseBatches: 1 });
    a.free(r, SZ_4K, freeCtx({ id: 22, done: true }));
    expect(t.log.freed).toEqual([q, r]);
    x.done = true;
    a.flushDone(x);
    expect(t.log.freed).toEqual([q, r, p]);
    expect(a.stats().pendingFlush).toBe(0);
  });
});
