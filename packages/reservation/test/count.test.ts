import { describe, expect, it } from 'vitest';
import { CountError, tablesNeeded, type CountOp } from '../src/index.js';
import { PANTHOR_BITMAP, SZ_1G, SZ_2M, SZ_4K, geometry } from './helpers.js';

const g48 = geometry('ARM_64_LPAE_S1', PANTHOR_BITMAP, 48, 48);
const map = (iova: number, size: number, pgsize?: number): CountOp => ({ kind: 'map', iova, size, ...(pgsize ? { pgsize } : {}) });
const unmap = (iova: number, size: number): CountOp => ({ kind: 'unmap', iova, size });

describe('map counts (Panthor/msm worked vectors, allocator-users.md §1.4)', () => {
  it('a single 4K map on a 48-bit 4K table needs 3 tables', () => {
    expect(tablesNeeded(g48, [map(0x1234_5000, SZ_4K)])).toEqual({ total: 3, perLevel: [0, 1, 1, 1] });
  });
  it('8 KiB at 2 MiB - 4 KiB needs 4 tables (1 + 1 + 2)', () => {
    expect(tablesNeeded(g48, [map(SZ_2M - SZ_4K, 2 * SZ_4K)])).toEqual({ total: 4, perLevel: [0, 1, 1, 2] });
  });
  it('8 KiB across a 512 GiB boundary needs two tables at every level', () => {
    expect(tablesNeeded(g48, [map(2 ** 39 - SZ_4K, 2 * SZ_4K)]).total).toBe(6);
  });
  it('a 2 MiB block map needs no leaf table', () => {
    expect(tablesNeeded(g48, [map(4 * SZ_2M, 2 * SZ_2M, SZ_2M)])).toEqual({ total: 2, perLevel: [0, 1, 1, 0] });
  });
  it('an unspecified pgsize counts as the granule (worst case)', () => {
    expect(tablesNeeded(g48, [map(0, 4 * SZ_2M)]).total).toBe(1 + 1 + 4);
  });
  it('a concatenated stage-2 PGD starts at level 1: a 4K map needs 2', () => {
    const g = geometry('ARM_64_LPAE_S2', SZ_4K + SZ_2M + SZ_1G, 40, 40);
    expect(g.startLevel).toBe(1);
    expect(g.pgdEntries).toBe(1024);
    expect(tablesNeeded(g, [map(0x80_0000_0000 - SZ_4K, SZ_4K)]).perLevel).toEqual([0, 0, 1, 1]);
  });
  it('the same ias as stage 1 (no concatenation) needs 3', () => {
    const g = geometry('ARM_64_LPAE_S1', SZ_4K + SZ_2M + SZ_1G, 40, 40);
    expect(g.startLevel).toBe(0);
    expect(tablesNeeded(g, [map(0, SZ_4K)]).total).toBe(3);
  });
  it('a short start level (ias 32 S1, 4-entry PGD at level 1) needs 2', () => {
    const g = geometry('ARM_64_LPAE_S1', PANTHOR_BITMAP, 32, 40);
    expect([g.startLevel, g.pgdEntries]).toEqual([1, 4]);
    expect(tablesNeeded(g, [map(0xffff_f000, SZ_4K)]).total).toBe(2);
  });
  it("Mali's forced 4-level walk needs 3 even with ias 32", () => {
    const g = geometry('ARM_MALI_LPAE', PANTHOR_BITMAP, 32, 40);
    expect([g.startLevel, g.pgdEntries]).toEqual([0, 1]);
    expect(tablesNeeded(g, [map(0, SZ_4K)]).perLevel).toEqual([0, 1, 1, 1]);
  });
  it('64K granule, 48 bits: L2 per 4 TiB, L3 per 512 MiB', () => {
    const g = geometry('ARM_64_LPAE_S1', 0x10000 + 0x20000000, 48, 48);
    expect(g.startLevel).toBe(1);
    expect(tablesNeeded(g, [map(0x2000_0000 - 0x10000, 0x20000)]).perLevel).toEqual([0, 0, 1, 2]);
  });
  it('TTBR1 (negative) addresses count like their low bits', () => {
    expect(tablesNeeded(g48, [map(-SZ_2M - SZ_4K, 2 * SZ_4K)]).total).toBe(4);
  });
});

