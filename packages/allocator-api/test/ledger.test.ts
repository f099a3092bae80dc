import { describe, expect, it } from 'vitest';
import { AllocatorMisuseError, TableLedger, freeSizeError, isFreeSize, notLiveError, type Paddr } from '../src/index.js';

function misuse(fn: () => unknown): AllocatorMisuseError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AllocatorMisuseError) return e;
    throw e;
  }
  throw new Error('expected an AllocatorMisuseError, nothing was thrown');
}

describe('TableLedger', () => {
  it('counts live tables and bytes through add and remove', () => {
    const l = new TableLedger('t');
    expect([l.count, l.bytes]).toEqual([0, 0]);
    l.add(0x1000, 4096);
    l.add(0x2000, 64);
    l.add(0x3000, 8192);
    expect([l.count, l.bytes]).toEqual([3, 4096 + 64 + 8192]);
    expect(l.has(0x2000)).toBe(true);
    expect(l.sizeOf(0x3000)).toBe(8192);
    expect(l.remove(0x1000, 4096)).toBe(4096);
    expect([l.count, l.bytes]).toEqual([2, 64 + 8192]);
    expect(l.has(0x1000)).toBe(false);
    expect(l.sizeOf(0x1000)).toBeUndefined();
  });

  it('accepts the logical size of a small table allocated as 64 bytes', () => {
    const l = new TableLedger('t');
    const logicalSizes = [8, 16, 32, 64];
    for (let i = 0; i < logicalSizes.length; i++) l.add(0x1000 + i * 64, 64);
    for (const [i, logical] of logicalSizes.entries()) expect(l.remove(0x1000 + i * 64, logical)).toBe(64);
    expect([l.count, l.bytes]).toEqual([0, 0]);
  });

  it('with minBlock, expects the block size for any logical size up to it', () => {
    const l = new TableLedger('sys', { minBlock: 4096, noun: 'block' });
    l.add(0x1000, 4096);
    l.add(0x2000, 4096);
    l.add(0x4000, 8192);
    expect(l.remove(0x1000, 16)).toBe(4096);
    expect(l.remove(0x2000, 4096)).toBe(4096);
    const e = misuse(() => l.remove(0x4000, 4096));
    expect(e.rule).toBe('free-size');
    expect(e.message).toBe('[iopgt] [sys] free-size: free of 0x4000 with size 4096, but the block is 8192 bytes');
    expect(l.remove(0x4000, 8192)).toBe(8192);
    expect(misuse(() => l.remove(0x4000, 8192)).message).toBe('[iopgt] [sys] foreign-free: free of 0x4000 (size 8192), which is not a live block of this allocator');
  });

  it('rejects a free with a size other than the allocated one (free-size) and changes nothing', () => {
    const l = new TableLedger('pool');
    l.add(0x4000, 4096);
    for (const size of [64, 2048, 8192, 0, -4096, 4096.5, Number.NaN, Infinity, '4096' as unknown as number]) {
      const e = misuse(() => l.remove(0x4000, size));
      expect(e).toMatchObject({ rule: 'free-size', allocator: 'pool', paddr: 0x4000 });
      expect(e.message).toMatch(/^\[iopgt\] \[pool\] free-size: free of 0x4000 with size .*, but the table is 4096 bytes$/);
    }
    expect([l.count, l.bytes, l.sizeOf(0x4000)]).toEqual([1, 4096, 4096]);
  });

  it('without wasFreed, any free of a non-live address is foreign-free', () => {
    const l = new TableLedger('pool');
    l.add(0x4000, 4096);
    l.remove(0x4000, 4096);
    for (const p of [0x4000, 0x8000, 0x4040]) {
      const e = misuse(() => l.remove(p, 4096));
      expect(e).toMatchObject({ rule: 'foreign-free', paddr: p });
      expect(e.message).toBe(`[iopgt] [pool] foreign-free: free of 0x${p.toString(16)} (size 4096), which is not a live table of this allocator`);
    }
  });

  it('asks wasFreed only about non-live addresses and names a double free', () => {
    const freed = new Set<Paddr>();
    const asked: Paddr[] = [];
    const l = new TableLedger('pool', {
      wasFreed: (p) => {
        asked.push(p);
        return freed.has(p);
      },
    });
    l.add(0x4000, 4096);
    expect(l.remove(0x4000, 4096)).toBe(4096);
    freed.add(0x4000);
    expect(asked).toEqual([]);
    const e = misuse(() => l.remove(0x4000, 4096));
    expect(e).toMatchObject({ rule: 'double-free', paddr: 0x4000 });
    expect(e.message).toBe('[iopgt] [pool] double-free: free of 0x4000 (size 4096), which is not a live table: it was already freed');
    expect(misuse(() => l.remove(0x9000, 4096)).rule).toBe('foreign-free');
    expect(asked).toEqual([0x4000, 0x9000]);
  });

  it('puts the state wasFreed reports into the double-free message', () => {
    const l = new TableLedger('page-pool', { wasFreed: (p) => (p === 0x4000 ? 'waiting for a flush' : false) });
    const e = misuse(() => l.remove(0x4000, 4096));
    expect(e.rule).toBe('double-free');
    expect(e.message).toMatch(/^\[iopgt\] \[page-pool\] double-free: free of 0x4000 \(size 4096\), which is not a live table: it was already freed and is waiting for a flush$/);
  });

  it('checks the address before the size: a double free with a wrong size is still double-free', () => {
    const l = new TableLedger('pool', { wasFreed: () => true });
    expect(misuse(() => l.remove(0x4000, 12345)).rule).toBe('double-free');
  });

  it('check() validates like remove() but keeps the table live', () => {
    const l = new TableLedger('r', { wasFreed: () => false });
    l.add(0x4000, 64);
    expect(l.check(0x4000, 16)).toBe(64);
    expect([l.count, l.bytes]).toEqual([1, 64]);
    expect(misuse(() => l.check(0x4000, 128)).rule).toBe('free-size');
    expect(misuse(() => l.check(0x5000, 64)).rule).toBe('foreign-free');
    expect(l.has(0x4000)).toBe(true);
  });

  it('a re-added live address replaces its size and counts its bytes again (no hidden check)', () => {
    // The core, not the ledger, catches an allocator handing out a live table twice.
    const l = new TableLedger('mutant');
    l.add(0x4000, 4096);
    l.add(0x4000, 4096);
    expect([l.count, l.bytes]).toEqual([1, 8192]);
  });

  it('keeps no memory of freed addresses: a million add/remove cycles leave it empty', () => {
    let asked = 0;
    const l = new TableLedger('soak', {
      wasFreed: () => {
        asked++;
        return false;
      },
    });
    for (let i = 0; i < 1_000_000; i++) {
      const p = 0x1_0000_0000 + i * 4096;
      l.add(p, 4096);
      l.remove(p, 4096);
    }
    expect([l.count, l.bytes, asked]).toEqual([0, 0, 0]);
    // A freed address is unknown to the ledger itself: only the caller's predicate can tell.
    expect(misuse(() => l.remove(0x1_0000_0000, 4096)).rule).toBe('foreign-free');
  });

  it('rejects a minBlock below 64 or not an integer', () => {
    for (const minBlock of [0, 32, 100.5, Number.NaN]) expect(() => new TableLedger('t', { minBlock })).toThrow(RangeError);
  });
});

