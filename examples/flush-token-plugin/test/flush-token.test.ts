import { IotlbGather, createPageTable, createSystemAllocator, hw, PhysMemory } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import { withTokenPool } from '../src/index.js';

const CFG = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
const SZ_2M = 0x20_0000;

describe('withTokenPool under a deferred flush (Panthor: no-op tlb_flush_walk, flush at iotlbSync)', () => {
  it('a freed table comes back only after pt.iotlbSync(gather) completed its flush', () => {
    const memory = new PhysMemory();
    const iommu = new hw.Iommu({ memory });
    const pool = withTokenPool(createSystemAllocator({ memory }));
    const pt = createPageTable('ARM_64_LPAE_S1', CFG, {
      allocator: iommu.observe(pool),
      tlb: iommu.flushOps({ flushAll: false, flushWalk: false, deferred: true }),
    });
    iommu.attach(pt.cfg);
    expect(pt.mapPages(0, 0x1_0000_0000, 0x1000, 1, ['read']).error).toBeUndefined();
    const gather = new IotlbGather();
    pt.unmapPages(0, SZ_2M, 1, gather); // frees the leaf table under gather.token
    expect(gather.token.done).toBe(false);
    expect(pool.stats().pendingFlush).toBe(0x1000);
    expect(pt.unsyncedGathers).toBe(1);
    pt.iotlbSync(gather); // the flush completes; the pool hears flushDone(token)
    expect(pool.stats()).toMatchObject({ pendingFlush: 0, cached: 0x1000 });
    expect(pt.unsyncedGathers).toBe(0);
    expect(iommu.findings.filter((f) => f.rule !== undefined)).toEqual([]);
  });
});
