import type { TableAllocator } from '@io-pgtable/allocator-api';
import { describe, expect, it } from 'vitest';
import { CHUNK_BYTES, IotlbGather, PhysMemory, Prot, createPageTable, createSystemAllocator, hw, type AccessGuard, type Mode } from '../src/index.js';

const RW = Prot.READ | Prot.WRITE;
const S1 = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
/** Stage 2, 16K granule, ias = oas = 40: mandatory concatenation gives a 256 KiB PGD (32768 entries of 32 MiB) at level 2. */
const S2_CONCAT = { pgsizeBitmap: 0x2004000, ias: 40, oas: 40 };
const SZ_16K = 0x4000;
const SZ_32M = 0x200_0000;

describe('storage chunks', () => {
  it('are 64 KiB: a table page lies in one, a concatenated PGD spans several', () => {
    expect(CHUNK_BYTES).toBe(0x1_0000);
    const pt = createPageTable('ARM_64_LPAE_S2', S2_CONCAT);
    expect(pt.geometry.pgdSize).toBe(0x4_0000);
    expect(pt.geometry.startLevel).toBe(2);
  });

  for (const mode of ['kernel', 'strict'] as Mode[]) {
    it(`${mode}: a 256 KiB concatenated PGD is mapped, walked, snapshotted, unmapped and freed in every one of its chunks`, () => {
      const allocator = createSystemAllocator();
      const pt = createPageTable('ARM_64_LPAE_S2', S2_CONCAT, { allocator, mode });
      // One slot in each 64 KiB chunk of the PGD (8192 entries per chunk), the last at the very end.
      const slots = [0, 8191, 8192, 16384 + 5, 24576, 32767];
      for (const [k, s] of slots.entries()) {
        if (k % 2 === 0) expect(pt.mapPages(s * SZ_32M, 0x10_0000_0000 + k * SZ_32M, SZ_32M, 1, RW)).toEqual({ mapped: SZ_32M });
        else expect(pt.mapPages(s * SZ_32M + 3 * SZ_16K, 0x20_0000_0000 + k * SZ_16K, SZ_16K, 2, RW)).toEqual({ mapped: 2 * SZ_16K });
      }
      for (const [k, s] of slots.entries()) {
        if (k % 2 === 0) expect(pt.iovaToPhys(s * SZ_32M + 0x123)).toBe(0x10_0000_0000 + k * SZ_32M + 0x123);
        else expect(pt.iovaToPhys(s * SZ_32M + 4 * SZ_16K + 8)).toBe(0x20_0000_0000 + k * SZ_16K + SZ_16K + 8);
        expect(pt.lookup(s * SZ_32M + 3 * SZ_16K)).toMatchObject({ kind: 'mapped', level: k % 2 === 0 ? 2 : 3 });
      }
      const pgd = pt.tables().get(pt.pgd)!;
      expect([...pgd.keys()]).toEqual(slots);
      // The descriptor at the PGD's last slot sits 256 KiB - 8 past its base, in its fourth chunk.
      expect(pgd.get(32767)).toBe(pt.memory.read64(pt.pgd + 32767 * 8));
      const gather = new IotlbGather();
      for (const [k, s] of slots.entries()) {
        const r = k % 2 === 0 ? pt.unmapPages(s * SZ_32M, SZ_32M, 1, gather) : pt.unmapPages(s * SZ_32M, SZ_32M, 1, gather);
        expect(r).toEqual({ unmapped: SZ_32M });
        expect(pt.iovaToPhys(s * SZ_32M + 3 * SZ_16K)).toBe(0);
      }
      expect([...pt.tables().keys()]).toEqual([pt.pgd]);
      pt.free();
      expect(allocator.stats().outstanding).toBe(0);
    });
  }

  it('strict: an allocator handing out memory inside the last chunk of a live concatenated PGD is caught (overlap)', () => {
    const memory = new PhysMemory();
    const sys = createSystemAllocator({ memory });
    const a = createPageTable('ARM_64_LPAE_S2', S2_CONCAT, { allocator: sys });
    const inside = a.pgd + 3 * CHUNK_BYTES + 0x4000;
    const liar: TableAllocator = { ...sys, caps: { ...sys.caps, name: 'liar' }, alloc: () => inside, free: () => {} };
    expect(() => createPageTable('ARM_64_LPAE_S1', S1, { allocator: liar, memory })).toThrow(expect.objectContaining({ name: 'AllocatorFaultError', rule: 'no-overlap' }));
  });

  it('kernel mode: a PGD whose granule pages would straddle a chunk cannot be modelled; a granule-aligned one of any size can', () => {
    const straddling = 0x8000_0000 + CHUNK_BYTES - 0x2000; // 16K-granule pages of it cross the chunk boundary
    const sys = createSystemAllocator();
    let first = true;
    const at = (p: number): TableAllocator => ({
      ...sys,
      alloc: (size, ctx) => {
        if (!first) return sys.alloc(size, ctx);
        first = false;
        return p;
      },
      free: () => {},
    });
    expect(() => createPageTable('ARM_64_LPAE_S2', S2_CONCAT, { allocator: at(straddling), mode: 'kernel' })).toThrow(expect.objectContaining({ name: 'AllocatorFaultError', rule: 'aligned' }));
    first = true;
    // Granule-aligned but not size-aligned (the kernel never checks): modelled, and it maps.
    const pt = createPageTable('ARM_64_LPAE_S2', S2_CONCAT, { allocator: at(0x1_0000_4000), mode: 'kernel' });
    expect(pt.mapPages(32767 * SZ_32M, 0x10_0000_0000, SZ_32M, 1, RW)).toEqual({ mapped: SZ_32M });
    expect(pt.memory.read64(0x1_0000_4000 + 32767 * 8) & 0xff_ffff_f000n).toBe(0x10_0000_0000n);
  });
});

