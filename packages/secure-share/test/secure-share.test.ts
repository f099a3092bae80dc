import { AllocatorFaultError, AllocatorMisuseError, assertAccounting } from '@io-pgtable/allocator-api';
import { createSystemAllocator, PhysMemory } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import {
  HLOS_VMID,
  ScmPerm,
  createScmMock,
  installGuard,
  vmidMask,
  withSecureShare,
  type PageState,
  type SecureShareAllocator,
} from '../src/index.js';
import { ATOMIC, BLOCKING, PAGE, PREPARE, RUN, VM_A, VM_B, dirtyBacking, setup, thrown } from './helpers.js';

const HLOS = vmidMask(HLOS_VMID);
const SHARED_A = vmidMask(HLOS_VMID, VM_A);

function expectShared(state: PageState, vmid: number): void {
  expect(state.owners).toBe(vmidMask(HLOS_VMID, vmid));
  expect(state.perms.get(HLOS_VMID)).toBe(ScmPerm.RW);
  expect(state.perms.get(vmid)).toBe(ScmPerm.READ);
}

function expectHost(state: PageState): void {
  expect(state.owners).toBe(HLOS);
  expect(state.hlosPerm).toBe(ScmPerm.RWX);
}

function misuse(fn: () => unknown, rule: string): void {
  const caught = thrown(fn);
  expect(caught).toBeInstanceOf(AllocatorMisuseError);
  expect((caught as AllocatorMisuseError).rule).toBe(rule);
}

function allocN(a: SecureShareAllocator, n: number, ctx = BLOCKING): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = a.alloc(PAGE, ctx);
    expect(p).not.toBeNull();
    out.push(p!);
  }
  return out;
}

