import { describe, expect, it } from 'vitest';
import {
  HLOS_VMID,
  ScmError,
  ScmPerm,
  createScmMock,
  maskVmids,
  vmidMask,
  type PhysRange,
  type ScmDestination,
  type ScmMock,
} from '../src/index.js';
import { PAGE, VM_A, VM_B, thrown } from './helpers.js';

const HLOS = vmidMask(HLOS_VMID);
const SHARE: ScmDestination[] = [
  { vmid: HLOS_VMID, perm: ScmPerm.RW },
  { vmid: VM_A, perm: ScmPerm.READ },
];
const BASE = 0x8000_0000;

/** Everything a refused call must leave untouched. */
function snapshot(scm: ScmMock, from: number, pages: number) {
  const states = [];
  for (let i = 0; i < pages; i++) states.push(scm.stateAt(from + i * PAGE));
  return { states, tracked: scm.trackedPages, moved: scm.pagesMoved };
}

function expectScmError(fn: () => unknown, reason: string, stateUnknown = false): ScmError {
  const caught = thrown(fn);
  expect(caught).toBeInstanceOf(ScmError);
  const err = caught as ScmError;
  expect(err.reason).toBe(reason);
  expect(err.code).toBe('EINVAL');
  expect(err.stateUnknown).toBe(stateUnknown);
  return err;
}