describe('the fused check-and-write of a leaf run (kernel semantics kept)', () => {
  for (const mode of ['kernel', 'strict'] as Mode[]) {
    it(`${mode}: a run meeting a leaf part-way is EEXIST and leaves every slot before it empty`, () => {
      const pt = createPageTable('ARM_64_LPAE_S1', S1, { mode });
      expect(pt.mapPages(0x1_0000_0000 + 37 * 0x1000, 0x5000_0000, 0x1000, 1, RW)).toEqual({ mapped: 0x1000 });
      const before = pt.tables();
      const r = pt.mapPages(0x1_0000_0000, 0x6000_0000, 0x1000, 64, RW);
      expect(r).toMatchObject({ mapped: 0, error: 'EEXIST' });
      expect(pt.tables()).toEqual(before);
      for (let i = 0; i < 37; i++) expect(pt.iovaToPhys(0x1_0000_0000 + i * 0x1000)).toBe(0);
    });
  }

  it('kernel: a block run meeting a table part-way frees the table and writes the whole run (arm_lpae_init_pte)', () => {
    const allocator = createSystemAllocator();
    const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator, mode: 'kernel' });
    // A level-3 table under the 5th 2 MiB slot.
    expect(pt.mapPages(0x4000_0000 + 5 * 0x20_0000, 0x7000_0000, 0x1000, 1, RW)).toEqual({ mapped: 0x1000 });
    const tablesBefore = pt.stats().liveTables;
    expect(pt.mapPages(0x4000_0000, 0x8000_0000, 0x20_0000, 8, RW)).toEqual({ mapped: 8 * 0x20_0000 });
    expect(pt.stats().liveTables).toBe(tablesBefore - 1);
    for (let i = 0; i < 8; i++) expect(pt.iovaToPhys(0x4000_0000 + i * 0x20_0000 + 0x10)).toBe(0x8000_0000 + i * 0x20_0000 + 0x10);
  });

  it('leaf runs carrying into every bit of the output address are written with integer steps, exactly', () => {
    const pt = createPageTable('ARM_64_LPAE_S1', S1, { mode: 'kernel' });
    // 2 MiB blocks whose output address crosses 4 GiB and 2^40 inside one run.
    expect(pt.mapPages(0x40_0000_0000, 0xff_ffc0_0000, 0x20_0000, 4, RW)).toEqual({ mapped: 4 * 0x20_0000 });
    const expected = [0xff_ffc0_0000n, 0xff_ffe0_0000n, 0x100_0000_0000n, 0x100_0020_0000n];
    const leaves = [...[...pt.tables().values()].at(-1)!.values()].map((d) => d & 0xffff_ffff_f000n);
    expect(leaves).toEqual(expected);
    // 1 GiB blocks stepping the high half only.
    expect(pt.mapPages(0x80_0000_0000, 0xfff_c000_0000, 0x4000_0000, 2, RW)).toEqual({ mapped: 2 * 0x4000_0000 });
    expect(pt.iovaToPhys(0x80_4000_0000 + 5)).toBe(0x1000_0000_0000 + 5);
  });
});