describe('free-check helpers for allocators with their own map', () => {
  it('isFreeSize accepts exactly the logical sizes whose allocation is the recorded size', () => {
    expect([8, 16, 32, 64].map((s) => isFreeSize(s, 64))).toEqual([true, true, true, true]);
    expect(isFreeSize(4096, 4096)).toBe(true);
    for (const s of [64, 2048, 8192, 0, -4096, 4096.5, Number.NaN, '4096' as unknown as number]) expect(isFreeSize(s, 4096)).toBe(false);
    expect(isFreeSize(16, 4096, 4096)).toBe(true);
    expect(isFreeSize(4096, 8192, 4096)).toBe(false);
  });

  it('notLiveError names foreign-free, double-free and where a freed page is', () => {
    const foreign = notLiveError('pool', 0x9000, 4096, false);
    expect(foreign).toMatchObject({ rule: 'foreign-free', allocator: 'pool', paddr: 0x9000 });
    expect(foreign.message).toBe('[iopgt] [pool] foreign-free: free of 0x9000 (size 4096), which is not a live table of this allocator');
    expect(notLiveError('pool', 0x9000, 4096, true).message).toBe('[iopgt] [pool] double-free: free of 0x9000 (size 4096), which is not a live table: it was already freed');
    const idle = notLiveError('pool', 0x9000, 16, 'idle in the pool', 'block');
    expect(idle.rule).toBe('double-free');
    expect(idle.message).toBe('[iopgt] [pool] double-free: free of 0x9000 (size 16), which is not a live block: it was already freed and is idle in the pool');
  });

  it('freeSizeError names the recorded size', () => {
    const e = freeSizeError('sys', 0x8000_0000, 65536, 4096, 'block');
    expect(e).toMatchObject({ rule: 'free-size', paddr: 0x8000_0000 });
    expect(e.message).toBe('[iopgt] [sys] free-size: free of 0x80000000 with size 65536, but the block is 4096 bytes');
  });
});
