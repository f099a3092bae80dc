import type { TableAllocator } from '@io-pgtable/allocator-api';
import { describe, expect, it } from 'vitest';
import { FORMATS, LPAE_FORMATS, PhysMemory, Prot, createPageTable, createSystemAllocator, formatOps, type Mode } from '../src/index.js';

const RW = Prot.READ | Prot.WRITE;
const S1 = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
const SZ_4K = 0x1000;

describe('one record per format', () => {
  it('covers every modelled format, and only own names', () => {
    expect(Object.keys(LPAE_FORMATS).sort()).toEqual([...FORMATS].sort());
    for (const f of FORMATS) expect(formatOps(f)?.name).toBe(f);
    for (const bad of ['toString', '__proto__', 'constructor', 'ARM_V7S']) expect(formatOps(bad)).toBeUndefined();
  });
  it('holds what differs: Mali pages are type 1 on a forced level 0; dirty tracking is 64-bit S1 only', () => {
    expect(LPAE_FORMATS.ARM_MALI_LPAE).toMatchObject({ pageType: 1, forceLevel0: true, accessFlag: false, quirks: 0, maxIas: 48, maxOas: 40 });
    expect(FORMATS.filter((f) => LPAE_FORMATS[f].dirtyTracking)).toEqual(['ARM_64_LPAE_S1']);
    expect(FORMATS.filter((f) => LPAE_FORMATS[f].concatenates)).toEqual(['ARM_32_LPAE_S2', 'ARM_64_LPAE_S2']);
  });
});

describe('leaf writes', () => {
  for (const mode of ['kernel'] as const) {
    it(`${mode}: output-address bits below 4 KiB never reach a descriptor (paddr_to_iopte masks them)`, () => {
      const pt = createPageTable('ARM_64_LPAE_S1', S1, { mode });
      expect(pt.mapPages(0x1000, 0x1_2345_6010, SZ_4K, 3, RW)).toEqual({ mapped: 3 * SZ_4K });
      const l3 = [...pt.tables().values()].at(-1)!;
      expect([...l3.values()].map((d) => d & 0xffff_ffff_f000n)).toEqual([0x1_2345_6000n, 0x1_2345_7000n, 0x1_2345_8000n]);
      expect([...l3.values()].every((d) => (d & 0x10n) === 0n)).toBe(true);
    });
  }
  it('runs that carry into bit 32 of the output address are encoded exactly', () => {
    const pt = createPageTable('ARM_64_LPAE_S1', S1);
    expect(pt.mapPages(0, 0xffff_e000, SZ_4K, 4, RW)).toEqual({ mapped: 4 * SZ_4K });
    for (let i = 0; i < 4; i++) expect(pt.iovaToPhys(i * SZ_4K + 0x42)).toBe(0xffff_e000 + i * SZ_4K + 0x42);
  });
});

describe('allocation checks stay strong on the fast paths', () => {
  /** A pool that recycles freed tables without zeroing them: a broken allocator. */
  function dirtyRecycler(): TableAllocator {
    const sys = createSystemAllocator();
    const idle: Array<[number, number]> = [];
    return {
      ...sys,
      caps: { ...sys.caps, name: 'dirty-recycler' },
      alloc(size, ctx) {
        const i = idle.findIndex(([, s]) => s === size);
        if (i >= 0) return idle.splice(i, 1)[0]![0];
        return sys.alloc(size, ctx);
      },
      free(p, size) {
        idle.push([p, Math.max(size, 4096)]);
      },
    };
  }
  it('strict: a table written by one page table and handed out again unzeroed is caught (zeroed)', () => {
    const allocator = dirtyRecycler();
    const a = createPageTable('ARM_64_LPAE_S1', S1, { allocator });
    a.mapPages(0x1000, 0x8000_0000, SZ_4K, 8, RW);
    a.free(); // its tables still hold entries
    expect(() => {
      const b = createPageTable('ARM_64_LPAE_S1', S1, { allocator });
      b.mapPages(0x1000, 0x8000_0000, SZ_4K, 1, RW);
    }).toThrow(expect.objectContaining({ name: 'AllocatorFaultError', rule: 'zeroed', allocator: 'dirty-recycler' }));
  });
  it('strict: memory zeroed by PhysMemory and then dirtied by anyone is caught', () => {
    const memory = new PhysMemory();
    const sys = createSystemAllocator({ memory });
    let n = 0;
    const allocator: TableAllocator = {
      ...sys,
      alloc(size, ctx) {
        const p = sys.alloc(size, ctx)!;
        if (n++ === 1) {
          memory.zero(p, size);
          memory.write64(p + 0xff8, 0x1234n);
        }
        return p;
      },
    };
    const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator, memory });
    expect(() => pt.mapPages(0x1000, 0x8000_0000, SZ_4K, 1, RW)).toThrow(expect.objectContaining({ rule: 'zeroed' }));
  });
  it('PhysMemory: zeroed frames read as zero, and any later write shows', () => {
    const m = new PhysMemory();
    m.fill(0x10_0000, 0x3000, 0xab);
    m.zero(0x10_0800, 0x2000); // covers one whole frame and two halves
    expect(m.isZero(0x10_1000, 0x1000)).toBe(true);
    expect(m.isZero(0x10_0800, 0x2000)).toBe(true);
    expect(m.isZero(0x10_0000, 0x1000)).toBe(false);
    m.write64(0x10_1ff8, 1n);
    expect(m.isZero(0x10_1000, 0x1000)).toBe(false);
    m.zero(0x10_1000, 0x1000);
    expect(m.isZero(0x10_1000, 0x1000)).toBe(true);
  });
});

describe('walks across many storage chunks', () => {
  for (const mode of ['kernel', 'strict'] as const satisfies readonly Mode[]) {
    it(`${mode}: tables in 200 different 1 MiB chunks translate correctly (the chunk cache evicts)`, () => {
      const memory = new PhysMemory();
      const sys = createSystemAllocator({ memory });
      let next = 0x1_0000_0000;
      const allocator: TableAllocator = {
        ...sys,
        alloc(size) {
          const p = next;
          next += 0x10_0000 + 0x1000; // a new chunk every time
          return p;
        },
        free() {},
      };
      const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator, memory, mode });
      const N = 200;
      for (let i = 0; i < N; i++) expect(pt.mapPages(i * 0x4000_0000, 0x8000_0000 + i * SZ_4K, SZ_4K, 1, RW)).toEqual({ mapped: SZ_4K });
      for (let round = 0; round < 2; round++) {
        for (let i = N - 1; i >= 0; i--) expect(pt.iovaToPhys(i * 0x4000_0000 + 0x123)).toBe(0x8000_0000 + i * SZ_4K + 0x123);
      }
      for (let i = 0; i < N; i += 3) expect(pt.unmapPages(i * 0x4000_0000, SZ_4K, 1)).toEqual({ unmapped: SZ_4K });
      for (let i = 0; i < N; i++) expect(pt.iovaToPhys(i * 0x4000_0000)).toBe(i % 3 === 0 ? 0 : 0x8000_0000 + i * SZ_4K);
    });
  }
});
