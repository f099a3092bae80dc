import { AllocatorFaultError, type AllocCtx } from '@io-pgtable/allocator-api';
import { describe, expect, it } from 'vitest';
import {
  IOMMU_DIRTY_NO_CLEAR,
  IotlbGather,
  IoPgtableError,
  PhysMemory,
  Prot,
  allocIoPgtableOps,
  createPageTable,
  createSystemAllocator,
  iovaToU64,
  type Mode,
  type PageTable,
} from '../src/index.js';

const B4K = 0x40201000;
const RW = Prot.READ | Prot.WRITE;
const S1 = { pgsizeBitmap: B4K, ias: 48, oas: 48 };

function table(mode: Mode, cfg: Parameters<typeof createPageTable>[1] = S1) {
  const allocator = createSystemAllocator();
  const events: string[] = [];
  const pt = createPageTable('ARM_64_LPAE_S1', cfg, {
    allocator,
    mode,
    tlb: {
      tlbFlushAll: () => events.push('flush_all'),
      tlbFlushWalk: (iova, size) => events.push(`flush_walk ${iova.toString(16)} ${size.toString(16)}`),
      tlbAddPage: (_g, iova, size) => events.push(`add_page ${iova.toString(16)} ${size.toString(16)}`),
    },
  });
  return { pt, allocator, events };
}

/** Everything observable about a table: entries, allocator accounting. */
function snapshot(pt: PageTable, allocator: ReturnType<typeof createSystemAllocator>) {
  return { tables: pt.tables(), stats: allocator.stats(), pt: pt.stats() };
}

describe('map errors (spec §2.3), kernel mode', () => {
  it('pgsize 0 or outside the bitmap: EINVAL', () => {
    const { pt } = table('kernel');
    expect(pt.mapPages(0, 0, 0, 1, RW).error).toBe('EINVAL');
    expect(pt.mapPages(0, 0, 0x2000, 1, RW).error).toBe('EINVAL');
  });
  it('a multi-bit pgsize made of supported sizes passes the bitmap check, then fails EINVAL after allocating tables', () => {
    const { pt, allocator } = table('kernel');
    const r = pt.mapPages(0, 0, 0x201000, 1, RW);
    expect(r).toMatchObject({ mapped: 0, error: 'EINVAL' });
    expect(allocator.stats().liveTables).toBe(4); // PGD + L1 + L2 + L3, all left in place
  });
  it('iova or paddr beyond ias/oas: ERANGE (start address only)', () => {
    const { pt } = table('kernel');
    expect(pt.mapPages(2 ** 48, 0, 0x1000, 1, RW).error).toBe('ERANGE');
    expect(pt.mapPages(0, 2 ** 48, 0x1000, 1, RW).error).toBe('ERANGE');
    expect(pt.mapPages(0xffff_ffff_ffff_f000n, 0, 0x1000, 1, RW).error).toBe('ERANGE');
    // The end is not checked: the last page of the space, many pages long, is accepted.
    expect(pt.mapPages(2 ** 48 - 0x1000, 0, 0x1000, 4, RW)).toEqual({ mapped: 0x1000 });
  });
  it('no read and no write: EINVAL', () => {
    const { pt } = table('kernel');
    expect(pt.mapPages(0, 0, 0x1000, 1, Prot.CACHE | Prot.NOEXEC).error).toBe('EINVAL');
  });
  it('an existing leaf: EEXIST, nothing written', () => {
    const { pt } = table('kernel');
    pt.mapPages(0x1000, 0x5000, 0x1000, 1, RW);
    const before = pt.tables();
    expect(pt.mapPages(0x1000, 0x9000, 0x1000, 1, RW)).toMatchObject({ mapped: 0, error: 'EEXIST' });
    expect(pt.tables()).toEqual(before);
  });
  it('a page inside an existing block: EEXIST', () => {
    const { pt } = table('kernel');
    pt.mapPages(0x20_0000, 0x20_0000, 0x20_0000, 1, RW);
    expect(pt.mapPages(0x20_1000, 0, 0x1000, 1, RW).error).toBe('EEXIST');
  });
  it('table allocation failure: ENOMEM', () => {
    const allocator = createSystemAllocator({ failWhen: (n) => n === 2 });
    const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator, mode: 'kernel' });
    expect(pt.mapPages(0x1000, 0, 0x1000, 1, RW)).toMatchObject({ mapped: 0, error: 'ENOMEM' });
  });
  it('a block larger than the start level can hold: EINVAL', () => {
    const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 30, oas: 48 }, { mode: 'kernel' });
    expect(pt.mapPages(0, 0, 0x4000_0000, 1, RW).error).toBe('EINVAL');
  });
  it('one call never crosses a leaf table: a 2-page map at the last slot maps one page', () => {
    const { pt } = table('kernel');
    expect(pt.mapPages(0x1ff000, 0, 0x1000, 2, RW)).toEqual({ mapped: 0x1000 });
  });
  it('pgcount 0 maps nothing but still allocates the path', () => {
    const { pt, allocator } = table('kernel');
    expect(pt.mapPages(0x1000, 0, 0x1000, 0, RW)).toEqual({ mapped: 0 });
    expect(allocator.stats().liveTables).toBe(4);
  });
  it('mapping a block over a table drops the table: flush_walk, then the sub-tree is freed', () => {
    const { pt, allocator, events } = table('kernel');
    pt.mapPages(0x1000, 0x1000, 0x1000, 1, RW);
    expect(allocator.stats().liveTables).toBe(4);
    expect(pt.mapPages(0, 0x4000_0000, 0x20_0000, 1, RW)).toEqual({ mapped: 0x20_0000 });
    expect(events).toEqual(['flush_walk 0 200000']);
    expect(allocator.stats().liveTables).toBe(3);
    expect(pt.iovaToPhys(0x1000)).toBe(0x4000_1000);
  });
});

