import { BLOCKING_CTX, assertAccounting, type TableAllocator } from '@io-pgtable/allocator-api';
import { IotlbGather, createPageTable } from '@io-pgtable/core';
import { withPagePool } from '@io-pgtable/page-pool';
import { describe, expect, it } from 'vitest';
import { withBatching } from '../src/index.js';
import { traced } from './helpers.js';

const SZ_4K = 4096;
const SZ_2M = 0x20_0000;
const SZ_1G = 0x4000_0000;

/** Each layer holds from the one below exactly what the one below counts as live there. */
function checkLayers(upper: TableAllocator, lower: TableAllocator): void {
  const u = assertAccounting(upper);
  const l = assertAccounting(lower);
  expect(u.outstanding).toBe(l.live);
}

function churn(top: TableAllocator, rounds: number, check: () => void): void {
  const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: SZ_4K | SZ_2M | SZ_1G, ias: 48, oas: 48 }, { allocator: top });
  for (let round = 0; round < rounds; round++) {
    const iova = ((round % 5) + 1) * SZ_1G;
    expect(pt.mapPages(iova, 0x2_0000_0000, SZ_4K, 8, ['read', 'write'])).toMatchObject({ mapped: 8 * SZ_4K });
    expect(pt.mapPages(iova + 7 * SZ_2M, 0x2_0000_0000, SZ_4K, 8, ['read'])).toMatchObject({ mapped: 8 * SZ_4K });
    check();
    expect(pt.unmapPages(iova, SZ_1G, 1, new IotlbGather())).toMatchObject({ unmapped: SZ_1G });
    check();
    top.flushDone();
    check();
  }
  pt.free();
  top.flushDone();
}

describe('batched(pool(system))', () => {
  it('batches draw from the pool; released frees reach the pool and become idle in the same flush', () => {
    const t = traced();
    const pool = withPagePool(t.allocator, { highWatermark: 32 });
    const top = withBatching(pool, { batch: 4 });
    const p = top.alloc(SZ_4K, BLOCKING_CTX)!;
    expect(pool.stats().live).toBe(4 * SZ_4K);
    top.free(p, SZ_4K);
    expect(pool.counters().pendingFlushPages).toBe(0);
    top.flushDone();
    expect(pool.counters()).toMatchObject({ pendingFlushPages: 0, cachedPages: 1 });
    checkLayers(top, pool);
    checkLayers(pool, t.system);
  });
});

describe('pool(batched(system))', () => {
  it('pages the pool trims at a flush reach the system in that same flush', () => {
    const t = traced();
    const bat = withBatching(t.allocator, { batch: 4 });
    const top = withPagePool(bat, { highWatermark: 0 });
    const p = top.alloc(SZ_4K, BLOCKING_CTX)!;
    top.free(p, SZ_4K);
    top.flushDone();
    expect(t.log.freed).toEqual([p]);
    // The pool hands it down under the completed flush, so batched releases it at once (no batch).
    expect(bat.counters()).toMatchObject({ pendingFlushPages: 0, releaseBatches: 0, pagesHeld: 3 });
    checkLayers(top, bat);
    checkLayers(bat, t.system);
  });
});

describe.each([
  ['batched(pool(system))', (backing: TableAllocator) => {
    const pool = withPagePool(backing, { highWatermark: 32 });
    // Batches drawn after the first flushes are recycled pool pages, not system pages.
    const after = () => expect(pool.counters().hits).toBeGreaterThan(pool.counters().misses);
    return { top: withBatching(pool, { batch: 8 }) as TableAllocator, lower: pool as TableAllocator, after };
  }],
  ['pool(batched(system))', (backing: TableAllocator) => {
    const bat = withBatching(backing, { batch: 8 });
    // Every pool miss reached the system inside a bulk call of 8.
    const after = () => expect(bat.counters()).toMatchObject({ pagesPerBackingCall: 8, shortBatches: 0 });
    return { top: withPagePool(bat, { highWatermark: 4 }) as TableAllocator, lower: bat as TableAllocator, after };
  }],
] as const)('%s under churn', (_name, build) => {
  it('survives map/unmap churn with every layer accounted and tears down to zero', () => {
    const t = traced();
    const { top, lower, after } = build(t.allocator);
    churn(top, 20, () => {
      checkLayers(top, lower);
      checkLayers(lower, t.system);
    });
    top.drain?.();
    expect(top.stats().outstanding).toBe(0);
    expect(lower.stats().outstanding).toBe(0);
    expect(t.system.stats().outstanding).toBe(0);
    after();
  });
});
