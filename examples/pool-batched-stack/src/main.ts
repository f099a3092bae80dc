/**
 * A page pool over a batching allocator, the stack a GPU driver builds for VM_BIND churn:
 * the pool recycles freed tables once their flush completed, and its misses reach the system
 * allocator in batches of 16 pages. Checks what it prints and exits non-zero if anything is off.
 */
import assert from 'node:assert/strict';
import { assertAccounting, drainAll } from '@io-pgtable/allocator-api';
import { withBatching } from '@io-pgtable/batched';
import { IotlbGather, createPageTable, createSystemAllocator } from '@io-pgtable/core';
import { withPagePool } from '@io-pgtable/page-pool';

const system = createSystemAllocator();
const batched = withBatching(system, { batch: 16, mode: 'all-or-nothing' });
const pool = withPagePool(batched, { sizes: [4096], lowWatermark: 8, highWatermark: 32 });
pool.refill(); // where the driver may sleep: stock the pool before the first bind

const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 }, { allocator: pool });

const REGIONS = 24; // each bind lands in its own 2 MiB region, so each needs its own last-level table
const base = 0x1_0000_0000;
function bindAll(): void {
  for (let i = 0; i < REGIONS; i++) {
    const r = pt.mapPages(base + i * 0x20_0000, 0x8000_0000 + i * 0x10000, 0x1000, 16, ['read', 'write'], { mayBlock: false });
    assert.equal(r.error, undefined, `bind ${i}: ${r.error}`);
    assert.equal(r.mapped, 0x10000);
  }
}
function unbindAll(): void {
  // One unmap per 2 MiB region: each removes the region's last-level table.
  const gather = new IotlbGather();
  const r = pt.unmapPages(base, 0x20_0000, REGIONS, gather);
  assert.equal(r.unmapped, REGIONS * 0x20_0000);
  // ... the driver's TLB and walk-cache invalidation completes here ...
  pool.flushDone(); // only now may the freed tables be handed out again
}

bindAll();
assert.equal(pt.iovaToPhys(base + 5 * 0x20_0000 + 0x1234), 0x8000_0000 + 5 * 0x10000 + 0x1234);
const first = pool.counters();
unbindAll();
bindAll(); // the same work again: served from the tables the unbind recycled
const second = pool.counters();
unbindAll();

const hitsSecondRound = second.hits - first.hits;
console.log(`first round: ${first.hits} pool hits, ${first.misses} misses`);
console.log(`second round: ${hitsSecondRound} pool hits, ${second.misses - first.misses} misses (freed tables reused after flushDone)`);
const b = batched.counters();
console.log(`below the pool: ${b.allocBatches} batched refills of ${b.pagesPerBackingCall} pages each`);
assert.equal(second.misses - first.misses, 0, 'the second round should need nothing from below the pool');
assert.ok(hitsSecondRound >= REGIONS, `expected at least ${REGIONS} hits in the second round, got ${hitsSecondRound}`);

// Teardown: free the page table, then flushDone + drain down the whole stack.
pt.free();
drainAll(pool);
assertAccounting(pool);
assert.equal(system.stats().liveTables, 0, 'every page went back to the system allocator');
console.log('teardown: every page back to the system allocator');
