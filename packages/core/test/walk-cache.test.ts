import { describe, expect, it } from 'vitest';
import { IotlbGather, PhysMemory, Prot, createPageTable, createSystemAllocator, xorshift32, type Mode, type PageTable } from '../src/index.js';

const RW = Prot.READ | Prot.WRITE;
const S1 = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
const SZ_4K = 0x1000;
const SZ_2M = 0x20_0000;

/** A page table alone on its memory (walk cache on), or sharing it with another (walk cache off). */
function table(mode: Mode, alone: boolean): PageTable {
  const memory = new PhysMemory();
  const allocator = createSystemAllocator({ memory });
  const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator, mode });
  // The second page table takes its PGD from another region of the same memory, so both
  // tables' own allocations stay at the same addresses.
  if (!alone) createPageTable('ARM_64_LPAE_S1', S1, { allocator: createSystemAllocator({ memory, base: 0x1_0000_0000 }), mode });
  return pt;
}

const show = (pt: PageTable) => JSON.stringify([...pt.tables()].map(([a, e]) => [a, [...e].map(([i, v]) => [i, v.toString(16)])]));

describe('the walk cache (a lone page table) changes no result', () => {
  for (const mode of ['kernel', 'strict'] as Mode[]) {
    it(`${mode}: 3,000 random maps, unmaps, block maps over tables, lookups and descriptor rewrites agree op by op with an uncached table`, () => {
      const cached = table(mode, true);
      const plain = table(mode, false);
      const rnd = xorshift32(1234);
      const gather = new IotlbGather();
      // Four 2 MiB windows, so that ops keep meeting the same few last-level tables.
      const iovaOf = () => 0x40_0000_0000 + (rnd() % 4) * SZ_2M + (rnd() % 512) * SZ_4K;
      for (let step = 0; step < 3000; step++) {
        const k = rnd() % 10;
        const at = `step ${step} op ${k}`;
        if (k < 3) {
          const iova = iovaOf();
          const n = 1 + (rnd() % 24);
          const pa = 0x1_0000_0000 + (rnd() % 4096) * SZ_4K;
          expect(cached.mapPages(iova, pa, SZ_4K, n, RW), at).toEqual(plain.mapPages(iova, pa, SZ_4K, n, RW));
        } else if (k < 5) {
          const iova = iovaOf();
          const n = 1 + (rnd() % 24);
          expect(cached.unmapPages(iova, SZ_4K, n, gather), at).toEqual(plain.unmapPages(iova, SZ_4K, n, gather));
        } else if (k === 5) {
          // A block over a window: kernel mode frees the table below it, strict refuses.
          const iova = 0x40_0000_0000 + (rnd() % 4) * SZ_2M;
          expect(cached.mapPages(iova, 0x2_0000_0000, SZ_2M, 1, RW), at).toEqual(plain.mapPages(iova, 0x2_0000_0000, SZ_2M, 1, RW));
        } else if (k === 6) {
          // Unmapping a whole window frees its last-level table.
          const iova = 0x40_0000_0000 + (rnd() % 4) * SZ_2M;
          expect(cached.unmapPages(iova, SZ_2M, 1, gather), at).toEqual(plain.unmapPages(iova, SZ_2M, 1, gather));
        } else if (k === 7) {
          // A public write into the level-2 table: clear one window's descriptor (as a test or a
          // hostile caller may); both page tables must walk what memory now holds.
          const slot = rnd() % 4;
          for (const pt of [cached, plain]) {
            const l2 = [...pt.tables().keys()][2];
            if (l2 !== undefined) pt.memory.write64(l2 + slot * 8, 0n);
          }
        } else {
          for (let j = 0; j < 8; j++) {
            const iova = iovaOf() + (rnd() % SZ_4K);
            expect(cached.iovaToPhys(iova), `${at} lookup`).toBe(plain.iovaToPhys(iova));
          }
        }
        if (step % 50 === 0) expect(show(cached), at).toBe(show(plain));
      }
      expect(show(cached)).toBe(show(plain));
    });
  }

  it('a descriptor rewritten through memory is followed at once: the next walk reads what memory holds', () => {
    const pt = table('kernel', true);
    expect(pt.mapPages(0x1000, 0x9000_0000, SZ_4K, 1, RW)).toEqual({ mapped: SZ_4K });
    expect(pt.iovaToPhys(0x1008)).toBe(0x9000_0008);
    const [, , l2, l3] = [...pt.tables().keys()];
    // Point the level-2 slot at a copy of the last-level table that maps 0x1000 elsewhere.
    const copy = 0x7000_0000;
    pt.memory.write64(copy + 8, pt.memory.read64(l3! + 8) + 0x10_0000n);
    const d = pt.memory.read64(l2!);
    pt.memory.write64(l2!, (d & ~0xffff_ffff_f000n) | BigInt(copy));
    expect(pt.iovaToPhys(0x1008)).toBe(0x9010_0008);
    expect(pt.lookup(0x1000)).toMatchObject({ kind: 'mapped', paddr: 0x9010_0000 });
    pt.memory.write64(l2!, d);
    expect(pt.iovaToPhys(0x1008)).toBe(0x9000_0008);
  });

  it('a table freed by an unmap is never reached again through the cache', () => {
    const allocator = createSystemAllocator();
    const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator, mode: 'kernel' });
    expect(pt.mapPages(0x20_0000, 0x9000_0000, SZ_4K, 4, RW)).toEqual({ mapped: 4 * SZ_4K });
    expect(pt.iovaToPhys(0x20_1000)).toBe(0x9000_1000);
    expect(pt.unmapPages(0x20_0000, SZ_2M, 1)).toEqual({ unmapped: SZ_2M });
    // The freed table is recycled (re-zeroed) as the next table: a stale cache would still see
    // it under 0x20_0000; the kernel sees an empty level-2 slot.
    expect(pt.mapPages(0x4000_0000, 0xa000_0000, SZ_4K, 1, RW)).toEqual({ mapped: SZ_4K });
    expect(pt.iovaToPhys(0x20_1000)).toBe(0);
    expect(pt.unmapPages(0x20_1000, SZ_4K, 1)).toMatchObject({ unmapped: 0, error: 'ENOENT' });
    expect(pt.iovaToPhys(0x4000_0000)).toBe(0xa000_0000);
  });
});

