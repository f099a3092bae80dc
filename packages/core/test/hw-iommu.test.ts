import { describe, expect, it } from 'vitest';
import { EMPTY_STATS, type TableAllocator } from '@io-pgtable/allocator-api';
import { createPageTable, createSystemAllocator, hw, IotlbGather, PhysMemory } from '../src/index.js';

const { AssocCache, Iommu, IommuFindingError } = hw;
type FlushBehaviour = hw.FlushBehaviour;

const SZ_4K = 0x1000;
const SZ_2M = 0x20_0000;
const RW = ['read', 'write'] as const;

/** 64-bit S1, 4K granule, ias 39 (L1 PGD), tables observed by the model. */
function setup(opts: { flush?: FlushBehaviour; allocator?: (m: PhysMemory) => TableAllocator; throwOn?: hw.FindingKind[] } = {}) {
  const memory = new PhysMemory();
  const allocator = opts.allocator?.(memory) ?? createSystemAllocator({ memory });
  const iommu = new Iommu({ memory, tlb: { entries: 16 }, walkCache: { entries: 8 }, throwOn: opts.throwOn });
  const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 39, oas: 40 }, { allocator: iommu.observe(allocator), tlb: iommu.flushOps(opts.flush) });
  iommu.attach(pt.cfg);
  return { memory, allocator, iommu, pt };
}

/** Map 4K pages in the 2 MiB region at `region`, each to `pa + i * 4K`. */
function mapSmall(pt: ReturnType<typeof setup>['pt'], region: number, pa: number, count = 4) {
  for (let i = 0; i < count; i++) expect(pt.mapPages(region + i * SZ_4K, pa + i * SZ_4K, SZ_4K, 1, [...RW]).error).toBeUndefined();
}

describe('AssocCache replacement', () => {
  it('LRU evicts the least recently used entry, FIFO the oldest inserted', () => {
    for (const [replacement, survivor, victim] of [
      ['lru', 1, 2],
      ['fifo', 2, 1],
    ] as const) {
      const c = new AssocCache<string>({ entries: 2, replacement });
      c.set(1, 'a');
      c.set(2, 'b');
      c.get(1);
      expect(c.set(3, 'c')).toBe(victim === 1 ? 'a' : 'b');
      expect(c.peek(survivor)).toBeDefined();
      expect(c.peek(victim)).toBeUndefined();
      expect(c.evictions).toBe(1);
    }
  });

  it('random replacement is reproducible for a seed and keeps the capacity', () => {
    const run = () => {
      const c = new AssocCache<number>({ entries: 4, replacement: 'random', seed: 42 });
      const ev: number[] = [];
      for (let i = 0; i < 32; i++) {
        const e = c.set(i, i);
        if (e !== undefined) ev.push(e);
      }
      expect(c.size).toBe(4);
      return ev;
    };
    const a = run();
    expect(a).toHaveLength(28);
    expect(run()).toEqual(a);
    expect(a).not.toEqual([...Array(28).keys()]); // not FIFO order
  });

  it('rejects a zero-sized cache and unknown policies', () => {
    expect(() => new AssocCache({ entries: 0 })).toThrow(RangeError);
    expect(() => new AssocCache({ entries: 1, replacement: 'mru' as 'lru' })).toThrow(RangeError);
  });
});