describe('runs past a small PGD (spec §3.3 caveat, FORMAT.md note 10)', () => {
  // 4K, ias 32: a 4-entry (32-byte) level-1 PGD, allocated as 64 bytes (8 slots); 1 GiB blocks live there.
  const small = { pgsizeBitmap: B4K, ias: 32, oas: 44 };
  it('kernel mode writes past the PGD but inside its 64-byte allocation, as the kernel does', () => {
    const pt = createPageTable('ARM_64_LPAE_S1', small, { mode: 'kernel' });
    expect(pt.geometry.pgdEntries).toBe(4);
    expect(pt.mapPages(3 * 0x4000_0000, 0, 0x4000_0000, 5, RW)).toEqual({ mapped: 5 * 0x4000_0000 });
    expect(pt.memory.read64(pt.pgd + 7 * 8) & 3n).toBe(1n); // slot 7: a block the walker can never reach
  });
  it('kernel mode refuses to write past the allocation with a typed error and changes nothing', () => {
    const pt = createPageTable('ARM_64_LPAE_S1', small, { mode: 'kernel' });
    const before = pt.tables();
    expect(() => pt.mapPages(3 * 0x4000_0000, 0, 0x4000_0000, 6, RW)).toThrow(/out-of-bounds/);
    expect(pt.tables()).toEqual(before);
  });
  it('strict mode rejects the run past ias', () => {
    const pt = createPageTable('ARM_64_LPAE_S1', small);
    expect(pt.mapPages(3 * 0x4000_0000, 0, 0x4000_0000, 2, RW).error).toBe('ERANGE');
  });
});

