// The exported conformance adapter (src/adapter.ts), run as a plugin author would, and a
// reservation under secure-share: the ctx secure-share serves reaches the reservation.
import { AllocatorMisuseError } from '@io-pgtable/allocator-api';
import { describeAllocatorConformance } from '@io-pgtable/conformance';
import { createPageTable, createSystemAllocator } from '@io-pgtable/core';
import { withReservation } from '@io-pgtable/reservation';
import { describe, expect, it } from 'vitest';
import { createScmMock, secureShareConformanceAdapter, withSecureShare, type SecureShareAllocator } from '../src/index.js';

const secureShare = secureShareConformanceAdapter({ vmids: [10, 11] });
describeAllocatorConformance<SecureShareAllocator>('secure-share (exported adapter)', (env) => withSecureShare(env.backing, { scm: createScmMock(), vmid: 10, batch: 4, poolTarget: 4 }), {
  secureShare,
  teardown: (a) => secureShare.releaseContexts(a),
  skip: ['property', 'fault-injection', 'long-lived'],
});

describe('reservation under secure-share', () => {
  const CFG = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
  it('the PGD request reaches the reservation with kind pgd, so the page table can be created', () => {
    const backing = createSystemAllocator();
    const res = withReservation(backing);
    const share = withSecureShare(res, { scm: createScmMock(), vmid: 10, batch: 1 });
    const pt = createPageTable('ARM_64_LPAE_S1', CFG, { allocator: share });
    expect(res.counters().rootAllocs).toBe(1);
    expect(share.stats()).toMatchObject({ live: 4096, liveTables: 1 });
    // A lower table outside a job is still refused by the reservation below.
    expect(() => pt.mapPages(0, 0x1_0000_0000, 4096, 1, ['read'], { mayBlock: true })).toThrow(AllocatorMisuseError);
  });
});
