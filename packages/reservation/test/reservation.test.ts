import { AllocatorMisuseError, BLOCKING_CTX, assertAccounting } from '@io-pgtable/allocator-api';
import { createPageTable, createSystemAllocator } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import { SignallingSection, withBackingGuard, withReservation, type FreePolicy } from '../src/index.js';
import { PANTHOR_BITMAP, SHAPES, SZ_2M, SZ_4K, rig } from './helpers.js';

const CFG = { pgsizeBitmap: PANTHOR_BITMAP, ias: 48, oas: 48 };
const RUN = { mayBlock: false, phase: 'run' } as const;

function setup(freePolicy: FreePolicy = 'backing') {
  const backing = createSystemAllocator();
  const allocator = withReservation(backing, { freePolicy });
  const pt = createPageTable('ARM_64_LPAE_S1', CFG, { allocator, tlb: { deferred: true } });
  return { backing, allocator, pt };
}

function rule(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof AllocatorMisuseError) return e.rule;
    throw e;
  }
  return undefined;
}

describe('phases', () => {
  it('the PGD comes from the backing allocator at creation, outside any op', () => {
    const { backing, allocator } = setup();
    expect(backing.allocCalls).toBe(1);
    expect(allocator.counters().rootAllocs).toBe(1);
    expect(allocator.stats()).toMatchObject({ outstanding: 4096, live: 4096, reserved: 0, liveTables: 1 });
  });

  it('a non-root allocation with no active reservation fails with alloc-outside-op', () => {
    const { pt, backing } = setup();
    expect(rule(() => pt.mapPages(0, 0, SZ_4K, 1, ['read'], BLOCKING_CTX))).toBe('alloc-outside-op');
    expect(backing.allocCalls).toBe(1);
  });

  it('a 4 KiB map on an empty tree consumes 3 and release returns 0 (requirement 28)', () => {
    const { pt, allocator, backing } = setup();
    const r = allocator.prepare(3);
    expect(backing.allocCalls).toBe(4);
    expect(allocator.stats().reserved).toBe(3 * 4096);
    r.run(() => expect(pt.mapPages(0x1234_5000, 0x5000, SZ_4K, 1, ['read'], { mayBlock: true, phase: 'run' })).toEqual({ mapped: SZ_4K }));
    expect(backing.allocCalls).toBe(4); // GFP_KERNEL-style mayBlock inside run is ignored
    expect(r.counters()).toMatchObject({ reserved: 3, consumed: 3, available: 0 });
    expect(r.release()).toBe(0);
    expect(pt.iovaToPhys(0x1234_5000)).toBe(0x5000);
    assertAccounting(allocator);
  });

  it('release returns the unused pages exactly once and is idempotent', () => {
    const { pt, allocator, backing } = setup();
    const r = allocator.prepare(10);
    r.run(() => pt.mapPages(0, 0, SZ_4K, 1, ['read'], RUN));
    expect(r.release()).toBe(7);
    expect(r.release()).toBe(0);
    expect(r.state).toBe('released');
    expect(backing.stats().outstanding).toBe(4 * 4096);
    expect(rule(() => r.run(() => 0))).toBe('alloc-outside-op');
    pt.free();
    allocator.flushDone();
    expect(backing.stats().outstanding).toBe(0);
    assertAccounting(allocator);
  });

  it('release is safe on a never-prepared reservation', () => {
    const { allocator, backing } = setup();
    const r = allocator.createReservation();
    expect(r.release()).toBe(0);
    expect(r.release()).toBe(0);
    expect(backing.allocCalls).toBe(1);
  });

  it('reservations are private: a run consumes only its own pages', () => {
    const { pt, allocator } = setup();
    const a = allocator.prepare(3);
    const b = allocator.prepare(1);
    const res = b.run(() => pt.mapPages(0, 0, SZ_4K, 1, ['read'], RUN));
    expect(res.error).toBe('ENOMEM');
    expect(b.exhausted).toBe(true);
    expect(a.counters().available).toBe(3);
    a.run(() => expect(pt.mapPages(0, 0, SZ_4K, 1, ['read'], RUN).mapped).toBe(SZ_4K));
    a.release();
    b.release();
    assertAccounting(allocator);
  });

  it('runs do not nest', () => {
    const { allocator } = setup();
    const a = allocator.prepare(1);
    const b = allocator.prepare(1);
    expect(rule(() => a.run(() => b.run(() => 0)))).toBe('alloc-outside-op');
    expect(allocator.active).toBe(null);
    expect(allocator.section.isActive).toBe(false);
  });
});