describe('the walk cache hears of every write above the last level', () => {
  /** A kernel-mode table alone on its memory with 0x1000 mapped and looked up (the cache holds its last-level table). */
  function cachedTable() {
    const pt = table('kernel', true);
    expect(pt.mapPages(0x1000, 0x9000_0000, SZ_4K, 1, RW)).toEqual({ mapped: SZ_4K });
    expect(pt.iovaToPhys(0x1008)).toBe(0x9000_0008);
    const [pgd, l1, l2, l3] = [...pt.tables().keys()] as number[];
    return { pt, pgd: pgd!, l1: l1!, l2: l2!, l3: l3! };
  }
  const elsewhere = 0x7000_0000; // memory no table uses

  for (const level of ['pgd', 'l1', 'l2'] as const) {
    it(`a ${level} descriptor cleared through memory, before or after unrelated writes the log cannot all hold, unmaps at once`, () => {
      for (const before of [0, 2, 3, 7]) {
        for (const after of [0, 3, 6]) {
          const t = cachedTable();
          for (let i = 0; i < before; i++) t.pt.memory.write64(elsewhere + 8 * i, 1n);
          t.pt.memory.write64(t[level], 0n);
          for (let i = 0; i < after; i++) t.pt.memory.write64(elsewhere + 0x1000 * (i + 1), 1n);
          expect(t.pt.iovaToPhys(0x1008), `${before} before, ${after} after`).toBe(0);
          expect(t.pt.unmapPages(0x1000, SZ_4K, 1), `${before} before, ${after} after`).toMatchObject({ unmapped: 0, error: 'ENOENT' });
        }
      }
    });
  }

  it('zeroing a range that covers a table above the last level unmaps at once; zeroing elsewhere changes nothing', () => {
    const t = cachedTable();
    t.pt.memory.zero(elsewhere, 0x4000);
    expect(t.pt.iovaToPhys(0x1008)).toBe(0x9000_0008);
    t.pt.memory.zero(t.l2, 0x1000);
    expect(t.pt.iovaToPhys(0x1008)).toBe(0);
    expect(t.pt.mapPages(0x1000, 0x9100_0000, SZ_4K, 1, RW)).toEqual({ mapped: SZ_4K });
    expect(t.pt.iovaToPhys(0x1008)).toBe(0x9100_0008);
  });

  it('a last-level descriptor rewritten through memory is read as written, the cache kept or not', () => {
    const t = cachedTable();
    t.pt.memory.write64(t.l3 + 8, t.pt.memory.read64(t.l3 + 8) + 0x20_0000n);
    expect(t.pt.iovaToPhys(0x1008)).toBe(0x9020_0008);
    expect(t.pt.unmapPages(0x1000, SZ_4K, 1)).toEqual({ unmapped: SZ_4K });
    expect(t.pt.iovaToPhys(0x1008)).toBe(0);
  });
});

describe('the walk cache and tables it did not install', () => {
  it('a level-1 descriptor pointed through memory at a copy of the level-2 table: later writes to the copy are followed', () => {
    const pt = table('kernel', true);
    expect(pt.mapPages(0x1000, 0x9000_0000, SZ_4K, 1, RW)).toEqual({ mapped: SZ_4K });
    const [, l1, l2] = [...pt.tables().keys()] as number[];
    const copy = 0x7000_0000;
    pt.memory.write64(copy, pt.memory.read64(l2!));
    const d = pt.memory.read64(l1!);
    pt.memory.write64(l1!, (d & ~0xffff_ffff_f000n) | BigInt(copy));
    // Walks through the copy (which the page table never installed), then the copy changes.
    expect(pt.iovaToPhys(0x1008)).toBe(0x9000_0008);
    expect(pt.iovaToPhys(0x1010)).toBe(0x9000_0010);
    pt.memory.write64(copy, 0n);
    expect(pt.iovaToPhys(0x1008)).toBe(0);
    expect(pt.unmapPages(0x1000, SZ_4K, 1)).toMatchObject({ unmapped: 0, error: 'ENOENT' });
  });
});