describe('unmap counts under a split policy (requirement 9)', () => {
  const policy = { split: 'split' as const, pgsizeBitmap: PANTHOR_BITMAP };
  it('policy none (Linux >= 6.13) reserves nothing for any unmap', () => {
    expect(tablesNeeded(g48, [unmap(SZ_4K, 3 * SZ_4K)]).total).toBe(0);
  });
  it('2 MiB aligned edges cut nothing', () => {
    expect(tablesNeeded(g48, [unmap(SZ_2M, 2 * SZ_2M)], policy).total).toBe(0);
  });
  it('one ragged edge needs one leaf table', () => {
    expect(tablesNeeded(g48, [unmap(SZ_2M + SZ_4K, SZ_2M - SZ_4K)], policy).total).toBe(1);
    expect(tablesNeeded(g48, [unmap(SZ_2M, SZ_4K)], policy).total).toBe(1);
  });
  it('two ragged edges in different blocks need two', () => {
    expect(tablesNeeded(g48, [unmap(SZ_2M + SZ_4K, SZ_2M)], policy).total).toBe(2);
  });
  it('two ragged edges in the same block share one', () => {
    expect(tablesNeeded(g48, [unmap(SZ_2M + SZ_4K, SZ_4K)], policy).total).toBe(1);
  });
  it('with 1 GiB blocks a 2 MiB-aligned edge needs one L2 table, a 4K-aligned one L2 + L3', () => {
    const p = { split: 'split' as const, pgsizeBitmap: SZ_4K + SZ_2M + SZ_1G };
    expect(tablesNeeded(g48, [unmap(SZ_1G + SZ_2M, SZ_1G - SZ_2M)], p).perLevel).toEqual([0, 0, 1, 0]);
    expect(tablesNeeded(g48, [unmap(SZ_1G + SZ_4K, SZ_1G - SZ_4K)], p).perLevel).toEqual([0, 0, 1, 1]);
  });
  it('without 2 MiB pages the border of a cut 1 GiB block needs one L3 per 2 MiB window', () => {
    const p = { split: 'split' as const, pgsizeBitmap: SZ_4K + SZ_1G };
    // Border [1G, 1G + 8M + 4K): 5 windows of 2 MiB, one L2.
    expect(tablesNeeded(g48, [unmap(SZ_1G + 4 * SZ_2M + SZ_4K, SZ_1G - 4 * SZ_2M - SZ_4K)], p).perLevel).toEqual([0, 0, 1, 5]);
  });
});

describe('merging ops of one job', () => {
  // Sparse-texture style: tiny unsorted maps in one 2 MiB block.
  const tiny = [map(0x10_0000, SZ_4K), map(0x5_0000, SZ_4K), map(0x10_1000, SZ_4K), map(0x1f_f000, SZ_4K)];
  it('per-op counting charges 3 per tiny op', () => {
    expect(tablesNeeded(g48, tiny).total).toBe(12);
  });
  it('msm merging counts ops meeting in one leaf window once', () => {
    expect(tablesNeeded(g48, tiny, { merge: 'msm' }).total).toBe(3);
  });
  it('msm merging does not merge ops in different leaf windows (each range pays its upper levels)', () => {
    expect(tablesNeeded(g48, [map(0, SZ_4K), map(3 * SZ_2M, SZ_4K)], { merge: 'msm' }).total).toBe(6);
  });
  it('union counts every window once, whatever the order', () => {
    expect(tablesNeeded(g48, [map(0, SZ_4K), map(3 * SZ_2M, SZ_4K), map(SZ_4K, SZ_4K)], { merge: 'union' }).total).toBe(4);
  });
  it('an unmap that can free a leaf table makes a later op count it again', () => {
    const ops = [map(0, SZ_4K), unmap(0, SZ_2M), map(0, SZ_4K)];
    expect(tablesNeeded(g48, ops, { merge: 'union', pgsizeBitmap: PANTHOR_BITMAP }).total).toBe(4);
    expect(tablesNeeded(g48, ops, { merge: 'msm', pgsizeBitmap: PANTHOR_BITMAP }).total).toBe(6);
    // With 4K pages only no unmap can free a table: msm's setting.
    expect(tablesNeeded(g48, ops, { merge: 'union', pgsizeBitmap: SZ_4K }).total).toBe(3);
  });
});

describe('bad input', () => {
  it.each([
    ['unaligned iova', map(0x800, SZ_4K)],
    ['zero size', map(0, 0)],
    ['past ias', map(2 ** 48 - SZ_4K, 2 * SZ_4K)],
    ['pgsize not a level size', map(0, 0x10000, 0x10000)],
    ['size not a multiple of pgsize', map(0, SZ_2M + SZ_4K, SZ_2M)],
    ['unknown kind', { kind: 'remap', iova: 0, size: SZ_4K } as unknown as CountOp],
  ])('%s is a CountError naming the op', (_, op) => {
    expect(() => tablesNeeded(g48, [map(0, SZ_4K), op])).toThrow(CountError);
    expect(() => tablesNeeded(g48, [map(0, SZ_4K), op])).toThrow(/op 1:/);
  });
  it('an unknown policy is a CountError', () => {
    expect(() => tablesNeeded(g48, [], { merge: 'magic' as never })).toThrow(CountError);
    expect(() => tablesNeeded(g48, [], { split: 'maybe' as never })).toThrow(CountError);
  });
});
