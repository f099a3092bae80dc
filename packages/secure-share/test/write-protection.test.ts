/**
 * A page assigned away from the host is unwritable (and, where HLOS has no read
 * permission, unreadable) by the host through every public path: one test per path, and a
 * property test that throws random public calls at donated pages.
 */
import { AllocatorFaultError, AllocatorMisuseError, assertAccounting, drainAll, stackLayers, type TableAllocator } from '@io-pgtable/allocator-api';
import * as core from '@io-pgtable/core';
import { PhysMemory, Prot, createPageTable, createSystemAllocator, hw, type PageTable } from '@io-pgtable/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AccessViolationError,
  HLOS_VMID,
  ScmError,
  ScmPerm,
  attachAccessControl,
  createScmMock,
  installGuard,
  vmidMask,
  withSecureShare,
} from '../src/index.js';
import { assignAsVm } from '../src/scm-mock.js';
import { BLOCKING, PAGE, STACKS, VM_A, VM_B, setup, thrown } from './helpers.js';

const RW = Prot.READ | Prot.WRITE;
const S1 = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };

function violation(fn: () => unknown, kind?: string): AccessViolationError {
  const caught = thrown(fn);
  expect(caught, 'the access must be refused').toBeInstanceOf(AccessViolationError);
  const e = caught as AccessViolationError;
  expect(e.rule).toBe('access-violation');
  if (kind !== undefined) expect(e.violation.kind).toBe(kind);
  return e;
}

/** A donate-mode context with one donated page `p` handed out (live) and three pooled. */
function donated() {
  const w = setup({ mode: 'donate', batch: 4, poolTarget: 0 });
  const p = w.alloc.alloc(PAGE, BLOCKING)!;
  expect(w.scm.stateAt(p).hlosPerm).toBe(0);
  return { ...w, p };
}

