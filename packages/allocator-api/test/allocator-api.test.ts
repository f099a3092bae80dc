import { describe, expect, it } from 'vitest';
import {
  AccountingError,
  AllocatorMisuseError,
  EMPTY_STATS,
  allocSizeFor,
  assertAccounting,
  definePlugin,
  drainAll,
  stackLayers,
  isPowerOfTwo,
  type TableAllocator,
} from '../src/index.js';

function fakeAllocator(stats = EMPTY_STATS): TableAllocator & { flushes: number } {
  const a = {
    flushes: 0,
    caps: { name: 'fake', minSize: 64, maxSize: 1 << 20, defersFree: false, zeroes: 'backing', mayFail: true } as const,
    memory: { zero() {}, isZero: () => true, clean() {} },
    alloc: () => null,
    free() {},
    flushDone() {
      a.flushes++;
    },
    stats: () => stats,
  };
  return a;
}

describe('isPowerOfTwo', () => {
  it('accepts powers of two on both sides of 2^31', () => {
    for (let k = 0; k <= 52; k++) expect(isPowerOfTwo(2 ** k)).toBe(true);
  });
  it('rejects non-powers, including ones whose low 32 bits are zero', () => {
    for (const n of [0, -4, 3, 6, 0x201000, 3 * 2 ** 32, 2 ** 40 + 2 ** 12, 0.5, NaN, Infinity]) {
      expect(isPowerOfTwo(n)).toBe(false);
    }
  });
});

describe('allocSizeFor', () => {
  it('rounds tiny PGDs up to 64 bytes and leaves larger tables alone', () => {
    expect(allocSizeFor(8)).toBe(64);
    expect(allocSizeFor(16)).toBe(64);
    expect(allocSizeFor(64)).toBe(64);
    expect(allocSizeFor(4096)).toBe(4096);
  });
});

describe('assertAccounting', () => {
  it('accepts a balanced allocator', () => {
    const s = { ...EMPTY_STATS, outstanding: 12288, live: 4096, cached: 4096, pendingFlush: 4096 };
    expect(assertAccounting(fakeAllocator(s))).toEqual(s);
  });
  it('names the allocator and the numbers when pages are missing', () => {
    const s = { ...EMPTY_STATS, outstanding: 8192, live: 4096 };
    expect(() => assertAccounting(fakeAllocator(s))).toThrow(AccountingError);
    expect(() => assertAccounting(fakeAllocator(s))).toThrow(/\[fake\] accounting: outstanding 8192 != live 4096/);
  });
  it('rejects negative counters', () => {
    const s = { ...EMPTY_STATS, outstanding: -64, live: -64 };
    expect(() => assertAccounting(fakeAllocator(s))).toThrow(/not a non-negative integer/);
  });
});

describe('drainAll', () => {
  /**
   * A pool-like bottom that defers frees until flushDone and releases idle pages on drain,
   * under a top layer that holds idle pages itself but reports nothing once it has freed
   * them: the case where watching only the top would stop too early.
   */
  function stack() {
    const bottom = { pending: 0, cached: 0 };
    let topIdle = 2 * 4096;
    const leaf: TableAllocator = {
      ...fakeAllocator(),
      flushDone() {
        bottom.cached += bottom.pending;
        bottom.pending = 0;
      },
      drain() {
        bottom.cached = 0;
      },
      stats: () => ({ ...EMPTY_STATS, outstanding: bottom.pending + bottom.cached, cached: bottom.cached, pendingFlush: bottom.pending }),
    };
    const top = definePlugin(leaf, {
      caps: { name: 'top' },
      alloc: () => null,
      free() {},
      drain() {
        bottom.pending += topIdle; // freed into the bottom, which defers them
        topIdle = 0;
        leaf.drain!();
      },
      stats: () => EMPTY_STATS, // the top never reports its idle pages: only the bottom shows them
    });
    return { top, leaf };
  }
  it('repeats flushDone + drain until every layer (found through inner) settles', () => {
    const { top, leaf } = stack();
    expect(stackLayers(top)).toEqual([top, leaf]);
    drainAll(top);
    expect(leaf.stats().outstanding).toBe(0);
  });
  it('gives up with an AccountingError when a stack never settles', () => {
    let n = 0;
    const restless: TableAllocator = { ...fakeAllocator(), drain() {}, stats: () => ({ ...EMPTY_STATS, outstanding: ++n, live: n }) };
    expect(() => drainAll(restless, 3)).toThrow(/did not settle after 3 rounds/);
  });
});

describe('definePlugin', () => {
  it('inherits caps and memory from the inner allocator and forwards flushDone after its own', () => {
    const inner = fakeAllocator();
    const order: string[] = [];
    const plugin = definePlugin(inner, {
      caps: { name: 'outer', defersFree: true },
      alloc: () => 4096,
      free() {},
      stats: () => EMPTY_STATS,
      flushDone: () => order.push('outer'),
    });
    expect(plugin.caps).toMatchObject({ name: 'outer', defersFree: true, minSize: 64, zeroes: 'backing' });
    expect(plugin.memory).toBe(inner.memory);
    plugin.flushDone();
    expect(order).toEqual(['outer']);
    expect(inner.flushes).toBe(1);
    expect(Object.isFrozen(plugin.caps)).toBe(true);
  });
});

describe('errors', () => {
  it('carry the rule and a prefixed message', () => {
    const e = new AllocatorMisuseError('pool', 'double-free', 'table 0x1000 freed twice', 0x1000);
    expect(e.message).toBe('[iopgt] [pool] double-free: table 0x1000 freed twice');
    expect(e.rule).toBe('double-free');
    expect(e.paddr).toBe(0x1000);
    expect(e).toBeInstanceOf(Error);
  });
});