describe('withSecureShare: assignment', () => {
  it('zeroes and cleans each page while the host still owns it alone, then assigns [HLOS: RW, VMID: R]', () => {
    const memory = new PhysMemory();
    const scm = createScmMock();
    const backing = createSystemAllocator({ memory });
    const seen: Array<[string, number, bigint]> = [];
    // A probe that runs before access control: records the owner set at each zero/clean.
    memory.guard = { check: (kind, paddr) => seen.push([kind, paddr, scm.stateAt(paddr).owners]) };
    const a = withSecureShare(dirtyBacking(backing), { scm, vmid: VM_A, batch: 2 });
    seen.length = 0;
    const p = a.alloc(PAGE, BLOCKING)!;
    expect(memory.isZero(p, PAGE)).toBe(true);
    expectShared(scm.stateAt(p), VM_A);
    expect(scm.log).toHaveLength(1);
    expect(scm.log[0]).toMatchObject({ ok: true, src: HLOS, pageCount: 2 });
    const batchPages = scm.log[0]!.ranges.flatMap((r) => [r.paddr, r.paddr + PAGE]);
    expect(batchPages).toContain(p);
    // Each page of the batch: zeroed, then cleaned, both while owned by HLOS alone.
    const allocatorEvents = seen.filter(([k]) => k === 'zero' || k === 'clean');
    expect(allocatorEvents.map(([k, q, o]) => [k, q, o])).toEqual(
      batchPages.flatMap((q) => [['zero', q, HLOS], ['clean', q, HLOS]]),
    );
  });

  it('covers `batch` pages with one call and serves the rest from the pool without calls', () => {
    const { scm, alloc } = setup({ batch: 8 });
    allocN(alloc, 8);
    expect(scm.calls).toBe(1);
    expect(scm.log[0]!.pageCount).toBe(8);
    allocN(alloc, 1);
    expect(scm.calls).toBe(2);
    expect(alloc.secureStats()).toMatchObject({ assignCalls: 2, pagesAssigned: 16, poolHits: 7 });
    expect(alloc.pooled()).toBe(7);
    assertAccounting(alloc);
  });

  it('merges adjacent pages of a batch into one range descriptor', () => {
    const { scm, alloc } = setup({ batch: 4 });
    alloc.alloc(PAGE, BLOCKING);
    expect(scm.log[0]!.ranges).toEqual([{ paddr: 0x8000_0000, size: 4 * PAGE }]);
  });

  it('never assigns in a context that may not block, nor in the run phase', () => {
    const { scm, alloc } = setup();
    expect(alloc.alloc(PAGE, ATOMIC)).toBeNull();
    expect(alloc.alloc(PAGE, RUN)).toBeNull();
    expect(alloc.alloc(PAGE, { mayBlock: false, phase: 'prepare' })).toBeNull();
    expect(scm.calls).toBe(0);
    expect(alloc.secureStats().refusedNoBlock).toBe(3);
    expect(alloc.stats().outstanding).toBe(0);
    expect(alloc.alloc(PAGE, PREPARE)).not.toBeNull();
    expect(scm.calls).toBe(1);
  });

  it('prefill assigns in calls of at most `batch` pages; the run phase then makes none', () => {
    const { scm, alloc } = setup({ batch: 8 });
    expect(alloc.prefill(20)).toBe(20);
    expect(scm.log.map((r) => r.pageCount)).toEqual([8, 8, 4]);
    const before = scm.calls;
    const got = allocN(alloc, 20, RUN);
    expect(scm.calls).toBe(before);
    expect(new Set(got).size).toBe(20);
    for (const p of got) expectShared(scm.stateAt(p), VM_A);
    // Pool exhausted: the run phase gets ENOMEM, still without a secure call.
    expect(alloc.alloc(PAGE, RUN)).toBeNull();
    expect(scm.calls).toBe(before);
    expect(alloc.prefill(20)).toBe(20);
    expect(alloc.prefill(5)).toBe(20);
  });

  it('topUp reclaims down to and prefills up to poolTarget', () => {
    const { scm, alloc, backing } = setup({ batch: 4, poolTarget: 6 });
    expect(alloc.topUp()).toBe(6);
    expect(scm.log.map((r) => r.pageCount)).toEqual([4, 2]);
    const ps = allocN(alloc, 6);
    for (const p of ps) alloc.free(p, PAGE);
    alloc.flushDone();
    expect(alloc.prefill(10)).toBe(10);
    expect(alloc.topUp()).toBe(6);
    expect(scm.log.at(-1)).toMatchObject({ ok: true, src: SHARED_A, pageCount: 4 });
    expect(backing.stats().outstanding).toBe(6 * PAGE);
  });

  it('gives every table a whole page (a 64-byte PGD included) and larger tables one range', () => {
    const { scm, alloc } = setup({ batch: 4 });
    const small = alloc.alloc(64, BLOCKING)!;
    expect(small % PAGE).toBe(0);
    expect(alloc.stats().live).toBe(PAGE);
    const big = alloc.alloc(16384, BLOCKING)!;
    expect(big % 16384).toBe(0);
    expect(scm.log[1]!.ranges).toEqual([{ paddr: big, size: 16384 }]);
    for (let q = big; q < big + 16384; q += PAGE) expectShared(scm.stateAt(q), VM_A);
    alloc.free(small, 16); // logical size of a 16-byte PGD
    alloc.free(big, 16384);
    assertAccounting(alloc);
  });
});