describe('donated pages: every public memory path is refused before memory changes', () => {
  const writes: Array<[string, (m: PhysMemory, p: number) => void, string]> = [
    ['write64 as the page-table code', (m, p) => m.write64(p + 8, 0x55n, 'pgtable'), 'write'],
    ['write64 as an allocator', (m, p) => m.write64(p, 0x55n), 'write'],
    ['fill', (m, p) => m.fill(p, 64, 0xa5), 'write'],
    ['zero', (m, p) => m.zero(p, PAGE), 'zero'],
    ['clean', (m, p) => m.clean(p, PAGE), 'clean'],
    ['read64', (m, p) => m.read64(p), 'read'],
    ['read32', (m, p) => m.read32(p + 4), 'read'],
    ['readWords', (m, p) => m.readWords(p, 64), 'read'],
  ];
  it.each(writes)('%s', (_name, access, kind) => {
    const { memory, alloc, p } = donated();
    const before = alloc.accessControl!.violations.length;
    violation(() => access(memory, p), kind);
    expect(memory.isZero(p, PAGE)).toBe(true);
    expect(alloc.accessControl!.violations).toHaveLength(before + 1);
  });

  it('a public call cannot claim to be the device (whose accesses are not the host\'s)', () => {
    const { memory, p } = donated();
    for (const call of [() => memory.write64(p, 1n, 'device' as never), () => memory.fill(p, 64, 1, 'device' as never), () => memory.zero(p, 64, 'device' as never), () => memory.read64(p, 'device' as never)]) {
      expect(call).toThrow(TypeError);
    }
    expect(memory.isZero(p, PAGE)).toBe(true);
  });

  it('there is no live word array in the public API: no chunk/peek/peekKey, reads are copies, the store is not exported', () => {
    const memory = new PhysMemory();
    for (const name of ['chunk', 'peek', 'peekKey']) expect(name in memory, name).toBe(false);
    expect(Object.keys(core)).not.toContain('storeOf');
    expect(Object.keys(core)).not.toContain('MemoryStore');
    expect(Object.getOwnPropertyNames(memory)).toEqual([]);
    memory.write64(0x1000, 7n);
    const copy = memory.readWords(0x1000, 8);
    copy[0] = 99;
    expect(memory.read64(0x1000)).toBe(7n);
  });

  it('memory.guard = null (or another guard) does not lift access control', () => {
    const { memory, p } = donated();
    memory.guard = null;
    violation(() => memory.write64(p, 1n, 'pgtable'));
    memory.guard = { check() {} };
    violation(() => memory.zero(p, PAGE));
    expect(() => {
      (memory as unknown as { guard: unknown }).guard = { check: 'not a function' };
    }).toThrow(TypeError);
    violation(() => memory.fill(p, 8, 1));
  });

  it('attaching and detaching access control again only drops the caller\'s own attachment', () => {
    const { memory, scm, alloc, p } = donated();
    const mine = attachAccessControl(memory, scm);
    expect(mine.control).toBe(alloc.accessControl);
    mine.detach();
    violation(() => memory.write64(p, 1n, 'pgtable'));
    // The allocator's control exposes findings only: no detach, no check, a log that cannot be edited.
    const control = alloc.accessControl as unknown as Record<string, unknown>;
    expect(control.detach).toBeUndefined();
    expect(control.check).toBeUndefined();
    const log = alloc.accessControl!.violations as AccessViolationError['violation'][];
    expect(() => (log as unknown[]).splice(0)).toThrow(TypeError);
    expect(alloc.accessControl!.violations.length).toBeGreaterThan(0);
    // Another guard's remover removes only that guard.
    const remove = installGuard(memory, { check() {} });
    remove();
    violation(() => memory.write64(p, 1n, 'pgtable'));
  });

  it('the backing allocator refuses a free of a page that is still donated, so the next VM gets ENOMEM, not a fault', () => {
    const memory = new PhysMemory();
    const backing = createSystemAllocator({ memory, limit: 4 * PAGE });
    const scm = createScmMock();
    const a = withSecureShare(backing, { scm, vmid: VM_A, mode: 'donate', batch: 4 });
    const p = a.alloc(PAGE, BLOCKING)!;
    const stats = JSON.stringify(backing.stats());
    const e = violation(() => backing.free(p, PAGE), 'release');
    expect(e.violation.page).toBe(p);
    expect(JSON.stringify(backing.stats())).toBe(stats);
    const b = withSecureShare(backing, { scm, vmid: VM_B, mode: 'donate', batch: 1 });
    expect(b.alloc(PAGE, BLOCKING)).toBeNull();
    expect(b.stats().quarantined).toBe(0);
    // A shared page ([HLOS: RW, VM: R]) cannot go back either: the VM could still read it.
    const s = setup({ batch: 1 });
    const q = s.alloc.alloc(PAGE, BLOCKING)!;
    violation(() => s.backing.free(q, PAGE), 'release');
  });
});

describe('donated tables: the page-table API cannot write them, and a refused write leaks nothing', () => {
  it('mapPages faults before allocating: no table is stranded, teardown returns every page', () => {
    const { memory, scm, alloc, backing } = setup({ mode: 'donate', batch: 4 });
    const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator: alloc });
    for (let i = 0; i < 5; i++) {
      violation(() => pt.mapPages(i * 0x4000_0000, 0x4000_0000, PAGE, 1, RW));
      expect(pt.stats().liveTables).toBe(1);
      expect(alloc.stats().liveTables).toBe(1);
    }
    expect(memory.isZero(pt.pgd, PAGE)).toBe(true);
    pt.free();
    drainAll(alloc);
    expect(backing.stats().outstanding).toBe(0);
    expect(scm.trackedPages).toBe(0);
    expect(assertAccounting(alloc).outstanding).toBe(0);
  });

  it('tables donated after they were built: unmap, remap and dirty clearing are refused and change nothing', () => {
    const { scm, alloc } = setup({ batch: 16 });
    const pt = createPageTable('ARM_64_LPAE_S1', { ...S1, quirks: ['ARM_HD'] }, { allocator: alloc });
    expect(pt.mapPages(0x1000, 0x4000_0000, PAGE, 1, RW, BLOCKING).mapped).toBe(PAGE);
    const pages = [...pt.tables().keys()];
    const before = JSON.stringify([...pt.tables()].map(([a, e]) => [a, [...e].map(([i, v]) => [i, v.toString(16)])]));
    // Take every table page away from the host through the monitor.
    const shared = vmidMask(HLOS_VMID, VM_A);
    for (const q of pages) scm.assign({ paddr: q, size: PAGE }, shared, [{ vmid: VM_A, perm: ScmPerm.RW }]);
    violation(() => pt.unmapPages(0x1000, PAGE, 1));
    violation(() => pt.mapPages(0x2000, 0x4000_1000, PAGE, 1, RW, BLOCKING));
    const dump = () => JSON.stringify([...hw.deviceTables(pt)].map(([a, e]) => [a, [...e].map(([i, v]) => [i, v.toString(16)])]));
    // The host cannot even read them now (a walk or a dump); the device's view shows them unchanged.
    violation(() => pt.iovaToPhys(0x1000));
    violation(() => pt.tables());
    expect(dump()).toBe(before);
    expect(pt.stats().liveTables).toBe(pages.length);
  });
});