describe('createScmMock', () => {
  it('starts with every page owned by HLOS alone with RWX', () => {
    const scm = createScmMock();
    for (const p of [0, BASE, 2 ** 51]) {
      const s = scm.stateAt(p);
      expect(s.owners).toBe(HLOS);
      expect([...s.perms]).toEqual([[HLOS_VMID, ScmPerm.RWX]]);
      expect(s.hlosPerm).toBe(7);
      expect(s.unknown).toBe(false);
    }
    expect(scm.trackedPages).toBe(0);
  });

  it('assign from the current owners updates every page of the range and returns the new mask', () => {
    const scm = createScmMock();
    const mask = scm.assign({ paddr: BASE + PAGE, size: 2 * PAGE }, HLOS, SHARE);
    expect(mask).toBe(vmidMask(HLOS_VMID, VM_A));
    expect(maskVmids(mask)).toEqual([HLOS_VMID, VM_A]);
    for (const p of [BASE + PAGE, BASE + 2 * PAGE + 100]) {
      const s = scm.stateAt(p);
      expect(s.owners).toBe(mask);
      expect(s.perms.get(HLOS_VMID)).toBe(ScmPerm.RW);
      expect(s.perms.get(VM_A)).toBe(ScmPerm.READ);
      expect(s.hlosPerm).toBe(ScmPerm.RW);
    }
    expect(scm.stateAt(BASE).owners).toBe(HLOS);
    expect(scm.stateAt(BASE + 3 * PAGE).owners).toBe(HLOS);
    expect(scm.pagesMoved).toBe(2);
    // The returned mask is the source of the next call, and reclaim restores the default.
    expect(scm.assign({ paddr: BASE + PAGE, size: 2 * PAGE }, mask, [{ vmid: HLOS_VMID, perm: ScmPerm.RWX }])).toBe(HLOS);
    expect(scm.trackedPages).toBe(0);
  });

  it('interns states: pages in the same state share one object', () => {
    const scm = createScmMock();
    scm.assign([{ paddr: BASE, size: PAGE }, { paddr: BASE + 8 * PAGE, size: PAGE }], HLOS, SHARE);
    expect(scm.stateAt(BASE)).toBe(scm.stateAt(BASE + 8 * PAGE));
    expect(scm.stateAt(BASE)).toBe(scm.stateFor([...SHARE].reverse()));
  });

  it('refuses a source mask that is not the current owner set, changing nothing', () => {
    const scm = createScmMock();
    const shared = scm.assign({ paddr: BASE, size: PAGE }, HLOS, SHARE);
    const before = snapshot(scm, BASE, 2);
    // Stale source (the caller forgot to use the returned mask).
    expectScmError(() => scm.assign({ paddr: BASE, size: PAGE }, HLOS, [{ vmid: VM_B, perm: ScmPerm.READ }]), 'src-mismatch');
    // Superset and subset of the owners are mismatches too.
    expectScmError(() => scm.assign({ paddr: BASE, size: PAGE }, shared | vmidMask(VM_B), SHARE), 'src-mismatch');
    // A subset without HLOS is refused before ownership is even looked at: the host is not in it.
    expectScmError(() => scm.assign({ paddr: BASE, size: PAGE }, vmidMask(VM_A), SHARE), 'not-owner');
    expect(snapshot(scm, BASE, 2)).toEqual(before);
  });

  it('refuses a range whose pages have different owners, even for the pages that match', () => {
    const scm = createScmMock();
    scm.assign({ paddr: BASE + PAGE, size: PAGE }, HLOS, SHARE);
    const before = snapshot(scm, BASE, 3);
    expectScmError(() => scm.assign({ paddr: BASE, size: 3 * PAGE }, HLOS, SHARE), 'src-mismatch');
    expectScmError(
      () => scm.assign([{ paddr: BASE, size: PAGE }, { paddr: BASE + PAGE, size: PAGE }], HLOS, SHARE),
      'src-mismatch',
    );
    expect(snapshot(scm, BASE, 3)).toEqual(before);
  });

  const bad: Array<[string, string, PhysRange | PhysRange[], unknown, unknown]> = [
    ['unaligned address', 'bad-range', { paddr: BASE + 64, size: PAGE }, HLOS, SHARE],
    ['unaligned size', 'bad-range', { paddr: BASE, size: PAGE + 8 }, HLOS, SHARE],
    ['empty size', 'bad-range', { paddr: BASE, size: 0 }, HLOS, SHARE],
    ['negative address', 'bad-range', { paddr: -PAGE, size: PAGE }, HLOS, SHARE],
    ['fractional address', 'bad-range', { paddr: 0.5, size: PAGE }, HLOS, SHARE],
    ['no range at all', 'bad-range', [], HLOS, SHARE],
    ['overlapping ranges', 'bad-range', [{ paddr: BASE, size: 2 * PAGE }, { paddr: BASE + PAGE, size: PAGE }], HLOS, SHARE],
    ['empty destinations', 'empty-destinations', { paddr: BASE, size: PAGE }, HLOS, []],
    ['destinations not a list', 'empty-destinations', { paddr: BASE, size: PAGE }, HLOS, null],
    ['VMID above 63', 'bad-vmid', { paddr: BASE, size: PAGE }, HLOS, [{ vmid: 64, perm: 4 }]],
    ['negative VMID', 'bad-vmid', { paddr: BASE, size: PAGE }, HLOS, [{ vmid: -1, perm: 4 }]],
    ['duplicate VMID', 'bad-vmid', { paddr: BASE, size: PAGE }, HLOS, [{ vmid: VM_A, perm: 4 }, { vmid: VM_A, perm: 6 }]],
    ['permission 0', 'bad-perm', { paddr: BASE, size: PAGE }, HLOS, [{ vmid: VM_A, perm: 0 }]],
    ['permission 8', 'bad-perm', { paddr: BASE, size: PAGE }, HLOS, [{ vmid: VM_A, perm: 8 }]],
    ['fractional permission', 'bad-perm', { paddr: BASE, size: PAGE }, HLOS, [{ vmid: VM_A, perm: 4.5 }]],
    ['empty source mask', 'bad-src', { paddr: BASE, size: PAGE }, 0n, SHARE],
    ['source mask wider than 64 bits', 'bad-src', { paddr: BASE, size: PAGE }, 1n << 64n, SHARE],
    ['source mask as a number', 'bad-src', { paddr: BASE, size: PAGE }, 8, SHARE],
  ];
  it.each(bad)('refuses %s (%s) with no state change', (_what, reason, range, src, dest) => {
    const scm = createScmMock();
    scm.assign({ paddr: BASE + 4 * PAGE, size: PAGE }, HLOS, SHARE);
    const before = snapshot(scm, BASE, 8);
    const err = expectScmError(() => scm.assign(range, src as bigint, dest as ScmDestination[]), reason);
    expect(err.callIndex).toBe(1);
    expect(snapshot(scm, BASE, 8)).toEqual(before);
    expect(scm.log[1]).toMatchObject({ index: 1, ok: false, reason, pageCount: 0 });
    expect(scm.calls).toBe(2);
    expect(scm.failedCalls).toBe(1);
  });

  it('logs every call and charges the cost model per call and per page', () => {
    const scm = createScmMock({ callNs: 1000, pageNs: 10 });
    scm.assign([{ paddr: BASE, size: 4 * PAGE }, { paddr: BASE + 16 * PAGE, size: PAGE }], HLOS, SHARE);
    expect(() => scm.assign({ paddr: BASE, size: PAGE }, HLOS, SHARE)).toThrow(ScmError);
    expect(() => scm.assign({ paddr: 1, size: PAGE }, HLOS, SHARE)).toThrow(ScmError);
    expect(scm.calls).toBe(3);
    expect(scm.log.map((r) => [r.index, r.ok, r.reason, r.pageCount, r.costNs])).toEqual([
      [0, true, undefined, 5, 1050],
      [1, false, 'src-mismatch', 0, 1000],
      [2, false, 'bad-range', 0, 1000],
    ]);
    expect(scm.log[0]!.newOwners).toBe(vmidMask(HLOS_VMID, VM_A));
    expect(scm.log[0]!.src).toBe(HLOS);
    expect(scm.modelledNs).toBe(3050);
  });

  it('uses 50 us per call and 1 us per page by default', () => {
    const scm = createScmMock();
    scm.assign({ paddr: BASE, size: 10 * PAGE }, HLOS, SHARE);
    expect(scm.modelledNs).toBe(50_000 + 10 * 1_000);
  });

  it('the log keeps its own copy of the arguments', () => {
    const scm = createScmMock();
    const range = { paddr: BASE, size: PAGE };
    const dest = [{ vmid: VM_A, perm: ScmPerm.RW }];
    scm.assign(range, HLOS, dest);
    range.paddr = 0;
    dest[0]!.vmid = VM_B;
    expect(scm.log[0]!.ranges).toEqual([{ paddr: BASE, size: PAGE }]);
    expect(scm.log[0]!.destinations).toEqual([{ vmid: VM_A, perm: ScmPerm.RW }]);
  });

  it('failAt fails exactly the k-th call and leaves its pages unchanged', () => {
    const scm = createScmMock();
    scm.failAt(1);
    scm.assign({ paddr: BASE, size: PAGE }, HLOS, SHARE);
    const before = snapshot(scm, BASE, 4);
    expectScmError(() => scm.assign({ paddr: BASE + PAGE, size: PAGE }, HLOS, SHARE), 'injected');
    expect(snapshot(scm, BASE, 4)).toEqual(before);
    // The same call succeeds when retried: the fault was for call 1 only.
    scm.assign({ paddr: BASE + PAGE, size: PAGE }, HLOS, SHARE);
    expect(scm.stateAt(BASE + PAGE).owners).toBe(vmidMask(HLOS_VMID, VM_A));
    expect(scm.log.map((r) => r.ok)).toEqual([true, false, true]);
    expect(() => scm.failAt(0)).toThrow(RangeError);
  });

  it('a failure that leaves the state unknown poisons the pages for good', () => {
    const scm = createScmMock();
    const mask = scm.assign({ paddr: BASE, size: 2 * PAGE }, HLOS, SHARE);
    scm.failNext(1, { leaveUnknown: true });
    expectScmError(() => scm.assign({ paddr: BASE, size: 2 * PAGE }, mask, [{ vmid: HLOS_VMID, perm: 7 }]), 'injected', true);
    expect(scm.log[1]).toMatchObject({ ok: false, reason: 'injected', stateUnknown: true });
    for (const p of [BASE, BASE + PAGE]) {
      expect(scm.stateAt(p)).toMatchObject({ unknown: true, hlosPerm: 0, owners: 0n });
    }
    expect(scm.stateAt(BASE + 2 * PAGE).owners).toBe(HLOS);
    // No source matches an unknown owner set.
    for (const src of [mask, HLOS, vmidMask(HLOS_VMID, VM_B)]) {
      expectScmError(() => scm.assign({ paddr: BASE, size: PAGE }, src, [{ vmid: HLOS_VMID, perm: 7 }]), 'src-mismatch');
    }
  });

  it('failNext counts calls, and failWhen sees the call index and page count', () => {
    const seen: Array<[number, number]> = [];
    const scm = createScmMock({
      failWhen: (i, pages) => {
        seen.push([i, pages]);
        return i === 3;
      },
    });
    scm.failNext(2);
    expectScmError(() => scm.assign({ paddr: BASE, size: PAGE }, HLOS, SHARE), 'injected');
    expectScmError(() => scm.assign({ paddr: BASE, size: PAGE }, HLOS, SHARE), 'injected');
    scm.assign({ paddr: BASE, size: 3 * PAGE }, HLOS, SHARE);
    expectScmError(() => scm.assign({ paddr: BASE + 3 * PAGE, size: PAGE }, HLOS, SHARE), 'injected');
    // Calls 0 and 1 were failed by failNext before failWhen was asked.
    expect(seen).toEqual([
      [2, 3],
      [3, 1],
    ]);
    expect(scm.failedCalls).toBe(3);
  });

  it('rejects bad options', () => {
    expect(() => createScmMock({ maxCallPages: 0 })).toThrow(RangeError);
    expect(() => createScmMock({ pageSize: 3000 })).toThrow(RangeError);
    expect(() => createScmMock({ hlos: 64 })).toThrow(RangeError);
    expect(() => createScmMock({ callNs: -1 })).toThrow(RangeError);
  });
});

