import { AllocatorFaultError, type TableAllocator } from '@io-pgtable/allocator-api';
import { describe, expect, it } from 'vitest';
import { CHUNK_BYTES, IoPgtableError, PhysMemory, Prot, createBumpAllocator, createPageTable, createSystemAllocator, type Mode } from '../src/index.js';

const RW = Prot.READ | Prot.WRITE;
const SZ_4K = 0x1000;

/** The kernel's paddr_to_iopte, written independently with BigInt: (pa | pa >> 36) & GENMASK(47, 12). */
function kernelTableDesc(pa: bigint, nsTable = false): bigint {
  const mask = ((1n << 48n) - 1n) & ~0xfffn;
  return ((pa | (pa >> 36n)) & mask) | 3n | (nsTable ? 1n << 63n : 0n);
}

/** An allocator that hands out whatever `next` returns, over a system allocator's memory. */
function scripted(next: (size: number) => number, memory = new PhysMemory()): TableAllocator {
  const sys = createSystemAllocator({ memory });
  return { ...sys, caps: { ...sys.caps, name: 'scripted' }, alloc: (size) => next(size), free() {} };
}

describe('kernel mode accepts table pages above the output address space (issue 13)', () => {
  it('4K granule, oas 32, tables at 64 GiB: mapped, encoded as paddr_to_iopte, walked', () => {
    const base = 0x10_0000_0000;
    const bump = createBumpAllocator({ base, limit: 0x100_0000 });
    const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 32, oas: 32 }, { allocator: bump, mode: 'kernel' });
    expect(pt.pgd).toBe(base);
    expect(pt.mapPages(0x1000, 0x8000_0000, SZ_4K, 1, RW)).toEqual({ mapped: SZ_4K });
    const [[pgd], [l2], [l3]] = bump.liveAllocations().map((a) => [a[0]]);
    expect(pt.memory.read64(pgd!)).toBe(kernelTableDesc(BigInt(l2!)));
    expect(pt.memory.read64(l2!)).toBe(kernelTableDesc(BigInt(l3!)));
    expect(pt.iovaToPhys(0x1234)).toBe(0x8000_0234);
    pt.free();
    expect(bump.liveAllocations()).toEqual([]);
  });
  it('64K granule, oas 40, tables above 2^48: PA[51:48] folded into bits 15:12 and unfolded by the walk', () => {
    const base = 2 ** 50 + 0x30000;
    const bump = createBumpAllocator({ base, limit: 0x100_0000 });
    const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x20010000, ias: 48, oas: 40 }, { allocator: bump, mode: 'kernel' });
    expect(pt.mapPages(0x10000, 0x80_0000_0000 - 0x10000, 0x10000, 1, RW)).toEqual({ mapped: 0x10000 });
    const tables = bump.liveAllocations().map((a) => a[0]);
    expect(tables).toHaveLength(3);
    expect(pt.memory.read64(tables[0]!)).toBe(kernelTableDesc(BigInt(tables[1]!)));
    expect(pt.iovaToPhys(0x10042)).toBe(0x80_0000_0000 - 0x10000 + 0x42);
    expect(pt.pgtableWalk(0x10000).ret).toBe(0);
  });
  it('ARM_NS: the table descriptor of a table above oas carries NSTable', () => {
    const bump = createBumpAllocator({ base: 0x100_0000_0000, limit: 0x100_0000 });
    const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 32, oas: 32, quirks: ['ARM_NS'] }, { allocator: bump, mode: 'kernel' });
    pt.mapPages(0, 0x1000, SZ_4K, 1, RW);
    const [pgd, l2] = bump.liveAllocations().map((a) => a[0]);
    expect(pt.memory.read64(pgd!)).toBe(kernelTableDesc(BigInt(l2!), true));
  });
  it('strict mode rejects the same allocator (in-range), naming it', () => {
    const bump = createBumpAllocator({ base: 0x10_0000_0000 });
    expect(() => createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 32, oas: 32 }, { allocator: bump })).toThrow(
      expect.objectContaining({ name: 'AllocatorFaultError', rule: 'in-range', allocator: 'bump' }),
    );
  });
});