describe('property: random public calls on donated pages', () => {
  type Who = 'pgtable' | 'allocator';
  type Call =
    | { op: 'write64'; off: number; v: bigint; who: Who }
    | { op: 'fill'; off: number; len: number; byte: number }
    | { op: 'zero' | 'clean' | 'read64' | 'read32' | 'readWords'; off: number }
    | { op: 'device'; off: number }
    | { op: 'assign'; src: bigint; dest: { vmid: number; perm: number }[]; extra: number }
    | { op: 'layer-free'; layer: number; flushed: boolean }
    | { op: 'slot-null' | 'slot-probe' | 'reattach' | 'add-guard' | 'install-remove' | 'double-free' | 'foreign-free' | 'map' };

  const VMIDS = [HLOS_VMID, VM_A, VM_B, 0, 63];
  const mask = fc.oneof(
    fc.subarray(VMIDS, { minLength: 1 }).map((v) => vmidMask(...v)),
    fc.bigInt({ min: -1n, max: (1n << 65n) }),
  );
  const dest = fc.uniqueArray(fc.record({ vmid: fc.constantFrom(...VMIDS), perm: fc.integer({ min: 0, max: 8 }) }), { selector: (d) => d.vmid, minLength: 0, maxLength: 3 });
  const off = fc.integer({ min: 0, max: PAGE / 8 - 1 }).map((i) => i * 8);
  const call: fc.Arbitrary<Call> = fc.oneof(
    fc.record({ op: fc.constant('write64' as const), off, v: fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }), who: fc.constantFrom('pgtable' as const, 'allocator' as const) }),
    fc.record({ op: fc.constant('fill' as const), off: fc.integer({ min: 0, max: PAGE / 4 - 1 }).map((i) => i * 4), len: fc.integer({ min: 1, max: 64 }).map((i) => i * 4), byte: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ op: fc.constantFrom('zero' as const, 'clean' as const, 'read64' as const, 'read32' as const, 'readWords' as const, 'device' as const), off }),
    fc.record({ op: fc.constant('assign' as const), src: mask, dest, extra: fc.integer({ min: -1, max: 2 }) }),
    fc.record({ op: fc.constant('layer-free' as const), layer: fc.nat(3), flushed: fc.boolean() }),
    fc.record({ op: fc.constantFrom('slot-null' as const, 'slot-probe' as const, 'reattach' as const, 'add-guard' as const, 'install-remove' as const, 'double-free' as const, 'foreign-free' as const, 'map' as const) }),
  );

  /** Errors this package and its stack throw: nothing raw. */
  const typed = (e: unknown) => e instanceof AllocatorMisuseError || e instanceof AllocatorFaultError || e instanceof ScmError;

  function run(build: (memory: PhysMemory) => TableAllocator, calls: Call[], pageIndex: number): void {
    const memory = new PhysMemory();
    const scm = createScmMock();
    const alloc = withSecureShare(build(memory), { scm, vmid: VM_A, mode: 'donate', batch: 4, poolTarget: 0 });
    const layers = stackLayers(alloc);
    const bottom = layers.at(-1)!;
    const pt: PageTable = createPageTable('ARM_64_LPAE_S1', S1, { allocator: alloc });
    const live = alloc.alloc(PAGE, BLOCKING)!;
    const freed = alloc.alloc(PAGE, BLOCKING)!;
    alloc.free(freed, PAGE);
    alloc.flushDone(); // donated, idle, waiting for reclaim
    // A page the host filled and then donated itself (no allocator holds it): its bytes are not zero.
    const q = 0x4000_0000;
    memory.fill(q, PAGE, 0x5a);
    scm.assign({ paddr: q, size: PAGE }, vmidMask(HLOS_VMID), [{ vmid: VM_A, perm: ScmPerm.RW }]);
    const zeroed = [pt.pgd, live, freed];
    const pages = [...zeroed, q];
    const p = pages[pageIndex % pages.length]!;
    const stats = () => JSON.stringify(layers.map((l) => l.stats()));
    const before = stats();
    const refused = (fn: () => unknown) => {
      const e = thrown(fn);
      expect(typed(e), `${String(e)}`).toBe(true);
    };
    for (const c of calls) {
      switch (c.op) {
        case 'write64': refused(() => memory.write64(p + c.off, c.v, c.who)); break;
        case 'fill': refused(() => memory.fill(p + c.off, Math.min(c.len, PAGE - c.off), c.byte)); break;
        case 'zero': refused(() => memory.zero(p + c.off, 8)); break;
        case 'clean': refused(() => memory.clean(p + c.off, 8)); break;
        case 'read64': refused(() => memory.read64(p + c.off)); break;
        case 'read32': refused(() => memory.read32(p + c.off)); break;
        case 'readWords': refused(() => memory.readWords(p + c.off, 8)); break;
        case 'device': expect(() => memory.write64(p + c.off, 1n, 'device' as never)).toThrow(TypeError); break;
        case 'assign': {
          // Any range covering the donated page: alone, with the page before or after, or a list.
          const range = c.extra < 0 ? { paddr: p - PAGE, size: 2 * PAGE } : c.extra === 0 ? { paddr: p, size: PAGE } : c.extra === 1 ? { paddr: p, size: 2 * PAGE } : [{ paddr: p, size: PAGE }, { paddr: p + 4 * PAGE, size: PAGE }];
          refused(() => alloc.scm.assign(range, c.src, c.dest));
          break;
        }
        case 'layer-free': {
          const layer = layers[c.layer % layers.length]!;
          const ctx = c.flushed ? { kind: 'table' as const, level: 3, flush: { id: 1, done: true } } : undefined;
          // The top layer's free of a live table is a legal free: it only queues the block. Every other free is refused.
          if (layer === alloc && (p === live || p === pt.pgd)) break;
          refused(() => layer.free(p, PAGE, ctx));
          break;
        }
        case 'slot-null': memory.guard = null; break;
        case 'slot-probe': memory.guard = { check() {} }; break;
        case 'reattach': attachAccessControl(memory, scm).detach(); break;
        case 'add-guard': memory.addGuard({ check() {} }); break;
        case 'install-remove': installGuard(memory, { check() {} })(); break;
        case 'double-free': refused(() => alloc.free(freed, PAGE)); break;
        case 'foreign-free': refused(() => alloc.free(q, PAGE)); break;
        case 'map': refused(() => pt.mapPages(0x4000_0000, 0x4000_0000, PAGE, 1, RW)); break;
      }
      for (const z of zeroed) expect(memory.isZero(z, PAGE)).toBe(true);
      for (const z of pages) expect(scm.stateAt(z).owners).toBe(vmidMask(VM_A));
      expect(stats()).toBe(before);
      expect(pt.stats().liveTables).toBe(1);
      assertAccounting(alloc);
    }
    // The VM gives the host's page back (the test acts as the VM): its bytes are what the host wrote.
    assignAsVm(scm, VM_A, { paddr: q, size: PAGE }, vmidMask(VM_A), [{ vmid: HLOS_VMID, perm: ScmPerm.RWX }]);
    const words = memory.readWords(q, PAGE);
    expect(words.every((w) => w === 0x5a5a5a5a)).toBe(true);
    pt.free();
    alloc.free(live, PAGE);
    drainAll(alloc);
    expect(bottom.stats().outstanding).toBe(0);
    expect(scm.trackedPages).toBe(0);
  }

  it.each(STACKS)('over %s: never changes a donated page, its owner or any layer\'s accounting; every call is refused typed; teardown returns everything', (_name, build) => {
    fc.assert(
      fc.property(fc.array(call, { minLength: 1, maxLength: 30 }), fc.nat(3), (calls, i) => run(build, calls, i)),
      { numRuns: 120, seed: 0x5ec0 },
    );
  });
});