describe('the signalling section', () => {
  it('a backing call inside run is a run-phase-backing-call violation, whatever mayBlock says', () => {
    const { allocator, backing } = setup();
    const r = allocator.prepare(1);
    const calls = backing.allocCalls;
    expect(rule(() => r.run(() => allocator.prepare(1)))).toBe('run-phase-backing-call');
    expect(backing.allocCalls).toBe(calls);
    expect(allocator.counters().violations).toBe(1);
    expect(allocator.section.violations[0]).toMatchObject({ rule: 'run-phase-backing-call', allocator: 'system', call: 'alloc' });
  });

  it('releasing a reservation inside another run is a violation and changes nothing', () => {
    const { allocator } = setup();
    const a = allocator.prepare(2);
    const b = allocator.prepare(1);
    expect(rule(() => b.run(() => a.release()))).toBe('run-phase-backing-call');
    expect(a.state).toBe('ready');
    expect(a.release()).toBe(2);
  });

  it('guards any allocator sharing the section; record mode only records', () => {
    const section = new SignallingSection({ onViolation: 'record' });
    const other = withBackingGuard(createSystemAllocator(), section);
    const token = section.begin();
    const p = other.alloc(4096, { mayBlock: false });
    other.free(p!, 4096);
    section.end(token);
    expect(section.violations.map((v) => v.call)).toEqual(['alloc', 'free']);
    other.alloc(4096, BLOCKING_CTX);
    expect(section.violations.length).toBe(2);
  });

  it('ends must match begins', () => {
    const section = new SignallingSection();
    const t1 = section.begin();
    section.begin();
    expect(rule(() => section.end(t1))).toBe('run-phase-backing-call');
  });
});

describe.each<FreePolicy>(['reservation', 'backing'])('tables freed during run, policy %s', (policy) => {
  it('are held until flushDone, then go where the policy says; accounting holds throughout', () => {
    const { pt, allocator, backing } = setup(policy);
    const r = allocator.prepare(4);
    r.run(() => {
      pt.mapPages(0, 0, SZ_4K, 1, ['read', 'write'], RUN);
      // Unmapping the whole 2 MiB entry frees the L3 table (io-pgtable's table removal).
      expect(pt.unmapPages(0, SZ_2M, 1).unmapped).toBe(SZ_2M);
      expect(allocator.stats().pendingFlush).toBe(4096);
      // Not reusable before the flush: the reservation has only its spare page.
      expect(r.counters().available).toBe(1);
      allocator.flushDone(); // the driver's flush, still inside the section
      assertAccounting(allocator);
    });
    const s = allocator.stats();
    expect(s.pendingFlush).toBe(0);
    if (policy === 'reservation') {
      expect(r.counters()).toMatchObject({ recycled: 1, available: 2 });
      expect(s.reserved).toBe(2 * 4096);
      // The recycled page was written by the page table; it is handed out zeroed.
      r.run(() => expect(pt.mapPages(0, 0, SZ_4K, 1, ['read'], RUN).mapped).toBe(SZ_4K));
    } else {
      expect(r.counters()).toMatchObject({ recycled: 0, available: 1 });
      expect(s.cached).toBe(4096); // flushed inside the section: returned once it is closed
      allocator.drain!();
      expect(allocator.stats().cached).toBe(0);
    }
    assertAccounting(allocator);
    r.release();
    pt.free();
    allocator.flushDone();
    expect(backing.stats().outstanding).toBe(0);
    expect(assertAccounting(allocator).outstanding).toBe(0);
  });
});

