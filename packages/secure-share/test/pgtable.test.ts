import { AllocatorMisuseError, assertAccounting } from '@io-pgtable/allocator-api';
import { PhysMemory, Prot, createPageTable, createSystemAllocator, type PageTable } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import { AccessViolationError, HLOS_VMID, createScmMock, vmidMask, withSecureShare, type SecureShareAllocator } from '../src/index.js';
import { ATOMIC, PAGE, RUN, VM_A, VM_B, setup, thrown } from './helpers.js';

const RW = Prot.READ | Prot.WRITE;
const S1 = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
const TWO_MB = 0x20_0000;

function table(allocator: SecureShareAllocator): PageTable {
  return createPageTable('ARM_64_LPAE_S1', S1, { allocator });
}

/** Map one 4 KiB page in each of `count` distinct 2 MiB windows: one new leaf table each. */
function mapSparse(pt: PageTable, first: number, count: number, ctx = RUN): number {
  let mapped = 0;
  for (let i = 0; i < count; i++) {
    const r = pt.mapPages((first + i) * TWO_MB, 0x4000_0000 + i * PAGE, PAGE, 1, RW, ctx);
    if (r.error !== undefined) {
      expect(r.error).toBe('ENOMEM');
      break;
    }
    mapped++;
  }
  return mapped;
}

function tablePages(pt: PageTable): number[] {
  return [...pt.tables().keys()];
}

describe('secure-share under a real page table', () => {
  it('share mode: every table page is [HLOS: RW, VMID: R] and the page-table code writes freely', () => {
    const { scm, alloc } = setup({ batch: 16 });
    const pt = table(alloc);
    expect(mapSparse(pt, 0, 8)).toBe(8);
    for (let i = 0; i < 8; i++) expect(pt.iovaToPhys(i * TWO_MB + 0x10)).toBe(0x4000_0000 + i * PAGE + 0x10);
    const pages = tablePages(pt);
    expect(pages).toHaveLength(1 + 1 + 1 + 8);
    for (const p of pages) expect(scm.stateAt(p).owners).toBe(vmidMask(HLOS_VMID, VM_A));
    expect(alloc.accessControl!.violations).toEqual([]);
  });

  it('the run phase of a VM_BIND makes zero secure calls when prepare prefilled the pool', () => {
    const { scm, alloc } = setup({ batch: 32, poolTarget: 0 });
    const pt = table(alloc);
    for (let job = 0; job < 5; job++) {
      // prepare: may sleep; pool enough pages for the job's 10 leaf tables (+2 upper ones on the first).
      alloc.prefill(12);
      const calls = scm.calls;
      expect(mapSparse(pt, job * 10, 10, RUN)).toBe(10);
      // The job's unmaps free leaf tables; the driver flushes, then signals.
      for (let i = 0; i < 10; i++) expect(pt.unmapPages((job * 10 + i) * TWO_MB, TWO_MB, 1).unmapped).toBe(TWO_MB);
      alloc.flushDone();
      expect(scm.calls).toBe(calls);
    }
    // Freed leaf tables came back to the VMID's pool: later prefills needed no new calls.
    expect(scm.calls).toBe(1);
    assertAccounting(alloc);
  });

  it('an empty pool in the run phase gives ENOMEM and still no secure call', () => {
    const { scm, alloc } = setup({ batch: 1, poolTarget: 0 });
    const pt = table(alloc);
    alloc.prefill(3);
    const calls = scm.calls;
    expect(mapSparse(pt, 0, 4, RUN)).toBe(1);
    expect(mapSparse(pt, 9, 1, ATOMIC)).toBe(0);
    expect(scm.calls).toBe(calls);
    expect(alloc.secureStats().refusedNoBlock).toBe(2);
  });

  it('donate mode: the first page-table access to a donated table (the read of the slot map would fill) faults with access-violation', () => {
    const { scm, alloc, memory } = setup({ mode: 'donate', batch: 4 });
    const pt = table(alloc);
    expect(scm.stateAt(pt.pgd).hlosPerm).toBe(0);
    const caught = thrown(() => pt.mapPages(0, 0x4000_0000, PAGE, 1, RW));
    expect(caught).toBeInstanceOf(AccessViolationError);
    expect((caught as AllocatorMisuseError).rule).toBe('access-violation');
    const v = (caught as AccessViolationError).violation;
    // The kernel reads the slot (READ_ONCE) before it installs a table: that CPU read faults first.
    expect(v).toMatchObject({ kind: 'read', who: 'pgtable', hlosPerm: 0 });
    expect(alloc.accessControl!.violations).toEqual([v]);
    // Nothing reached the donated page.
    expect(memory.isZero(v.page, PAGE)).toBe(true);
  });

  it('teardown returns every page to the host: backing empty, no page left assigned', () => {
    const { scm, alloc, backing } = setup({ batch: 8 });
    const pt = table(alloc);
    mapSparse(pt, 0, 20, { mayBlock: true });
    pt.free();
    alloc.flushDone();
    alloc.drain!();
    expect(backing.stats().outstanding).toBe(0);
    expect(scm.trackedPages).toBe(0);
    expect(assertAccounting(alloc).outstanding).toBe(0);
  });

  it('two VMs over one backing: every live table page belongs to its own VMID through churn', () => {
    const memory = new PhysMemory();
    const backing = createSystemAllocator({ memory });
    const scm = createScmMock();
    const vms = [VM_A, VM_B].map((vmid) => {
      const allocator = withSecureShare(backing, { scm, vmid, batch: 4, poolTarget: 3 });
      return { vmid, allocator, pt: table(allocator), mapped: new Set<number>() };
    });
    // Deterministic LCG so a failure reproduces.
    let seed = 12345;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
    let moved = 0;
    for (let step = 0; step < 400; step++) {
      const vm = vms[rand(2)]!;
      const window = rand(24);
      if (vm.mapped.has(window)) {
        expect(vm.pt.unmapPages(window * TWO_MB, TWO_MB, 1).unmapped).toBe(TWO_MB);
        vm.mapped.delete(window);
      } else {
        vm.allocator.topUp();
        expect(vm.pt.mapPages(window * TWO_MB, 0x4000_0000, PAGE, 1, RW, RUN).mapped).toBe(PAGE);
        vm.mapped.add(window);
      }
      if (rand(4) === 0) {
        vm.allocator.flushDone();
        moved += vm.allocator.reclaim();
      }
      for (const other of vms) {
        for (const p of tablePages(other.pt)) expect(scm.stateAt(p).owners).toBe(vmidMask(HLOS_VMID, other.vmid));
      }
    }
    // Pages really did travel through the host between the two VMs.
    expect(moved).toBeGreaterThan(10);
    const assignsBySrc = scm.log.filter((r) => r.ok && r.src === vmidMask(HLOS_VMID)).length;
    expect(assignsBySrc).toBeGreaterThan(2);
    for (const vm of vms) {
      vm.pt.free();
      vm.allocator.flushDone();
      vm.allocator.drain!();
      assertAccounting(vm.allocator);
    }
    expect(backing.stats().outstanding).toBe(0);
    expect(scm.trackedPages).toBe(0);
  });
});
