/**
 * Assignment authority (issue 14): the monitor knows who calls it. The host, which is all
 * a holder of a public object can be, cannot take back, re-give or free a page donated to
 * a VM; only the secure-share context that donated it can have the VM give it back.
 */
import { AllocatorFaultError, AllocatorMisuseError, assertAccounting, drainAll, stackLayers, type TableAllocator } from '@io-pgtable/allocator-api';
import { withBatching } from '@io-pgtable/batched';
import { PhysMemory, createSystemAllocator } from '@io-pgtable/core';
import { withPagePool } from '@io-pgtable/page-pool';
import { describe, expect, it } from 'vitest';
import { AccessViolationError, HLOS_VMID, ScmError, ScmPerm, createScmMock, vmidMask, withSecureShare, type ScmMock } from '../src/index.js';
import { BLOCKING, PAGE, STACKS, VM_A, VM_B, setup, thrown } from './helpers.js';

function scmError(fn: () => unknown, reason: string): ScmError {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(ScmError);
  expect((e as ScmError).reason).toBe(reason);
  return e as ScmError;
}


describe('the host cannot undo a donation through the monitor', () => {
  it('alloc.scm.assign of a donated page back to HLOS, to the VM itself or to another VM is refused (not-owner); the page stays unwritable and unreleasable', () => {
    const { memory, backing, alloc } = setup({ mode: 'donate', batch: 2, poolTarget: 0 });
    const p = alloc.alloc(PAGE, BLOCKING)!;
    const scm: ScmMock = alloc.scm;
    const owners = scm.stateAt(p).owners;
    expect(owners).toBe(vmidMask(VM_A));
    for (const dest of [[{ vmid: HLOS_VMID, perm: ScmPerm.RWX }], [{ vmid: VM_A, perm: ScmPerm.RWX }], [{ vmid: VM_B, perm: ScmPerm.RW }], [{ vmid: HLOS_VMID, perm: ScmPerm.RW }, { vmid: VM_A, perm: ScmPerm.READ }]]) {
      scmError(() => scm.assign({ paddr: p, size: PAGE }, owners, dest), 'not-owner');
    }
    expect(scm.stateAt(p).owners).toBe(owners);
    expect(thrown(() => memory.write64(p, 1n, 'pgtable'))).toBeInstanceOf(AccessViolationError);
    expect(thrown(() => backing.free(p, PAGE))).toBeInstanceOf(AccessViolationError);
    expect(memory.isZero(p, PAGE)).toBe(true);
  });

  it('the donating context has the VM itself give its pages back: the reclaim call is logged as the VM\'s, and everything returns', () => {
    const { scm, alloc, backing } = setup({ mode: 'donate', batch: 2, poolTarget: 0 });
    const p = alloc.alloc(PAGE, BLOCKING)!;
    const assignedBy = scm.log.map((r) => r.caller);
    expect(assignedBy).toEqual([HLOS_VMID]);
    alloc.free(p, PAGE);
    alloc.flushDone();
    expect(alloc.reclaim()).toBe(2);
    expect(scm.log.slice(1).map((r) => [r.caller, r.ok])).toEqual([[VM_A, true]]);
    expect(scm.trackedPages).toBe(0);
    expect(backing.stats().outstanding).toBe(0);
  });

  it('share mode keeps reclaiming as the host (HLOS is an owner of a shared page)', () => {
    const { scm, alloc } = setup({ batch: 2, poolTarget: 0 });
    const p = alloc.alloc(PAGE, BLOCKING)!;
    alloc.free(p, PAGE);
    alloc.flushDone();
    alloc.reclaim();
    expect(scm.log.map((r) => [r.caller, r.ok])).toEqual([[HLOS_VMID, true], [HLOS_VMID, true]]);
  });

  it('donate mode refuses a monitor lookalike (no VM side: it could never give pages back)', () => {
    const real = createScmMock();
    const lookalike: ScmMock = { ...real, assign: (r, s, d) => real.assign(r, s, d) } as ScmMock;
    expect(() => withSecureShare(createSystemAllocator(), { scm: lookalike, vmid: VM_A, mode: 'donate' })).toThrow(TypeError);
    expect(() => withSecureShare(createSystemAllocator(), { scm: lookalike, vmid: VM_A })).not.toThrow();
  });

  it('no object reachable from a secure-share allocator offers a way to detach access control or call as the VM', () => {
    const { memory, alloc } = setup({ mode: 'donate' });
    const seen = new Set<unknown>();
    const keys: string[] = [];
    const walk = (o: unknown, depth: number): void => {
      if ((typeof o !== 'object' && typeof o !== 'function') || o === null || seen.has(o) || o === memory || depth > 4) return;
      seen.add(o);
      for (const k of Reflect.ownKeys(o as object)) {
        keys.push(String(k));
        const d = Object.getOwnPropertyDescriptor(o, k)!;
        walk(d.get ? d.get.call(o) : d.value, depth + 1);
      }
    };
    walk(alloc, 0);
    for (const bad of ['detach', 'remove', 'check', 'guard', 'assignAsVm', 'asVm', 'control']) {
      expect(keys, bad).not.toContain(bad);
    }
  });
});