describe('withSecureShare: free and reclaim', () => {
  it('keeps a freed page pending until flushDone; then zeroes it and reuses it without a call', () => {
    const { scm, alloc, memory } = setup({ batch: 1 });
    const p = alloc.alloc(PAGE, BLOCKING)!;
    memory.write64(p + 64, 0x3n, 'pgtable');
    alloc.free(p, PAGE);
    expect(alloc.stats()).toMatchObject({ pendingFlush: PAGE, live: 0, outstanding: PAGE });
    expectShared(scm.stateAt(p), VM_A);
    const q = alloc.alloc(PAGE, BLOCKING)!;
    expect(q).not.toBe(p);
    alloc.free(q, PAGE);
    const calls = scm.calls;
    alloc.flushDone();
    expect(scm.calls).toBe(calls);
    expect(alloc.stats()).toMatchObject({ pendingFlush: 0, cached: 2 * PAGE });
    expect(memory.isZero(p, PAGE)).toBe(true);
    const reused = allocN(alloc, 2, RUN);
    expect(reused.sort()).toEqual([p, q].sort());
    expect(scm.calls).toBe(calls);
  });

  it('reclaim reassigns idle pages beyond poolTarget to [HLOS: RWX] in batches, then releases them', () => {
    const { scm, alloc, backing } = setup({ batch: 4, poolTarget: 2 });
    const ps = allocN(alloc, 8);
    for (const p of ps) alloc.free(p, PAGE);
    alloc.flushDone();
    const calls = scm.calls;
    expect(alloc.reclaim()).toBe(6);
    expect(scm.log.slice(calls).map((r) => [r.src, r.destinations, r.pageCount])).toEqual([
      [SHARED_A, [{ vmid: HLOS_VMID, perm: ScmPerm.RWX }], 4],
      [SHARED_A, [{ vmid: HLOS_VMID, perm: ScmPerm.RWX }], 2],
    ]);
    expect(alloc.pooled()).toBe(2);
    expect(backing.stats().outstanding).toBe(2 * PAGE);
    const released = ps.filter((p) => backing.blockSize(p) === undefined);
    expect(released).toHaveLength(6);
    for (const p of released) expectHost(scm.stateAt(p));
    assertAccounting(alloc);
  });

  it('never reclaims a page before its flush', () => {
    const { scm, alloc, backing } = setup({ batch: 1, poolTarget: 0 });
    const p = alloc.alloc(PAGE, BLOCKING)!;
    alloc.free(p, PAGE);
    expect(alloc.reclaim()).toBe(0);
    alloc.drain!();
    expect(backing.blockSize(p)).toBe(PAGE);
    expectShared(scm.stateAt(p), VM_A);
    alloc.flushDone();
    alloc.drain!();
    expect(backing.blockSize(p)).toBeUndefined();
    expectHost(scm.stateAt(p));
  });

  it('reclaimOnFlush reproduces the RFC free path: one reassign per freed table at flushDone', () => {
    const { scm, alloc, backing } = setup({ batch: 1, poolTarget: 0, reclaimOnFlush: true });
    const [p, q] = allocN(alloc, 2);
    alloc.free(p!, PAGE);
    alloc.free(q!, PAGE);
    alloc.flushDone();
    expect(scm.log.slice(2).map((r) => [r.ok, r.src, r.pageCount])).toEqual([
      [true, SHARED_A, 1],
      [true, SHARED_A, 1],
    ]);
    expect(backing.stats().outstanding).toBe(0);
    expect(scm.trackedPages).toBe(0);
  });

  it('drain returns every idle page to the host and leaves live, pending and quarantined pages', () => {
    const { scm, alloc, backing } = setup({ batch: 8 });
    const [live, pend] = allocN(alloc, 2);
    alloc.free(pend!, PAGE);
    alloc.drain!();
    expect(backing.stats().outstanding).toBe(2 * PAGE);
    expect(alloc.stats()).toMatchObject({ live: PAGE, pendingFlush: PAGE, cached: 0 });
    expectShared(scm.stateAt(live!), VM_A);
    alloc.free(live!, PAGE);
    alloc.flushDone();
    alloc.drain!();
    expect(backing.stats().outstanding).toBe(0);
    expect(scm.trackedPages).toBe(0);
    expect(assertAccounting(alloc).outstanding).toBe(0);
  });
});

