import { assertAccounting } from '@io-pgtable/allocator-api';
import { PhysMemory, Prot, createPageTable, createSystemAllocator } from '@io-pgtable/core';
import { tablesNeeded, withReservation } from '@io-pgtable/reservation';
import { describe, expect, it } from 'vitest';
import { HLOS_VMID, createScmMock, vmidMask, withSecureShare } from '../src/index.js';
import { PAGE, RUN, VM_A } from './helpers.js';

const RW = Prot.READ | Prot.WRITE;
const TWO_MB = 0x20_0000;

/**
 * withReservation over withSecureShare: prepare takes pages that are already assigned to
 * the VMID (the secure calls happen there, batched), run consumes them with no call into
 * secure-share at all (the reservation's section would report one), release gives the
 * unused ones back to the VMID's pool.
 */
function stack(batch: number) {
  const memory = new PhysMemory();
  const backing = createSystemAllocator({ memory });
  const scm = createScmMock();
  const share = withSecureShare(backing, { scm, vmid: VM_A, batch, poolTarget: 0 });
  const reservation = withReservation(share);
  const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 }, { allocator: reservation });
  return { memory, backing, scm, share, reservation, pt };
}

describe('withReservation over withSecureShare', () => {
  it('prepare pre-assigns in batches; the run phase makes no secure call and no backing call', () => {
    const { scm, share, reservation, pt } = stack(16);
    const shared = vmidMask(HLOS_VMID, VM_A);
    for (let job = 0; job < 4; job++) {
      const ops = Array.from({ length: 6 }, (_, i) => ({ kind: 'map' as const, iova: (job * 6 + i) * TWO_MB, size: PAGE, pgsize: PAGE }));
      const r = reservation.prepare(tablesNeeded(pt.geometry, ops).total);
      expect(r.state).toBe('ready');
      const calls = scm.calls;
      r.run(() => {
        for (const op of ops) expect(pt.mapPages(op.iova, 0x4000_0000, PAGE, 1, RW, RUN).mapped).toBe(PAGE);
      });
      expect(scm.calls).toBe(calls);
      r.release();
      reservation.flushDone();
      for (const p of pt.tables().keys()) expect(scm.stateAt(p).owners).toBe(shared);
    }
    expect(reservation.counters()).toMatchObject({ violations: 0, exhaustions: 0 });
    // 4 jobs reserved 6 leaf tables + (2 upper tables) each = 32 pages, plus the PGD, in
    // calls of at most 16 pages; unused pages went back to the VMID's pool, not to the host.
    expect(scm.log.every((c) => c.ok && c.pageCount <= 16)).toBe(true);
    expect(scm.log.every((c) => c.src === vmidMask(HLOS_VMID))).toBe(true);
    expect(share.pooled()).toBeGreaterThan(0);
    assertAccounting(share);
  });

  it('teardown through both layers returns every page to the host', () => {
    const { scm, backing, share, reservation, pt } = stack(4);
    const ops = [{ kind: 'map' as const, iova: 0, size: 4 * TWO_MB }];
    const r = reservation.prepare(tablesNeeded(pt.geometry, ops).total);
    r.run(() => {
      for (let i = 0; i < 4; i++) expect(pt.mapPages(i * TWO_MB, 0x4000_0000, PAGE, 1, RW, RUN).mapped).toBe(PAGE);
    });
    r.release();
    pt.free();
    // One signal drains both layers: the reservation settles its pending frees into
    // secure-share, then forwards flushDone, which pools them for reclaim.
    reservation.flushDone();
    reservation.drain!();
    expect(share.stats()).toMatchObject({ outstanding: 0, quarantined: 0 });
    expect(backing.stats().outstanding).toBe(0);
    expect(scm.trackedPages).toBe(0);
  });
});