describe('misuse', () => {
  it('double and foreign frees throw and change nothing', () => {
    const { pt, allocator } = setup();
    const r = allocator.prepare(3);
    r.run(() => pt.mapPages(0, 0, SZ_4K, 1, ['read'], RUN));
    const before = allocator.stats();
    expect(rule(() => allocator.free(0x1234_0000, 4096))).toBe('foreign-free');
    expect(allocator.stats()).toEqual(before);
  });

  it('a run-phase allocation of a size other than the reservation pages is refused', () => {
    const { allocator } = setup();
    const r = allocator.prepare(1);
    expect(rule(() => r.run(() => allocator.alloc(8192, RUN)))).toBe('size');
  });

  it('bad options and counts are RangeErrors', () => {
    const backing = createSystemAllocator();
    expect(() => withReservation(backing, { pageSize: 3000 })).toThrow(RangeError);
    expect(() => withReservation(backing, { freePolicy: 'nowhere' as never })).toThrow(RangeError);
    expect(() => withReservation(backing).prepare(-1)).toThrow(RangeError);
  });
});

describe('exhaustion during run (Panthor)', () => {
  it('returns a typed error, undoes the op, and marks the VM unusable', () => {
    const { allocator, vm, backing } = rig(SHAPES[0]!);
    const ok = allocator.prepare(3);
    expect(vm.run(ok, [{ kind: 'map', iova: 0, size: SZ_4K, paddr: 0x10_0000 }]).ok).toBe(true);
    ok.release();
    // 16 KiB across a leaf-table boundary needs 2 more leaf tables; reserve 1.
    const short = allocator.prepare(1);
    const res = vm.run(short, [{ kind: 'map', iova: 2 * SZ_2M - 2 * SZ_4K, size: 4 * SZ_4K, paddr: 0x20_0000 }]);
    expect(res.ok).toBe(false);
    if (res.ok) return;
    expect(res.error).toMatchObject({ code: 'ENOMEM', reason: 'exhausted', rule: 'reservation-exhausted', opIndex: 0 });
    // The two pages mapped before the reserve ran dry were unmapped again.
    expect(vm.pageTable.iovaToPhys(2 * SZ_2M - 2 * SZ_4K)).toBe(0);
    expect(vm.pageTable.iovaToPhys(2 * SZ_2M - SZ_4K)).toBe(0);
    expect(vm.pageTable.iovaToPhys(0)).toBe(0x10_0000); // earlier ops stay
    expect(vm.unusable).toBe(true);
    short.release();
    const later = allocator.prepare(3);
    const refused = vm.run(later, [{ kind: 'map', iova: 0x4000_0000, size: SZ_4K, paddr: 0 }]);
    expect(refused.ok === false && refused.error.reason).toBe('unusable');
    expect(later.consumed).toBe(0);
    later.release();
    vm.destroy();
    expect(backing.stats().outstanding).toBe(0);
  });

  it('markUnusable on the allocator refuses later prepares without backing calls', () => {
    const backing = createSystemAllocator();
    const allocator = withReservation(backing, { markUnusable: true });
    const pt = createPageTable('ARM_64_LPAE_S1', CFG, { allocator });
    const r = allocator.prepare(1);
    r.run(() => pt.mapPages(0, 0, SZ_4K, 1, ['read'], RUN));
    expect(allocator.unusable).toBe(true);
    const calls = backing.allocCalls;
    expect(allocator.prepare(3).state).toBe('failed');
    expect(backing.allocCalls).toBe(calls);
  });

  it('without markUnusable the VM keeps working', () => {
    const { allocator, vm } = rig(SHAPES[0]!, { markUnusable: false });
    const short = allocator.prepare(2);
    expect(vm.run(short, [{ kind: 'map', iova: 0, size: SZ_4K, paddr: 0 }]).ok).toBe(false);
    short.release();
    const ok = allocator.prepare(3);
    expect(vm.run(ok, [{ kind: 'map', iova: 0, size: SZ_4K, paddr: 0 }]).ok).toBe(true);
    ok.release();
    vm.destroy();
  });
});