describe('withSecureShare: fault injection', () => {
  it('a failed assign that leaves the state intact returns the batch to the host and yields ENOMEM', () => {
    const { scm, alloc, backing } = setup({ batch: 4 });
    scm.failNext(1);
    expect(alloc.alloc(PAGE, BLOCKING)).toBeNull();
    expect(backing.stats().outstanding).toBe(0);
    expect(scm.trackedPages).toBe(0);
    expect(alloc.secureStats()).toMatchObject({ failedAssigns: 1, quarantinedBlocks: 0 });
    expect(assertAccounting(alloc).outstanding).toBe(0);
    expect(alloc.alloc(PAGE, BLOCKING)).not.toBeNull();
  });

  it('a failed assign that leaves the state unknown quarantines the whole batch for good', () => {
    const { scm, alloc, backing } = setup({ batch: 4 });
    scm.failNext(1, { leaveUnknown: true });
    expect(alloc.alloc(PAGE, BLOCKING)).toBeNull();
    const lost = scm.log[0]!.ranges.flatMap((r) => [0, 1, 2, 3].map((i) => r.paddr + i * PAGE));
    expect(alloc.stats()).toMatchObject({ quarantined: 4 * PAGE, outstanding: 4 * PAGE, cached: 0 });
    const later = allocN(alloc, 12);
    for (const p of lost) expect(later).not.toContain(p);
    for (const p of later) alloc.free(p, PAGE);
    alloc.flushDone();
    alloc.drain!();
    // Quarantined pages are never released: the backing still holds exactly them.
    expect(backing.stats().outstanding).toBe(4 * PAGE);
    for (const p of lost) expect(backing.blockSize(p)).toBe(PAGE);
    expect(assertAccounting(alloc)).toMatchObject({ quarantined: 4 * PAGE, outstanding: 4 * PAGE });
  });

  it.each([false, true])('a failed reassignment on free quarantines the page (state unknown: %s)', (leaveUnknown) => {
    const { scm, alloc, backing } = setup({ batch: 1, poolTarget: 0 });
    const [p, q] = allocN(alloc, 2);
    alloc.free(p!, PAGE);
    alloc.flushDone();
    scm.failNext(1, { leaveUnknown });
    expect(alloc.reclaim()).toBe(0);
    expect(alloc.secureStats()).toMatchObject({ failedUnassigns: 1, quarantinedBlocks: 1 });
    expect(alloc.stats()).toMatchObject({ quarantined: PAGE, cached: 0 });
    expect(backing.blockSize(p!)).toBe(PAGE);
    // Never reused: later allocations (blocking and run) never return it.
    const later = allocN(alloc, 6);
    expect(later).not.toContain(p);
    for (const r of [...later, q!]) alloc.free(r, PAGE);
    misuse(() => alloc.free(p!, PAGE), 'double-free');
    alloc.flushDone();
    alloc.drain!();
    expect(backing.stats().outstanding).toBe(PAGE);
    expect(scm.stateAt(p!).unknown).toBe(leaveUnknown);
    expect(assertAccounting(alloc)).toMatchObject({ outstanding: PAGE, quarantined: PAGE });
  });

  it('a failed batch reassignment quarantines every page of that call only', () => {
    const { scm, alloc, backing } = setup({ batch: 2, poolTarget: 0 });
    const ps = allocN(alloc, 4);
    for (const p of ps) alloc.free(p, PAGE);
    alloc.flushDone();
    scm.failAt(scm.calls + 1);
    expect(alloc.reclaim()).toBe(2);
    expect(alloc.stats()).toMatchObject({ quarantined: 2 * PAGE, outstanding: 2 * PAGE, cached: 0 });
    expect(backing.stats().outstanding).toBe(2 * PAGE);
  });

  it('a backing allocator that runs dry mid-batch assigns what it got', () => {
    const { scm, alloc } = setup({ batch: 4, failWhen: (i) => i >= 2 });
    expect(alloc.alloc(PAGE, BLOCKING)).not.toBeNull();
    expect(scm.log[0]!.pageCount).toBe(2);
    expect(alloc.alloc(PAGE, BLOCKING)).not.toBeNull();
    expect(alloc.alloc(PAGE, BLOCKING)).toBeNull();
    expect(scm.calls).toBe(1);
    assertAccounting(alloc);
  });
});

