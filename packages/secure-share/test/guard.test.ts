import { AllocatorMisuseError } from '@io-pgtable/allocator-api';
import { PhysMemory, type AccessGuard, type AccessKind } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import {
  AccessViolationError,
  HLOS_VMID,
  ScmPerm,
  attachAccessControl,
  createScmMock,
  installGuard,
  vmidMask,
  type ScmDestination,
} from '../src/index.js';
import { PAGE, VM_A, thrown } from './helpers.js';

const BASE = 0x8000_0000;
const HLOS = vmidMask(HLOS_VMID);

function world(dest: ScmDestination[]) {
  const memory = new PhysMemory();
  const scm = createScmMock();
  const handle = attachAccessControl(memory, scm);
  memory.write64(BASE + 8, 0x1234n);
  scm.assign({ paddr: BASE, size: PAGE }, HLOS, dest);
  return { memory, scm, control: handle.control, handle };
}

function violation(fn: () => void): AccessViolationError {
  const caught = thrown(fn);
  expect(caught).toBeInstanceOf(AccessViolationError);
  expect(caught).toBeInstanceOf(AllocatorMisuseError);
  expect((caught as AccessViolationError).rule).toBe('access-violation');
  return caught as AccessViolationError;
}

describe('installGuard', () => {
  it('runs with the open guard slot (after it) and removes only its own', () => {
    const memory = new PhysMemory();
    const calls: string[] = [];
    const probe = (tag: string): AccessGuard => ({ check: (kind, paddr) => calls.push(`${tag} ${kind} ${paddr}`) });
    const first = probe('first');
    memory.guard = first;
    const removeSecond = installGuard(memory, probe('second'));
    installGuard(memory, probe('third'));
    memory.zero(64, 64);
    expect(calls).toEqual(['second zero 64', 'third zero 64', 'first zero 64']);
    removeSecond();
    removeSecond();
    calls.length = 0;
    memory.clean(128, 64);
    expect(calls).toEqual(['third clean 128', 'first clean 128']);
    // Clearing the open slot removes only what was set there.
    memory.guard = null;
    calls.length = 0;
    memory.clean(128, 64);
    expect(calls).toEqual(['third clean 128']);
  });

  it('a throwing guard stops the chain and the access', () => {
    const memory = new PhysMemory();
    memory.write64(0, 7n);
    const remove = installGuard(memory, { check: () => { throw new Error('no'); } });
    let later = 0;
    installGuard(memory, { check: () => { later++; } });
    expect(() => memory.write64(0, 9n)).toThrow('no');
    expect(later).toBe(0);
    remove();
    expect(memory.read64(0)).toBe(7n);
  });
});

describe('attachAccessControl', () => {
  it('shares one control per memory and monitor, with a handle of its own for each caller', () => {
    const memory = new PhysMemory();
    const scm = createScmMock();
    const a = attachAccessControl(memory, scm);
    const b = attachAccessControl(memory, scm);
    expect(a.control).toBe(b.control);
    expect(a).not.toBe(b);
    expect(attachAccessControl(memory, createScmMock()).control).not.toBe(a.control);
  });

  it('share mode [HLOS: RW, VMID: R] keeps host writes, zeroing and cleaning legal', () => {
    const { memory, control } = world([
      { vmid: HLOS_VMID, perm: ScmPerm.RW },
      { vmid: VM_A, perm: ScmPerm.READ },
    ]);
    memory.write64(BASE, 0xabn, 'pgtable');
    memory.zero(BASE, PAGE);
    memory.clean(BASE, PAGE);
    memory.fill(BASE, 64, 1);
    expect(control.violations).toEqual([]);
  });

  const denied: Array<[string, AccessKind, (m: PhysMemory) => void]> = [
    ['page-table write', 'write', (m) => m.write64(BASE + 16, 0xdeadn, 'pgtable')],
    ['zeroing', 'zero', (m) => m.zero(BASE, PAGE, 'allocator')],
    ['cache clean', 'clean', (m) => m.clean(BASE, PAGE, 'allocator')],
    ['poisoning fill', 'write', (m) => m.fill(BASE, 64, 0xff)],
  ];
  it.each(denied)('donate mode [VMID: RW] reports a %s as an access violation before memory changes', (_w, kind, access) => {
    const { memory, control, handle } = world([{ vmid: VM_A, perm: ScmPerm.RW }]);
    const err = violation(() => access(memory));
    expect(err.violation).toMatchObject({ kind, page: BASE, hlosPerm: 0 });
    expect(control.violations).toEqual([err.violation]);
    handle.detach(); // to read the page back
    expect(memory.read64(BASE + 8)).toBe(0x1234n);
    expect(memory.read64(BASE + 16)).toBe(0n);
    expect(memory.read64(BASE)).toBe(0n);
  });

  it('read-only host access allows cache cleaning but not writes', () => {
    const { memory, control } = world([
      { vmid: HLOS_VMID, perm: ScmPerm.READ },
      { vmid: VM_A, perm: ScmPerm.RW },
    ]);
    memory.clean(BASE, PAGE);
    const err = violation(() => memory.write64(BASE, 1n, 'pgtable'));
    expect(err.violation).toMatchObject({ kind: 'write', who: 'pgtable', hlosPerm: ScmPerm.READ });
    expect(control.violations).toHaveLength(1);
  });

  it('names the first denied page of an access that spans pages', () => {
    const memory = new PhysMemory();
    const scm = createScmMock();
    attachAccessControl(memory, scm);
    scm.assign({ paddr: BASE + PAGE, size: PAGE }, HLOS, [{ vmid: VM_A, perm: ScmPerm.RW }]);
    memory.zero(BASE, PAGE);
    const err = violation(() => memory.zero(BASE, 2 * PAGE));
    expect(err.violation).toMatchObject({ paddr: BASE, size: 2 * PAGE, page: BASE + PAGE });
  });

  it('does not check device (IOMMU) accesses, and a public call cannot claim to be the device', () => {
    const { memory, control } = world([{ vmid: VM_A, perm: ScmPerm.RW }]);
    memory.checkAccess('write', BASE, 8, 'device');
    expect(control.violations).toEqual([]);
    expect(() => memory.write64(BASE, 5n, 'device' as never)).toThrow(TypeError);
    expect(() => memory.fill(BASE, 64, 5, 'device' as never)).toThrow(TypeError);
    expect(memory.isZero(BASE, 8)).toBe(true);
    expect(memory.isZero(BASE + 16, 48)).toBe(true);
  });

  it('denies every CPU access to a page whose state is unknown', () => {
    const memory = new PhysMemory();
    const scm = createScmMock();
    const { control } = attachAccessControl(memory, scm);
    scm.failNext(1, { leaveUnknown: true });
    expect(() => scm.assign({ paddr: BASE, size: PAGE }, HLOS, [{ vmid: VM_A, perm: ScmPerm.READ }])).toThrow();
    violation(() => memory.clean(BASE, 64));
    violation(() => memory.zero(BASE, 64));
    expect(control.violations.map((v) => v.kind)).toEqual(['clean', 'zero']);
  });

  it('detach of the last attachment stops checking; a second caller detaching leaves the first one protected', () => {
    const { memory, scm, control, handle } = world([{ vmid: VM_A, perm: ScmPerm.RW }]);
    const other = attachAccessControl(memory, scm);
    other.detach();
    other.detach();
    violation(() => memory.write64(BASE, 3n, 'pgtable'));
    handle.detach();
    memory.write64(BASE, 3n, 'pgtable');
    expect(memory.read64(BASE)).toBe(3n);
    expect(control.violations).toHaveLength(1);
  });
});
