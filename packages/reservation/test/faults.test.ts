/**
 * Issue 14, the reservation's part: a throwing backing allocator never makes a prepare,
 * a release or a flush lose or double-count a page, and a table still assigned away from
 * the host is never taken back for reuse.
 */
import { AllocatorFaultError, AllocatorMisuseError, PGD_CTX, assertAccounting } from '@io-pgtable/allocator-api';
import { throwingBacking, thrown } from '@io-pgtable/conformance';
import { PhysMemory, createSystemAllocator } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import { CountError, createAdmission, tablesNeeded, withReservation, type FreePolicy } from '../src/index.js';
import { PANTHOR_BITMAP, geometry } from './helpers.js';

const G48 = geometry('ARM_64_LPAE_S1', PANTHOR_BITMAP, 48, 48);

const PAGE = 4096;
const RUN = { mayBlock: false, phase: 'run' as const, kind: 'table' as const, level: 3 };
const FLUSHED = { kind: 'table' as const, level: 3, flush: { id: 1, done: true } };



describe('reservation: throwing backing calls', () => {
  it('a prepare whose 3rd backing allocation throws fails (false, state failed) and gives back the two pages it took', () => {
    const system = createSystemAllocator();
    const f = throwingBacking(system);
    f.allocThrowAt = 2;
    const a = withReservation(f.allocator);
    const r = a.createReservation();
    expect(r.prepare(4)).toBe(false);
    expect(r.state).toBe('failed');
    expect(system.stats().outstanding).toBe(0);
    expect(a.stats().outstanding).toBe(0);
    expect(r.release()).toBe(0);
  });

  it('a release whose backing free throws keeps that page (cached), reports it, returns the rest once; drain returns it', () => {
    const system = createSystemAllocator();
    const f = throwingBacking(system);
    const a = withReservation(f.allocator);
    const r = a.prepare(3);
    expect(r.state).toBe('ready');
    f.freeThrows = 1;
    const e = thrown(() => r.release());
    expect(e).toBeInstanceOf(AllocatorFaultError);
    expect((e as Error).message).toMatch(/^\[iopgt\] \[reservation\] no-throw: backing free of 0x[0-9a-f]+ threw: injected: free failed$/);
    expect(r.state).toBe('released');
    expect(a.stats()).toMatchObject({ outstanding: PAGE, cached: PAGE, reserved: 0 });
    expect(system.stats().outstanding).toBe(PAGE);
    assertAccounting(a);
    // Release is exactly once: a second one gives nothing back again.
    expect(r.release()).toBe(0);
    a.drain!();
    expect(a.stats().outstanding).toBe(0);
    expect(system.stats().outstanding).toBe(0);
  });

  it('a flushed table whose backing free throws stays accounted (cached) and goes down at the next flushDone', () => {
    const system = createSystemAllocator();
    const f = throwingBacking(system);
    const a = withReservation(f.allocator);
    const r = a.prepare(2);
    const [p, q] = r.run(() => [a.alloc(PAGE, RUN)!, a.alloc(PAGE, RUN)!]);
    r.release();
    a.free(p!, PAGE);
    a.free(q!, PAGE);
    f.freeThrows = 1;
    expect(thrown(() => a.flushDone())).toBeInstanceOf(AllocatorFaultError);
    expect(a.stats()).toMatchObject({ outstanding: PAGE, cached: PAGE, pendingFlush: 0, live: 0 });
    assertAccounting(a);
    a.flushDone();
    expect(a.stats().outstanding).toBe(0);
    expect(system.stats().outstanding).toBe(0);
  });

  it('a root whose backing alloc throws: AllocatorFaultError, nothing held', () => {
    const f = throwingBacking(createSystemAllocator());
    f.allocThrowAt = 0;
    const a = withReservation(f.allocator);
    expect(thrown(() => a.alloc(PAGE, PGD_CTX))).toBeInstanceOf(AllocatorFaultError);
    expect(a.stats().outstanding).toBe(0);
  });
});

describe('reservation: the release access check', () => {
  it.each(['reservation', 'backing'] as FreePolicy[])('free policy %s: a table still assigned away is refused while live, nothing changes', (freePolicy) => {
    const memory = new PhysMemory();
    const away = new Set<number>();
    memory.addGuard({
      check(kind, paddr) {
        if (kind === 'release' && away.has(paddr)) throw new AllocatorMisuseError('access-control', 'access-violation', 'release refused', paddr);
      },
    });
    const a = withReservation(createSystemAllocator({ memory }), { freePolicy });
    const r = a.prepare(2);
    const p = r.run(() => a.alloc(PAGE, RUN)!);
    const root = a.alloc(PAGE, PGD_CTX)!;
    away.add(p);
    away.add(root);
    const before = JSON.stringify([a.stats(), r.counters()]);
    for (const [q, ctx] of [[p, undefined], [p, FLUSHED], [root, FLUSHED], [root, { ...FLUSHED, flush: { id: 2, done: false } }]] as const) {
      const e = thrown(() => a.free(q, PAGE, ctx));
      expect(e).toBeInstanceOf(AllocatorMisuseError);
      expect((e as AllocatorMisuseError).rule).toBe('access-violation');
    }
    a.flushDone();
    expect(JSON.stringify([a.stats(), r.counters()])).toBe(before);
    away.clear();
    a.free(p, PAGE);
    a.free(root, PAGE, FLUSHED);
    r.release();
    a.flushDone();
    expect(a.stats().outstanding).toBe(0);
  });
});

describe('reservation: a synchronous free whose backing free throws changes nothing', () => {
  it('a flushed free outside a run whose backing free throws leaves the table live; the same free then succeeds', () => {
    const f = throwingBacking(createSystemAllocator());
    const a = withReservation(f.allocator);
    const r = a.prepare(1);
    const p = r.run(() => a.alloc(PAGE, RUN)!);
    r.release();
    const before = JSON.stringify(a.stats());
    f.freeThrows = 1;
    expect(thrown(() => a.free(p, PAGE, FLUSHED))).toBeInstanceOf(AllocatorFaultError);
    expect(JSON.stringify(a.stats())).toBe(before);
    a.free(p, PAGE, FLUSHED);
    expect(a.stats().outstanding).toBe(0);
  });
});

describe('reservation: error messages cap echoed values', () => {
  const huge = 'x'.repeat(1 << 20);
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  it.each([
    ['a 1 MiB string as iova', () => tablesNeeded(G48, [{ kind: 'map', iova: huge as never, size: PAGE }])],
    ['a 1 MiB string as size', () => tablesNeeded(G48, [{ kind: 'map', iova: 0, size: huge as never }])],
    ['a 1 MiB string as pgsize', () => tablesNeeded(G48, [{ kind: 'map', iova: 0, size: PAGE, pgsize: huge as never }])],
    ['a 1 MiB string as split policy', () => tablesNeeded(G48, [], { split: huge as never })],
    ['a cyclic object as merge strategy', () => tablesNeeded(G48, [], { merge: cyclic as never })],
  ])('%s: CountError, message under 300 characters', (_what, fn) => {
    const e = thrown(fn);
    expect(e).toBeInstanceOf(CountError);
    expect((e as Error).message.length).toBeLessThan(300);
  });
  it.each([
    ['limit', () => createAdmission({ limit: huge as never })],
    ['count', () => createAdmission({ limit: 4 }).tryAcquire(huge as never)],
  ])('admission %s given a 1 MiB string: RangeError, message under 300 characters', (_what, fn) => {
    const e = thrown(fn);
    expect(e).toBeInstanceOf(RangeError);
    expect((e as Error).message.length).toBeLessThan(300);
  });
});