describe('withSecureShare: misuse', () => {
  it('rejects double, foreign and wrong-size frees and bad sizes, changing nothing', () => {
    const { alloc } = setup({ batch: 2 });
    const p = alloc.alloc(PAGE, BLOCKING)!;
    const q = alloc.alloc(PAGE, BLOCKING)!;
    alloc.free(q, PAGE);
    const before = alloc.stats();
    misuse(() => alloc.free(q, PAGE), 'double-free');
    misuse(() => alloc.free(p + PAGE * 64, PAGE), 'foreign-free');
    misuse(() => alloc.free(p, 8192), 'free-size');
    misuse(() => alloc.alloc(100, BLOCKING), 'size');
    misuse(() => alloc.alloc(32, BLOCKING), 'size');
    misuse(() => alloc.alloc(1 << 21, BLOCKING), 'size');
    expect(alloc.stats()).toEqual(before);
    alloc.flushDone();
    misuse(() => alloc.free(q, PAGE), 'double-free');
  });

  it('rejects bad options', () => {
    const backing = createSystemAllocator();
    const scm = createScmMock();
    expect(() => withSecureShare(backing, { scm, vmid: HLOS_VMID })).toThrow(RangeError);
    expect(() => withSecureShare(backing, { scm, vmid: 64 })).toThrow(RangeError);
    expect(() => withSecureShare(backing, { scm, vmid: VM_A, batch: 0 })).toThrow(RangeError);
    expect(() => withSecureShare(backing, { scm, vmid: VM_A, poolTarget: -1 })).toThrow(RangeError);
    expect(() => withSecureShare(backing, { scm, vmid: VM_A, mode: 'lend' as 'share' })).toThrow(RangeError);
    const a = withSecureShare(backing, { scm, vmid: VM_A });
    expect(() => a.prefill(-1)).toThrow(RangeError);
    expect(() => a.prefill(1, 3000)).toThrow(RangeError);
  });

  it('declares its behaviour in caps', () => {
    const share = setup().alloc;
    expect(share.caps).toMatchObject({ defersFree: true, zeroes: 'on-free', mayFail: true, minSize: 64 });
    expect(setup({ mode: 'donate' }).alloc.caps.zeroes).toBe('backing');
  });
});

describe('withSecureShare: one backing, two VMIDs', () => {
  function two(batch = 4) {
    const memory = new PhysMemory();
    const backing = createSystemAllocator({ memory });
    const scm = createScmMock();
    const a = withSecureShare(backing, { scm, vmid: VM_A, batch, poolTarget: 0 });
    const b = withSecureShare(backing, { scm, vmid: VM_B, batch, poolTarget: 0 });
    return { memory, backing, scm, a, b };
  }

  it('a page pooled for VMID A is never handed to VMID B', () => {
    const { scm, a, b } = two();
    const pa = allocN(a, 1)[0]!;
    a.free(pa, PAGE);
    a.flushDone();
    expect(a.pooled()).toBe(4);
    const fromB = allocN(b, 4);
    for (const p of fromB) expectShared(scm.stateAt(p), VM_B);
    expect(fromB).not.toContain(pa);
    misuse(() => b.free(pa, PAGE), 'foreign-free');
  });

  it('a page moves from A to B only through unassign to the host and a fresh assign', () => {
    const { scm, a, b } = two(1);
    const p = allocN(a, 1)[0]!;
    a.free(p, PAGE);
    a.flushDone();
    a.reclaim();
    const q = allocN(b, 1)[0]!;
    expect(q).toBe(p); // the backing recycles the page
    expect(scm.log.map((r) => [r.src, r.newOwners])).toEqual([
      [HLOS, SHARED_A],
      [SHARED_A, HLOS],
      [HLOS, vmidMask(HLOS_VMID, VM_B)],
    ]);
    expectShared(scm.stateAt(q), VM_B);
  });

  it('refuses to hand out a pooled page whose owner changed behind its back, and quarantines it', () => {
    const { scm, a, backing } = two(2);
    const p = allocN(a, 1)[0]!;
    const pooled = scm.log[0]!.ranges.flatMap((r) => [r.paddr, r.paddr + PAGE]).find((x) => x !== p)!;
    scm.assign({ paddr: pooled, size: PAGE }, SHARED_A, [
      { vmid: HLOS_VMID, perm: ScmPerm.RW },
      { vmid: VM_B, perm: ScmPerm.READ },
    ]);
    const caught = thrown(() => a.alloc(PAGE, RUN));
    expect(caught).toBeInstanceOf(AllocatorFaultError);
    expect((caught as AllocatorFaultError).rule).toBe('vmid-mismatch');
    expect(a.stats()).toMatchObject({ quarantined: PAGE, live: PAGE, cached: 0 });
    a.free(p, PAGE);
    a.flushDone();
    a.drain!();
    expect(backing.blockSize(pooled)).toBe(PAGE);
    assertAccounting(a);
  });
});