describe('TLB and walk cache', () => {
  it('serves repeated accesses from the TLB and neighbours from the walk cache', () => {
    const { pt, iommu } = setup();
    mapSmall(pt, 0, 0x4000_0000);
    expect(iommu.read(0x10)).toMatchObject({ ok: true, source: 'walk', paddr: 0x4000_0010 });
    expect(iommu.read(0x20)).toMatchObject({ ok: true, source: 'tlb', paddr: 0x4000_0020 });
    expect(iommu.read(SZ_4K + 4)).toMatchObject({ ok: true, source: 'walk-cache', paddr: 0x4000_1004 });
    expect(iommu.counters).toMatchObject({ accesses: 3, tlbHits: 1, walkCacheHits: 1, walks: 1 });
    expect(iommu.walkCacheSize).toBe(2); // L1[0] -> L2 table, L2[0] -> L3 table
  });

  it('a TLB entry survives an unmap until the queued add_page invalidation is synced', () => {
    const { pt, iommu } = setup();
    mapSmall(pt, 0, 0x4000_0000, 1);
    iommu.read(0);
    const gather = new IotlbGather();
    expect(pt.unmapPages(0, SZ_4K, 1, gather).unmapped).toBe(SZ_4K);
    expect(iommu.pendingInvalidations).toBe(1);
    // The device still hits the stale TLB entry: reported, and the stale address is used.
    expect(iommu.read(0)).toMatchObject({ ok: true, source: 'tlb', paddr: 0x4000_0000 });
    expect(iommu.findingsOf('stale-tlb')).toHaveLength(1);
    iommu.iotlbSync(gather);
    expect(gather.isEmpty).toBe(true);
    expect(iommu.read(0)).toMatchObject({ ok: false, fault: 'unmapped', level: 3 });
  });

  it('a no-op add_page leaves the TLB stale even after sync', () => {
    const { pt, iommu } = setup({ flush: { addPage: false } });
    mapSmall(pt, 0, 0x4000_0000, 1);
    iommu.read(0);
    pt.unmapPages(0, SZ_4K, 1, new IotlbGather());
    iommu.iotlbSync();
    expect(iommu.read(0)).toMatchObject({ ok: true, source: 'tlb' });
    expect(iommu.findingsOf('stale-tlb')).toHaveLength(1);
  });

  it('tlbFlushWalk removes the walk-cache entries and TLB entries of the range only', () => {
    const { pt, iommu } = setup();
    mapSmall(pt, 0, 0x4000_0000, 2);
    mapSmall(pt, 0x4000_0000, 0x5000_0000, 2); // another 1 GiB: its own L2 table
    iommu.read(0);
    iommu.read(0x4000_0000);
    expect(iommu.walkCacheSize).toBe(4); // L1 and L2 pointers for each region
    expect(iommu.tlbSize).toBe(2);
    // Unmapping the 2 MiB region drops its L3 table: flush_walk(0, 2M) before the free.
    expect(pt.unmapPages(0, SZ_2M, 1).unmapped).toBe(SZ_2M);
    expect(iommu.counters.flushWalk).toBe(1);
    // TLBI by VA drops every walk entry covering the range: L1[0] and L2[0], not region 2's.
    expect(iommu.walkCacheSize).toBe(2);
    expect(iommu.tlbSize).toBe(1);
    expect(iommu.read(0)).toMatchObject({ ok: false, fault: 'unmapped', level: 2 });
    expect(iommu.read(0x4000_0000)).toMatchObject({ ok: true, source: 'tlb' });
  });

  it('tlbFlushAll at free() empties both caches', () => {
    const { pt, iommu } = setup();
    mapSmall(pt, 0, 0x4000_0000, 2);
    iommu.read(0);
    pt.free();
    expect(iommu.counters.flushAll).toBe(1);
    expect(iommu.tlbSize + iommu.walkCacheSize).toBe(0);
  });

  it('an LRU TLB of 2 entries keeps the two most recent pages', () => {
    const memory = new PhysMemory();
    const iommu = new Iommu({ memory, tlb: { entries: 2, replacement: 'lru' } });
    const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 39, oas: 40 }, { allocator: createSystemAllocator({ memory }), tlb: iommu.flushOps() });
    iommu.attach(pt.cfg);
    mapSmall(pt, 0, 0x4000_0000, 3);
    for (const p of [0, 1, 0, 2]) iommu.read(p * SZ_4K);
    expect(iommu.read(0)).toMatchObject({ source: 'tlb' });
    expect(iommu.read(SZ_4K)).toMatchObject({ source: 'walk-cache' });
  });
});