describe.each(STACKS)('secure-share over %s: every layer refuses to take a donated page back', (_name, build) => {
  it('free of a live donated table through each layer below is refused, typed, and changes nothing', () => {
    const memory = new PhysMemory();
    const scm = createScmMock();
    const below = build(memory);
    const alloc = withSecureShare(below, { scm, vmid: VM_A, mode: 'donate', batch: 2, poolTarget: 0 });
    const p = alloc.alloc(PAGE, BLOCKING)!;
    const layers = stackLayers(alloc);
    expect(layers.length).toBeGreaterThan(1);
    const snapshot = () => JSON.stringify(layers.map((l) => l.stats()));
    const before = snapshot();
    for (const layer of layers.slice(1)) {
      const e = thrown(() => layer.free(p, PAGE, { kind: 'table', level: 3, flush: { id: 1, done: true } }));
      expect(e, layer.caps.name).toBeInstanceOf(AllocatorMisuseError);
      const e2 = thrown(() => layer.free(p, PAGE));
      expect(e2, layer.caps.name).toBeInstanceOf(AllocatorMisuseError);
    }
    alloc.flushDone();
    expect(snapshot()).toBe(before);
    expect(memory.isZero(p, PAGE)).toBe(true);
    expect(scm.stateAt(p).owners).toBe(vmidMask(VM_A));
    alloc.free(p, PAGE);
    drainAll(alloc);
    expect(scm.trackedPages).toBe(0);
    expect(layers.at(-1)!.stats().outstanding).toBe(0);
  });
});

describe('secure-share: a throwing inner allocator', () => {
  it('an inner alloc that throws part-way through a batch: AllocatorFaultError, the pages taken go back, nothing assigned', () => {
    const memory = new PhysMemory();
    const system = createSystemAllocator({ memory });
    let n = 0;
    const flaky: TableAllocator = { ...system, alloc: (size, ctx) => (n++ === 2 ? (() => { throw new Error('injected'); })() : system.alloc(size, ctx)) };
    const scm = createScmMock();
    const alloc = withSecureShare(flaky, { scm, vmid: VM_A, mode: 'donate', batch: 4 });
    const e = thrown(() => alloc.alloc(PAGE, BLOCKING));
    expect(e).toBeInstanceOf(AllocatorFaultError);
    expect((e as AllocatorFaultError).rule).toBe('no-throw');
    expect(alloc.stats().outstanding).toBe(0);
    expect(system.stats().outstanding).toBe(0);
    expect(scm.calls).toBe(0);
    assertAccounting(alloc);
  });
});

describe('layers above secure-share hand its pages back into the stack, not to the host', () => {
  it('a page pool over share-mode secure-share recycles and returns shared pages (assignsPages is inherited upward only)', () => {
    const { scm, alloc, backing } = setup({ batch: 2, poolTarget: 0 });
    const pool = withPagePool(alloc, { highWatermark: 1 });
    expect(alloc.caps.assignsPages).toBe(true);
    expect(pool.caps.assignsPages).toBe(true);
    expect(backing.caps.assignsPages).toBeUndefined();
    const p = pool.alloc(PAGE, BLOCKING)!;
    const q = pool.alloc(PAGE, BLOCKING)!;
    pool.free(p, PAGE);
    pool.free(q, PAGE);
    pool.flushDone();
    expect(pool.idlePages(PAGE)).toBe(1);
    expect(pool.alloc(PAGE, BLOCKING)).toBe(p);
    pool.free(p, PAGE);
    drainAll(pool);
    expect(scm.trackedPages).toBe(0);
    expect(backing.stats().outstanding).toBe(0);
  });
});