describe('every allocation check is strict-only, except what the model cannot represent', () => {
  const cfg = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
  const cases: Array<{ rule: string; setup: (memory: PhysMemory) => (size: number) => number }> = [
    {
      rule: 'zeroed',
      setup: (memory) => {
        let n = 0;
        return (size) => {
          const p = 0x4000_0000 + n++ * 0x10_0000;
          if (n === 2) memory.fill(p + 0x800, 8, 0x11); // the first lower table is dirty
          return size > 0 ? p : p;
        };
      },
    },
    {
      rule: 'aligned',
      setup: () => {
        let n = 0;
        // The first lower table is 2 KiB off its granule.
        return () => 0x4000_0000 + n++ * 0x10_0000 + (n === 2 ? 0x800 : 0);
      },
    },
    {
      rule: 'no-overlap',
      setup: () => {
        let n = 0;
        // The second lower table is handed out on top of the first.
        return () => 0x4000_0000 + Math.min(n++, 1) * 0x10_0000;
      },
    },
  ];
  for (const c of cases) {
    it(`${c.rule}: strict throws AllocatorFaultError, kernel mode proceeds as the kernel would`, () => {
      const run = (mode: Mode) => {
        const memory = new PhysMemory();
        const pt = createPageTable('ARM_64_LPAE_S1', cfg, { allocator: scripted(c.setup(memory), memory), memory, mode });
        return pt.mapPages(0x1000, 0x8000_0000, SZ_4K, 1, RW);
      };
      expect(() => run('strict')).toThrow(expect.objectContaining({ name: 'AllocatorFaultError', rule: c.rule }));
      expect(() => run('kernel')).not.toThrow();
    });
  }
  it('kernel mode: a table off its granule is used at the address its descriptor encodes (aligned down)', () => {
    const memory = new PhysMemory();
    let n = 0;
    const pt = createPageTable('ARM_64_LPAE_S1', cfg, {
      allocator: scripted(() => 0x4000_0000 + n++ * 0x10_0000 + (n === 4 ? 0x800 : 0), memory),
      memory,
      mode: 'kernel',
    });
    expect(pt.mapPages(0x1000, 0x8000_0000, SZ_4K, 1, RW)).toEqual({ mapped: SZ_4K });
    // The L3 table was handed out at 0x40300800; its descriptor says 0x40300000, and the leaf lives there.
    expect(memory.read64(0x4020_0000)).toBe(0x4030_0003n);
    expect(memory.read64(0x4030_0000 + 8) & 0xffff_ffff_f000n).toBe(0x8000_0000n);
    expect(pt.iovaToPhys(0x1000)).toBe(0x8000_0000);
  });
  it('kernel mode can be opted into the checks (checkAllocations: true)', () => {
    const bump = createBumpAllocator({ base: 0x10_0000_0000 });
    expect(() =>
      createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 32, oas: 32 }, { allocator: bump, mode: 'kernel', checkAllocations: true }),
    ).toThrow(AllocatorFaultError);
  });
  for (const mode of ['kernel', 'strict'] as const) {
    it(`${mode}: a value that is not a physical address is a fault (the model cannot hold it)`, () => {
      for (const bad of [-4096, 2 ** 53, 0.5, '0x1000', NaN]) {
        const allocator = scripted(() => bad as number);
        expect(() => createPageTable('ARM_64_LPAE_S1', cfg, { allocator, mode })).toThrow(expect.objectContaining({ name: 'AllocatorFaultError', rule: 'in-range' }));
      }
    });
    it(`${mode}: a PGD not 8-byte aligned, or across a storage-chunk boundary, cannot be modelled`, () => {
      for (const bad of [0x4000_0004, 0x400f_ffc0 + 0x20, 0x4000_0000 + CHUNK_BYTES - 0x800]) {
        const allocator = scripted(() => bad);
        expect(() => createPageTable('ARM_64_LPAE_S1', { ...cfg, ias: 39 }, { allocator, mode })).toThrow(expect.objectContaining({ name: 'AllocatorFaultError', rule: 'aligned' }));
      }
    });
  }
  it('the fault message of a huge bad value is capped', () => {
    const allocator = scripted(() => 'x'.repeat(1_000_000) as unknown as number);
    try {
      createPageTable('ARM_64_LPAE_S1', cfg, { allocator });
      expect.unreachable();
    } catch (e) {
      expect((e as Error).message.length).toBeLessThan(300);
      expect((e as Error).message).toContain('1000000 chars');
    }
  });
});

describe('bump allocator: addresses the number-based Paddr cannot hold (issue 14)', () => {
  it.each([
    ['allocBase 2^53 as a bigint', { base: 2n ** 53n + 4096n }],
    ['allocBase 2^60', { base: 2n ** 60n }],
    ['allocBase just past 2^53 as an inexact number', { base: 2 ** 53 + 2 }],
    ['allocBase + allocLimit past 2^53', { base: 2 ** 53 - 4096, limit: 0x4000_0000 }],
    ['a negative allocBase', { base: -1 }],
    ['a u64 allocLimit', { limit: 2n ** 64n - 1n }],
  ])('%s: IoPgtableError EINVAL', (_what, opts) => {
    expect(() => createBumpAllocator(opts)).toThrow(IoPgtableError);
    expect(() => createBumpAllocator(opts)).toThrow(/EINVAL: bump allocator: alloc(Base|Limit)/);
  });
  it('bigint inputs that fit are accepted, and allocate exactly', () => {
    const bump = createBumpAllocator({ base: 2n ** 52n, limit: 0x10000n });
    expect(bump.alloc(4096, { mayBlock: true })).toBe(2 ** 52);
    expect(bump.alloc(4096, { mayBlock: true })).toBe(2 ** 52 + 4096);
  });
});