describe('assignment authority: only an owner can give a page away', () => {
  const DONATE: ScmDestination[] = [{ vmid: VM_A, perm: ScmPerm.RW }];
  const HOST: ScmDestination[] = [{ vmid: HLOS_VMID, perm: ScmPerm.RWX }];

  it('the host cannot take back, re-give or re-share a page donated to a VM alone', () => {
    const scm = createScmMock();
    expect(scm.assign({ paddr: BASE, size: PAGE }, HLOS, DONATE)).toBe(vmidMask(VM_A));
    const before = snapshot(scm, BASE, 2);
    // src equals the current owners, as the monitor requires, but the caller (HLOS) is not one of them.
    for (const dest of [HOST, DONATE, SHARE, [{ vmid: VM_B, perm: ScmPerm.RW }]]) {
      const err = expectScmError(() => scm.assign({ paddr: BASE, size: PAGE }, vmidMask(VM_A), dest), 'not-owner');
      expect(err.message).toContain('by VMID 3');
    }
    // Naming HLOS among the owners does not help: that is not the page's owner set.
    expectScmError(() => scm.assign({ paddr: BASE, size: PAGE }, vmidMask(HLOS_VMID, VM_A), HOST), 'src-mismatch');
    expect(snapshot(scm, BASE, 2)).toEqual(before);
    expect(scm.stateAt(BASE).hlosPerm).toBe(0);
    expect(scm.log.slice(1).every((r) => !r.ok && r.caller === HLOS_VMID)).toBe(true);
  });

  it('the host can still reclaim a page it shares (HLOS is an owner)', () => {
    const scm = createScmMock();
    const shared = scm.assign({ paddr: BASE, size: PAGE }, HLOS, SHARE);
    expect(scm.assign({ paddr: BASE, size: PAGE }, shared, HOST)).toBe(HLOS);
    expect(scm.log.map((r) => r.caller)).toEqual([HLOS_VMID, HLOS_VMID]);
  });

  it('no public property of the mock is a way to call it as another VM', () => {
    const scm = createScmMock();
    scm.assign({ paddr: BASE, size: PAGE }, HLOS, DONATE);
    const names = new Set<string>();
    for (let o: object | null = scm; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o)) {
      for (const k of Reflect.ownKeys(o)) names.add(String(k));
    }
    expect([...names].sort()).toEqual(['assign', 'calls', 'failAt', 'failNext', 'failedCalls', 'firstDenied', 'hlos', 'log', 'modelledNs', 'pageSize', 'pagesMoved', 'stateAt', 'stateFor', 'trackedPages']);
    // Every function on it either reads state or is the host's assign.
    for (const k of ['assign'] as const) {
      expectScmError(() => scm[k]({ paddr: BASE, size: PAGE }, vmidMask(VM_A), [{ vmid: HLOS_VMID, perm: 7 }]), 'not-owner');
    }
  });

  it('huge ranges and fault counts cost nothing in proportion to their size', () => {
    const scm = createScmMock();
    scm.assign({ paddr: BASE, size: PAGE }, HLOS, DONATE);
    const t0 = Date.now();
    expectScmError(() => scm.assign({ paddr: 0, size: 2 ** 50 }, HLOS, SHARE), 'bad-range');
    expect(scm.firstDenied(0, 2 ** 52, ScmPerm.WRITE)).toBe(BASE);
    expect(scm.firstDenied(BASE + PAGE, 2 ** 50, ScmPerm.WRITE)).toBe(-1);
    scm.failNext(2 ** 52);
    expectScmError(() => scm.assign({ paddr: BASE + PAGE, size: PAGE }, HLOS, SHARE), 'injected');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(() => scm.failNext(-1)).toThrow(RangeError);
    // A refused huge bigint source is shown capped.
    const err = expectScmError(() => scm.assign({ paddr: BASE, size: PAGE }, 1n << 100_000n, SHARE), 'bad-src');
    expect(err.message.length).toBeLessThan(300);
  });
});