describe('reads of a table the host may not read', () => {
  /** Refuse CPU reads of one page (as secure-share's access control does for a donated table). */
  function denyReadsOf(page: number): AccessGuard {
    return {
      check(kind, paddr, size, who) {
        if (kind === 'read' && who !== 'device' && paddr < page + 0x1000 && paddr + size > page) throw new Error(`read of ${paddr.toString(16)} denied`);
      },
    };
  }
  it('fault in iovaToPhys, lookup, pgtableWalk, tables() and unmap, and change nothing (hw.deviceTables still reads: the device may)', () => {
    const pt = createPageTable('ARM_64_LPAE_S1', S1);
    expect(pt.mapPages(0x1000, 0x9000_0000, 0x1000, 1, RW)).toEqual({ mapped: 0x1000 });
    const leafTable = [...pt.tables().keys()].at(-1)!;
    const snapshot = pt.tables();
    const remove = pt.memory.addGuard(denyReadsOf(leafTable));
    expect(() => pt.iovaToPhys(0x1000)).toThrow('denied');
    expect(() => pt.lookup(0x1000)).toThrow('denied');
    expect(() => pt.pgtableWalk(0x1000)).toThrow('denied');
    expect(() => pt.tables()).toThrow('denied');
    expect(hw.deviceTables(pt)).toEqual(snapshot);
    expect(() => pt.unmapPages(0x2000, 0x1000, 1)).toThrow('denied');
    // Paths that never read the denied page still work.
    expect(pt.iovaToPhys(0x40_0000_0000)).toBe(0);
    remove();
    expect(pt.tables()).toEqual(snapshot);
    expect(pt.iovaToPhys(0x1234)).toBe(0x9000_0234);
  });
});

describe('the page table keeps its engine private', () => {
  it('no property, key or spread reaches the engine or its word arrays', () => {
    const pt = createPageTable('ARM_64_LPAE_S1', S1);
    const any = pt as unknown as Record<string, unknown>;
    expect(any['engine']).toBeUndefined();
    expect(Object.getOwnPropertyNames(pt).some((k) => /engine|mem|store/i.test(k))).toBe(false);
    expect(Object.values({ ...pt }).some((v) => v instanceof Uint32Array)).toBe(false);
  });
});

describe('results', () => {
  it('are frozen, and the same object comes back for the same successful size', () => {
    const pt = createPageTable('ARM_64_LPAE_S1', S1);
    const a = pt.mapPages(0x1000, 0x1000, 0x1000, 1, RW);
    const b = pt.mapPages(0x2000, 0x2000, 0x1000, 1, RW);
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
    const c = pt.mapPages(0x4000, 0x4000, 0x1000, 2, RW);
    expect(c).toEqual({ mapped: 0x2000 });
    expect(c).not.toBe(a);
    const e = pt.mapPages(0x1000, 0x1000, 0x1000, 1, RW);
    expect(e).toMatchObject({ mapped: 0, error: 'EEXIST' });
    expect(Object.isFrozen(e)).toBe(true);
    const u = pt.unmapPages(0x1000, 0x1000, 1);
    expect(u).toBe(pt.unmapPages(0x2000, 0x1000, 1));
    expect(Object.isFrozen(u)).toBe(true);
  });
});