describe('unmap (spec §2.4, §5), kernel mode', () => {
  it('a hole returns ENOENT (the kernel returns (size_t)-ENOENT)', () => {
    const { pt } = table('kernel');
    expect(pt.unmapPages(0x1000, 0x1000, 1)).toMatchObject({ unmapped: 0, error: 'ENOENT' });
  });
  it('a hole part-way through a batch stops there and returns the bytes so far', () => {
    const { pt } = table('kernel');
    pt.mapPages(0x1000, 0, 0x1000, 2, RW);
    expect(pt.unmapPages(0x1000, 0x1000, 4)).toEqual({ unmapped: 0x2000 });
  });
  it('part of a block returns 0 and leaves the block', () => {
    const { pt } = table('kernel');
    pt.mapPages(0x20_0000, 0x20_0000, 0x20_0000, 1, RW);
    expect(pt.unmapPages(0x20_1000, 0x1000, 1).unmapped).toBe(0);
    expect(pt.iovaToPhys(0x20_1000)).toBe(0x20_1000);
  });
  it('pgcount 0, bad pgsize, iova out of range: 0', () => {
    const { pt } = table('kernel');
    expect(pt.unmapPages(0, 0x1000, 0).unmapped).toBe(0);
    expect(pt.unmapPages(0, 0x3000, 1).unmapped).toBe(0);
    expect(pt.unmapPages(2 ** 48, 0x1000, 1)).toMatchObject({ unmapped: 0, error: 'ERANGE' });
  });
  it('a block-sized unmap over pages tears down the table and adds one page per entry to the gather', () => {
    const { pt, allocator, events } = table('kernel');
    pt.mapPages(0x1000, 0, 0x1000, 3, RW);
    const g = new IotlbGather();
    expect(pt.unmapPages(0, 0x20_0000, 1, g)).toEqual({ unmapped: 0x20_0000 });
    expect(events).toEqual(['flush_walk 0 200000', 'add_page 0 200000']);
    expect(allocator.stats().liveTables).toBe(3);
  });
  it('a queued gather gets no tlb_add_page; a null gather neither', () => {
    const { pt, events } = table('kernel');
    pt.mapPages(0x1000, 0, 0x1000, 2, RW);
    pt.unmapPages(0x1000, 0x1000, 1, new IotlbGather({ queued: true }));
    pt.unmapPages(0x2000, 0x1000, 1, null);
    expect(events).toEqual([]);
  });
  it('tables are not reclaimed when they empty', () => {
    const { pt, allocator } = table('kernel');
    pt.mapPages(0x1000, 0, 0x1000, 1, RW);
    pt.unmapPages(0x1000, 0x1000, 1, new IotlbGather());
    expect(allocator.stats().liveTables).toBe(4);
  });
});

describe('strict mode: the iommu core checks, no state change on rejection', () => {
  const bad: Array<[string, (pt: PageTable) => { error?: string }, string]> = [
    ['unaligned iova', (pt) => pt.mapPages(0x1800, 0x2000, 0x1000, 1, RW), 'EINVAL'],
    ['unaligned paddr', (pt) => pt.mapPages(0x1000, 0x2800, 0x1000, 1, RW), 'EINVAL'],
    ['multi-bit pgsize', (pt) => pt.mapPages(0, 0, 0x201000, 1, RW), 'EINVAL'],
    ['pgcount 0', (pt) => pt.mapPages(0, 0, 0x1000, 0, RW), 'EINVAL'],
    ['negative pgcount', (pt) => pt.mapPages(0, 0, 0x1000, -1, RW), 'EINVAL'],
    ['NaN iova', (pt) => pt.mapPages(NaN, 0, 0x1000, 1, RW), 'EINVAL'],
    ['negative paddr', (pt) => pt.mapPages(0, -4096, 0x1000, 1, RW), 'EINVAL'],
    ['iova above 2^64', (pt) => pt.mapPages(1n << 64n, 0, 0x1000, 1, RW), 'EINVAL'],
    ['run past the end of ias', (pt) => pt.mapPages(2 ** 48 - 0x1000, 0, 0x1000, 2, RW), 'ERANGE'],
    ['paddr run past oas', (pt) => pt.mapPages(0, 2 ** 48 - 0x1000, 0x1000, 2, RW), 'ERANGE'],
    ['unknown prot name', (pt) => pt.mapPages(0, 0, 0x1000, 1, ['read', 'exec' as 'read']), 'EINVAL'],
    ['prot bits out of range', (pt) => pt.mapPages(0, 0, 0x1000, 1, 0x40), 'EINVAL'],
    ['overlapping a page', (pt) => pt.mapPages(0x4000, 0, 0x1000, 1, RW), 'EEXIST'],
    ['a block over mapped pages', (pt) => pt.mapPages(0, 0, 0x20_0000, 1, RW), 'EEXIST'],
    ['a page inside a block', (pt) => pt.mapPages(0x4000_1000, 0, 0x1000, 1, RW), 'EEXIST'],
    ['unmap of a hole', (pt) => pt.unmapPages(0x10_0000, 0x1000, 1), 'ENOENT'],
    ['unmap part of a block', (pt) => pt.unmapPages(0x4000_1000, 0x1000, 1), 'EINVAL'],
    ['unmap unaligned', (pt) => pt.unmapPages(0x4800, 0x1000, 1), 'EINVAL'],
    ['unmap past ias', (pt) => pt.unmapPages(2 ** 48 - 0x1000, 0x1000, 2), 'ERANGE'],
    ['unmap a foreign gather', (pt) => pt.unmapPages(0x4000, 0x1000, 1, {} as IotlbGather), 'EINVAL'],
  ];
  it.each(bad)('%s', (_name, call, code) => {
    const { pt, allocator } = table('strict');
    pt.mapPages(0x4000, 0x8000, 0x1000, 2, RW);
    pt.mapPages(0x4000_0000, 0x4000_0000, 0x20_0000, 1, RW);
    const before = snapshot(pt, allocator);
    const r = call(pt);
    expect(r.error).toBe(code);
    expect(snapshot(pt, allocator)).toEqual(before);
  });
  it('replacing an empty table by a block is allowed (nothing is lost)', () => {
    const { pt } = table('strict');
    pt.mapPages(0x1000, 0, 0x1000, 1, RW);
    pt.unmapPages(0x1000, 0x1000, 1);
    expect(pt.mapPages(0, 0, 0x20_0000, 1, RW)).toEqual({ mapped: 0x20_0000 });
  });
  it('a TTBR1 table maps the top of the 64-bit space and rejects TTBR0 addresses', () => {
    const { pt, events } = table('strict', { ...S1, ias: 39, quirks: ['ARM_TTBR1'] });
    const top = 0xffff_ff80_0000_0000n;
    expect(pt.mapPages(top, 0x1000, 0x1000, 1, RW)).toEqual({ mapped: 0x1000 });
    expect(pt.iovaToPhys(top + 0x10n)).toBe(0x1010);
    expect(pt.mapPages(0x1000, 0x1000, 0x1000, 1, RW).error).toBe('ERANGE');
    pt.unmapPages(top, 0x20_0000, 1, new IotlbGather());
    // Callbacks see the signed-64 form; converted back it is the top-of-space address.
    expect(events).toEqual(['flush_walk -8000000000 200000', 'add_page -8000000000 200000']);
    expect(iovaToU64(-(2 ** 39))).toBe(top);
  });
  it('operations after free() throw IoPgtableError', () => {
    const { pt } = table('strict');
    pt.free();
    expect(() => pt.mapPages(0, 0, 0x1000, 1, RW)).toThrow(IoPgtableError);
    expect(() => pt.iovaToPhys(0)).toThrow(/used after free/);
  });
});