describe('use-after-free through the walk cache (no-op flush_walk)', () => {
  const PANTHOR: FlushBehaviour = { flushAll: false, flushWalk: false };

  it('an immediately freeing allocator reuses a table the walk cache still points to', () => {
    const { pt, iommu } = setup({ flush: PANTHOR });
    mapSmall(pt, 0, 0x4000_0000); // L3 table T for [0, 2M)
    iommu.read(0); // the walk cache now holds L2[0] -> T
    pt.unmapPages(0, SZ_2M, 1); // frees T; the no-op flush_walk left the pointer cached
    expect(iommu.findings).toEqual([]);
    mapSmall(pt, SZ_2M, 0x5000_0000); // the system allocator hands T out again at once
    const reuse = iommu.findingsOf('reuse-before-flush');
    expect(reuse).toHaveLength(1);
    expect(reuse[0]).toMatchObject({ rule: 'reuse-before-flush' });
    // The device then walks through the stale pointer into T's new contents (page 3 is
    // not in the TLB, so the walk starts from the cached L2[0] -> T).
    const r = iommu.read(3 * SZ_4K);
    expect(r).toMatchObject({ ok: true, source: 'walk-cache', paddr: 0x5000_3000 });
    expect(iommu.findingsOf('walk-into-reused')).toHaveLength(1);
    expect(iommu.findingsOf('stale-walk')).toHaveLength(1);
  });

  it('real flush ops make the same sequence safe', () => {
    const { pt, iommu } = setup();
    mapSmall(pt, 0, 0x4000_0000);
    iommu.read(0);
    pt.unmapPages(0, SZ_2M, 1);
    mapSmall(pt, SZ_2M, 0x5000_0000);
    expect(iommu.read(0)).toMatchObject({ ok: false, fault: 'unmapped' });
    expect(iommu.findingsOf('reuse-before-flush', 'walk-into-reused', 'stale-walk', 'stale-tlb')).toEqual([]);
  });

  it('a deferring allocator is safe when the driver flushes before flushDone()', () => {
    // Minimal deferring decorator: frees wait on a pending list until flushDone().
    const deferring = (m: PhysMemory): TableAllocator => {
      const inner = createSystemAllocator({ memory: m });
      let pending: Array<[number, number]> = [];
      return {
        caps: { ...inner.caps, name: 'deferring', defersFree: true },
        memory: m,
        alloc: (size, ctx) => inner.alloc(size, ctx),
        free: (p, size) => void pending.push([p, size]),
        flushDone: () => {
          for (const [p, s] of pending) inner.free(p, s);
          pending = [];
        },
        stats: () => ({ ...EMPTY_STATS, ...inner.stats() }),
      };
    };
    const { pt, iommu, allocator } = setup({ flush: PANTHOR, allocator: deferring });
    mapSmall(pt, 0, 0x4000_0000);
    iommu.read(0);
    pt.unmapPages(0, SZ_2M, 1);
    mapSmall(pt, SZ_2M, 0x5000_0000);
    expect(iommu.read(3 * SZ_4K)).toMatchObject({ ok: true, source: 'walk-cache', paddr: 0x4000_3000 }); // stale but intact
    expect(iommu.findingsOf('walk-after-free')).toHaveLength(1);
    expect(iommu.findingsOf('walk-after-free')[0]?.rule).toBe('walk-after-free');
    expect(iommu.findingsOf('reuse-before-flush', 'walk-into-reused')).toEqual([]);
    iommu.invalidateAll(); // the driver's real flush (Panthor: flush at the end of the op)
    allocator.flushDone();
    mapSmall(pt, 2 * SZ_2M, 0x6000_0000); // may now reuse T
    expect(iommu.read(0)).toMatchObject({ ok: false, fault: 'unmapped' });
    expect(iommu.findingsOf('reuse-before-flush', 'walk-into-reused')).toEqual([]);
  });

  it('sees a freed, still-cached table being zeroed or reassigned', () => {
    for (const how of ['zeroed', 'reassigned'] as const) {
      const { pt, iommu, memory } = setup({ flush: PANTHOR });
      mapSmall(pt, 0, 0x4000_0000);
      iommu.read(0);
      const table = [...pt.tables().keys()].sort((a, b) => b - a)[0]!; // the L3 table (highest address)
      pt.unmapPages(0, SZ_2M, 1);
      if (how === 'zeroed') memory.zero(table, SZ_4K, 'allocator');
      else iommu.generations.reassigned(table, SZ_4K);
      const [f] = iommu.findingsOf(how === 'zeroed' ? 'write-before-flush' : 'reuse-before-flush');
      expect(f?.message).toContain(how);
      expect(f?.rule).toBe(how === 'zeroed' ? 'write-before-flush' : 'reuse-before-flush');
    }
  });

  it('throws IommuFindingError for kinds listed in throwOn', () => {
    const { pt, iommu } = setup({ flush: PANTHOR, throwOn: ['reuse-before-flush'] });
    mapSmall(pt, 0, 0x4000_0000);
    iommu.read(0);
    pt.unmapPages(0, SZ_2M, 1);
    expect(() => pt.mapPages(SZ_2M, 0x5000_0000, SZ_4K, 1, [...RW])).toThrow(IommuFindingError);
  });

  it('wrapFlushOps runs the driver callbacks and lets the driver gather pages', () => {
    const memory = new PhysMemory();
    const iommu = new Iommu({ memory });
    const calls: string[] = [];
    const tlb = iommu.wrapFlushOps(
      {
        tlbFlushAll: () => void calls.push('all'),
        tlbFlushWalk: (iova, size) => void calls.push(`walk ${iova.toString(16)}+${size.toString(16)}`),
        tlbAddPage: (g, iova, granule) => {
          calls.push(`page ${iova.toString(16)}`);
          g.add(iova, granule);
        },
      },
      { flushWalk: false },
    );
    const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 39, oas: 40 }, { allocator: iommu.observe(createSystemAllocator({ memory })), tlb });
    iommu.attach(pt.cfg);
    mapSmall(pt, 0, 0x4000_0000, 1);
    iommu.read(0);
    const g = new IotlbGather();
    pt.unmapPages(0, SZ_4K, 1, g);
    mapSmall(pt, SZ_2M, 0x5000_0000, 1);
    pt.unmapPages(SZ_2M, SZ_2M, 1, g);
    pt.free();
    expect(calls).toEqual(['page 0', 'walk 200000+200000', 'page 200000', 'all']);
    expect(g.count).toBe(2);
  });

  it('hardware dirty management clears AP[2] on a device write (ARM_HD)', () => {
    const memory = new PhysMemory();
    const iommu = new Iommu({ memory });
    const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 39, oas: 40, quirks: ['ARM_HD'] }, { allocator: createSystemAllocator({ memory }), tlb: iommu.flushOps() });
    iommu.attach(pt.cfg);
    mapSmall(pt, 0, 0x4000_0000, 1);
    const seen: number[] = [];
    const rec = { record: (iova: number) => void seen.push(iova) };
    pt.readAndClearDirty(0, SZ_4K, 0, rec); // writable-dirty after map: reported and cleaned (AP[2] set)
    expect(seen).toEqual([0]);
    expect(iommu.read(0)).toMatchObject({ ok: true });
    pt.readAndClearDirty(0, SZ_4K, 0, rec);
    expect(seen).toEqual([0]); // reads do not dirty
    expect(iommu.write(0, 5)).toMatchObject({ ok: true });
    pt.readAndClearDirty(0, SZ_4K, 0, rec);
    expect(seen).toEqual([0, 0]);
    expect(iommu.findingsOf('permission-fault', 'stale-tlb')).toEqual([]);
  });
});