describe('withSecureShare: donate mode', () => {
  it('assigns [VMID: RW] without HLOS, after zeroing, and reclaims without touching the page', () => {
    const { scm, alloc, backing, memory } = setup({ mode: 'donate', batch: 2, poolTarget: 0 });
    const p = alloc.alloc(PAGE, BLOCKING)!;
    const s = scm.stateAt(p);
    expect(s.owners).toBe(vmidMask(VM_A));
    expect(s.hlosPerm).toBe(0);
    expect(() => memory.write64(p, 1n, 'pgtable')).toThrow(AllocatorMisuseError);
    expect(alloc.accessControl!.violations).toHaveLength(1);
    alloc.free(p, PAGE);
    alloc.flushDone(); // no zeroing here: the host may not touch the page
    expect(alloc.accessControl!.violations).toHaveLength(1);
    expect(alloc.stats().cached).toBe(2 * PAGE);
    // A donated page is not recycled: the run phase cannot use it.
    expect(alloc.alloc(PAGE, RUN)).not.toBe(p);
    expect(alloc.reclaim()).toBe(1);
    expect(scm.log.at(-1)).toMatchObject({ ok: true, src: vmidMask(VM_A), newOwners: HLOS });
    expect(backing.blockSize(p)).toBeUndefined();
  });
});

describe('access control wiring', () => {
  it('two contexts over one memory and monitor share one guard', () => {
    const memory = new PhysMemory();
    const backing = createSystemAllocator({ memory });
    const scm = createScmMock();
    const a = withSecureShare(backing, { scm, vmid: VM_A });
    const b = withSecureShare(backing, { scm, vmid: VM_B });
    expect(a.accessControl).not.toBeNull();
    expect(a.accessControl).toBe(b.accessControl);
    expect(withSecureShare(backing, { scm, vmid: VM_A, accessControl: false }).accessControl).toBeNull();
  });

  it('composes with a guard the caller installed first, which sees only the accesses access control let through', () => {
    const memory = new PhysMemory();
    let probed = 0;
    memory.guard = { check: () => void probed++ };
    const scm = createScmMock();
    const a = withSecureShare(createSystemAllocator({ memory }), { scm, vmid: VM_A, mode: 'donate' });
    const p = a.alloc(PAGE, BLOCKING)!;
    const n = probed;
    expect(() => memory.zero(p, PAGE)).toThrow(AllocatorMisuseError);
    expect(probed).toBe(n);
    memory.zero(p + 0x10_0000, PAGE); // a host page
    expect(probed).toBe(n + 1);
    let second = 0;
    installGuard(memory, { check: () => void second++ });
    expect(() => memory.clean(p, PAGE)).toThrow(AllocatorMisuseError);
    memory.clean(p + 0x10_0000, PAGE);
    expect([probed, second]).toEqual([n + 2, 1]);
  });
});