describe('custom allocator hooks (spec §1)', () => {
  const memory = new PhysMemory();
  it('both hooks or neither', () => {
    const r = allocIoPgtableOps('ARM_64_LPAE_S1', { ...S1, alloc: () => null }, { memory });
    expect(r).toMatchObject({ ok: false, code: 'EINVAL' });
  });
  it('alloc is asked for max(size, 64) with the cookie; free gets the real size', () => {
    const sys = createSystemAllocator({ memory });
    const calls: string[] = [];
    const cookie = { vm: 1 };
    const r = allocIoPgtableOps(
      'ARM_64_LPAE_S1',
      {
        pgsizeBitmap: B4K,
        ias: 40,
        oas: 44,
        alloc: (c, size, ctx: AllocCtx) => (calls.push(`alloc ${size} ${c === cookie} ${ctx.mayBlock}`), sys.alloc(size, ctx)),
        free: (c, p, size) => (calls.push(`free ${size} ${c === cookie}`), sys.free(p, size)),
      },
      { memory, cookie },
    );
    if (!r.ok) throw new Error(r.reason);
    r.table.mapPages(0x1000, 0, 0x1000, 1, RW, { mayBlock: false });
    r.table.free();
    expect(calls).toEqual([
      'alloc 64 true true', // 16-byte PGD, asked as 64, GFP_KERNEL
      'alloc 4096 true false', // lower tables use the caller's gfp
      'alloc 4096 true false',
      'alloc 4096 true false',
      'free 4096 true',
      'free 4096 true',
      'free 4096 true',
      'free 16 true', // freed with its real size, last
    ]);
  });
  /** A page table whose PGD is fine and whose later tables come from `bad`. */
  function withBadTables(bad: (mem: PhysMemory, size: number) => number) {
    const mem = new PhysMemory();
    let first = true;
    const r = allocIoPgtableOps(
      'ARM_64_LPAE_S1',
      { pgsizeBitmap: B4K, ias: 48, oas: 44, alloc: (_c, size) => (first ? ((first = false), 0x9100_0000) : bad(mem, size)), free: () => {} },
      { memory: mem },
    );
    if (!r.ok) throw new Error(r.reason);
    return r.table;
  }
  const faulty: Array<[string, (mem: PhysMemory, size: number) => number, string]> = [
    ['dirty memory', (mem, size) => (mem.fill(0x9000_0000, size, 0xab), 0x9000_0000), 'zeroed'],
    ['misaligned memory', () => 0x9000_0800, 'aligned'],
    ['memory outside oas', () => 2 ** 44, 'in-range'],
    ['a fractional address', () => 0.5, 'in-range'],
  ];
  it.each(faulty)('rejects an allocator that returns %s with AllocatorFaultError naming the rule', (_n, bad, rule) => {
    const pt = withBadTables(bad);
    let caught: unknown;
    try {
      pt.mapPages(0x1000, 0, 0x1000, 1, RW);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(AllocatorFaultError);
    expect((caught as AllocatorFaultError).rule).toBe(rule);
    expect((caught as AllocatorFaultError).message).toMatch(/\[cfg\.alloc\]/);
  });
  it('rejects an allocator that hands out memory overlapping a live table', () => {
    const mem = new PhysMemory();
    const r = allocIoPgtableOps('ARM_64_LPAE_S1', { ...S1, alloc: () => 0x8000_0000, free: () => {} }, { memory: mem });
    if (!r.ok) throw new Error(r.reason);
    expect(() => r.table.mapPages(0x1000, 0, 0x1000, 1, RW)).toThrow(/no-overlap/);
  });
});

describe('non-coherent walks (spec §1.3, §4; FORMAT.md note 14)', () => {
  it('DMA-maps each table, syncs every PTE write, marks tables SW_SYNC, unmaps before free', () => {
    const ev: string[] = [];
    const pt = createPageTable('ARM_64_LPAE_S1', { ...S1, coherentWalk: false }, {
      dma: { map: (p, s) => (ev.push(`map ${s}`), p), unmap: (_p, s) => ev.push(`unmap ${s}`), sync: (_p, b) => ev.push(`sync ${b}`) },
    });
    expect(ev).toEqual(['map 4096']);
    ev.length = 0;
    pt.mapPages(0x1000, 0, 0x1000, 2, RW);
    expect(ev).toEqual(['map 4096', 'sync 8', 'map 4096', 'sync 8', 'map 4096', 'sync 8', 'sync 16']);
    const walk = pt.pgtableWalk(0x1000);
    for (const l of [0, 1, 2]) expect(walk.ptes[l]! >> 55n & 1n).toBe(1n);
    ev.length = 0;
    pt.free();
    expect(ev).toEqual(['unmap 4096', 'unmap 4096', 'unmap 4096', 'unmap 4096']);
  });
  it('a DMA address that differs from the physical address makes the allocation fail (ENOMEM), freed at once', () => {
    const allocator = createSystemAllocator();
    let n = 0;
    const pt = createPageTable('ARM_64_LPAE_S1', { ...S1, coherentWalk: false }, { allocator, dma: { map: (p) => (n++ === 0 ? p : p + 0x1000), unmap() {}, sync() {} } });
    expect(pt.mapPages(0x1000, 0, 0x1000, 1, RW)).toMatchObject({ error: 'ENOMEM' });
    expect(allocator.stats().liveTables).toBe(1);
  });
});

describe('teardown order (spec §6)', () => {
  it('flush_all first, then children before parents, PGD last', () => {
    const mem = new PhysMemory();
    const sys = createSystemAllocator({ memory: mem });
    const order: string[] = [];
    const r = allocIoPgtableOps('ARM_64_LPAE_S1', { ...S1, alloc: (_c, s, ctx) => sys.alloc(s, ctx), free: (_c, p, s) => (order.push(`free ${p.toString(16)}`), sys.free(p, s)) }, {
      memory: mem,
      tlb: { tlbFlushAll: () => order.push('flush_all') },
    });
    if (!r.ok) throw new Error(r.reason);
    const pt = r.table;
    pt.mapPages(0x1000, 0, 0x1000, 1, RW);
    pt.mapPages(0x4000_0000, 0, 0x1000, 1, RW);
    const [l3a, l3b] = [pt.pgtableWalk(0x1000).ptes[2]!, pt.pgtableWalk(0x4000_0000).ptes[2]!].map((d) => Number(d & 0xffff_ffff_f000n));
    const l2a = Number(pt.pgtableWalk(0x1000).ptes[1]! & 0xffff_ffff_f000n);
    const l2b = Number(pt.pgtableWalk(0x4000_0000).ptes[1]! & 0xffff_ffff_f000n);
    const l1 = Number(pt.pgtableWalk(0x1000).ptes[0]! & 0xffff_ffff_f000n);
    pt.free();
    expect(order).toEqual(['flush_all', ...[l3a!, l2a, l3b!, l2b, l1, pt.pgd].map((p) => `free ${p.toString(16)}`)]);
  });
});

describe('walks and dirty tracking (spec §2.5)', () => {
  it('pgtableWalk returns each descriptor by absolute level, -EINVAL at a hole', () => {
    const { pt } = table('strict');
    pt.mapPages(0x1000, 0x7000, 0x1000, 1, RW);
    const w = pt.pgtableWalk(0x1000);
    expect(w.ret).toBe(0);
    expect(w.ptes[3]! & 0xffff_ffff_f000n).toBe(0x7000n);
    expect(pt.pgtableWalk(0x4000_0000)).toMatchObject({ ret: -22 });
  });
  it('iovaToPhys aliases above ias (indices are masked) and lookup is tagged', () => {
    const { pt } = table('strict');
    pt.mapPages(0x1000, 0x7000, 0x1000, 1, RW);
    expect(pt.iovaToPhys(2n ** 48n + 0x1234n)).toBe(0x7234);
    expect(pt.lookup(0x1000)).toMatchObject({ kind: 'mapped', paddr: 0x7000, level: 3 });
    expect(pt.lookup(0x2000)).toMatchObject({ kind: 'unmapped', level: 3 });
    expect(pt.iovaToPhys(0xffff_ffff_ffff_ffffn)).toBe(0);
  });
  it('lookups reject input that is not an unsigned 64-bit integer with a typed error', () => {
    const { pt } = table('strict');
    for (const bad of [NaN, -1, 1.5, 2n ** 64n, -1n, 'x' as unknown as number]) {
      expect(() => pt.iovaToPhys(bad)).toThrow(IoPgtableError);
      expect(() => pt.lookup(bad)).toThrow(/not an unsigned 64-bit integer/);
      expect(() => pt.pgtableWalk(bad)).toThrow(IoPgtableError);
    }
  });
  it('ARM_HD leaves start dirty; read_and_clear records them and makes them writeable-clean', () => {
    const { pt } = table('strict', { ...S1, quirks: ['ARM_HD'] });
    pt.mapPages(0x1000, 0x7000, 0x1000, 2, RW);
    pt.mapPages(0x3000, 0x9000, 0x1000, 1, Prot.READ);
    const seen: Array<[number, number]> = [];
    const rec = { record: (i: number, s: number) => seen.push([i, s]) };
    expect(pt.readAndClearDirty(0x1000, 0x3000, IOMMU_DIRTY_NO_CLEAR, rec)).toBe(0);
    expect(seen).toEqual([[0x1000, 0x1000], [0x2000, 0x1000]]);
    seen.length = 0;
    expect(pt.readAndClearDirty(0x1000, 0x3000, 0, rec)).toBe(0);
    expect(seen).toHaveLength(2);
    expect(pt.pgtableWalk(0x1000).ptes[3]! & (1n << 7n)).toBe(1n << 7n);
    seen.length = 0;
    expect(pt.readAndClearDirty(0x1000, 0x3000, 0, rec)).toBe(0);
    expect(seen).toEqual([]);
  });
  it('read_and_clear_dirty: EINVAL for size 0, beyond ias, a hole in range, or a non-S1 format', () => {
    const { pt } = table('strict', { ...S1, quirks: ['ARM_HD'] });
    const rec = { record() {} };
    pt.mapPages(0x1000, 0x7000, 0x1000, 1, RW);
    expect(pt.readAndClearDirty(0x1000, 0, 0, rec)).toBe(-22);
    expect(pt.readAndClearDirty(2 ** 48 - 0x1000, 0x2000, 0, rec)).toBe(-22);
    expect(pt.readAndClearDirty(0x1000, 0x2000, 0, rec)).toBe(-22);
    const s2 = createPageTable('ARM_64_LPAE_S2', S1);
    s2.mapPages(0x1000, 0x7000, 0x1000, 1, RW);
    expect(s2.readAndClearDirty(0x1000, 0x1000, 0, rec)).toBe(-22);
  });
});
