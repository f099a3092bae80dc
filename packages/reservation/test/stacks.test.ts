// A reservation under a decorator: the decorator forwards the ctx it serves, so the
// reservation still tells the root (kind 'pgd', from the backing) from a lower table
// (only from the running job's reservation). Contract v2: `ctx.kind`, not object identity.
import { AllocatorMisuseError, assertAccounting, drainAll } from '@io-pgtable/allocator-api';
import { IotlbGather, createPageTable, createSystemAllocator } from '@io-pgtable/core';
import { withPagePool } from '@io-pgtable/page-pool';
import { describe, expect, it } from 'vitest';
import { withReservation } from '../src/index.js';
import { PANTHOR_BITMAP, SZ_2M, SZ_4K } from './helpers.js';

const CFG = { pgsizeBitmap: PANTHOR_BITMAP, ias: 48, oas: 48 };
const RUN = { mayBlock: false, phase: 'run' } as const;

function poolOverReservation() {
  const backing = createSystemAllocator();
  const res = withReservation(backing);
  const pool = withPagePool(res, { highWatermark: 8 });
  return { backing, res, pool };
}

describe('reservation under page-pool', () => {
  it('the PGD reaches the reservation through a pool miss as kind pgd and comes from the backing', () => {
    const { backing, res, pool } = poolOverReservation();
    const pt = createPageTable('ARM_64_LPAE_S1', CFG, { allocator: pool });
    expect(res.counters().rootAllocs).toBe(1);
    expect(backing.allocCalls).toBe(1);
    pt.free();
    drainAll(pool);
    expect(backing.stats().outstanding).toBe(0);
  });

  it('lower tables allocated inside a run come from the reservation; freed ones are recycled by the pool', () => {
    const { backing, res, pool } = poolOverReservation();
    const pt = createPageTable('ARM_64_LPAE_S1', CFG, { allocator: pool });
    const r = res.prepare(3);
    expect(r.state).toBe('ready');
    const before = backing.allocCalls;
    r.run(() => expect(pt.mapPages(0, 0x1_0000_0000, SZ_4K, 1, ['read'], RUN).error).toBeUndefined());
    expect(r.consumed).toBe(3);
    expect(backing.allocCalls).toBe(before);
    r.release();
    const gather = new IotlbGather();
    pt.unmapPages(0, SZ_4K, 1, gather);
    // Unmap a 2 MiB block range: frees the leaf table into the pool.
    pt.unmapPages(0, SZ_2M, 1, gather);
    expect(pool.counters().pendingFlushPages + pool.counters().cachedPages).toBe(1);
    pool.flushDone();
    expect(pool.counters().cachedPages).toBe(1);
    assertAccounting(pool);
    assertAccounting(res);
    pt.free();
    drainAll(pool);
    expect(backing.stats().outstanding).toBe(0);
  });

  it('a lower-table allocation with no job running is still refused below the pool (alloc-outside-op)', () => {
    const { pool } = poolOverReservation();
    const pt = createPageTable('ARM_64_LPAE_S1', CFG, { allocator: pool });
    expect(() => pt.mapPages(0, 0x1_0000_0000, SZ_4K, 1, ['read'], { mayBlock: true })).toThrow(AllocatorMisuseError);
    expect(() => pool.refill()).toThrow(AllocatorMisuseError);
  });

  it('a refill inside a run takes from the running reservation, not the backing', () => {
    const { backing, res, pool } = poolOverReservation();
    createPageTable('ARM_64_LPAE_S1', CFG, { allocator: pool });
    const r = res.prepare(8);
    const before = backing.allocCalls;
    pool.setWatermarks(0, 4);
    r.run(() => expect(pool.refill({ ...RUN, kind: 'table' })).toBe(4));
    expect(r.consumed).toBe(4);
    expect(backing.allocCalls).toBe(before);
    r.release();
  });
});
