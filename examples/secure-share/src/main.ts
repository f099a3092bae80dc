/**
 * Page tables shared with a second VM through a (mocked) secure monitor, the Qualcomm case:
 * the host builds a stage-1 table, and every table page must first be assigned by the
 * monitor (`qcom_scm_assign_mem`) so VMID 10 can read it. Pages are assigned in batches into
 * a per-VMID pool before a bind, so the bind's run phase makes no secure call; CPU accesses
 * the host may no longer make are reported by the access control. Checks what it prints and
 * exits non-zero if anything is off.
 */
import assert from 'node:assert/strict';
import { assertAccounting, drainAll } from '@io-pgtable/allocator-api';
import { IotlbGather, PhysMemory, createPageTable, createSystemAllocator } from '@io-pgtable/core';
import { attachAccessControl, createScmMock, withSecureShare } from '@io-pgtable/secure-share';

const memory = new PhysMemory();
const backing = createSystemAllocator({ memory });
const scm = createScmMock(); // the monitor: owners and permissions per page, every call logged and priced
const access = attachAccessControl(memory, scm); // reports page-table writes the host may not make
const alloc = withSecureShare(backing, { scm, vmid: 10, batch: 32, poolTarget: 64 });

const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 }, { allocator: alloc });

// VM_BIND prepare (may sleep): fill the VMID's pool, in batches of 32 pages per secure call.
alloc.prefill(16);
const callsBeforeRun = scm.calls;

// run (fence-signalling path): 16 binds, each in its own 2 MiB region; tables come from the pool.
for (let i = 0; i < 16; i++) {
  const r = pt.mapPages(0x4000_0000 + i * 0x20_0000, 0x1_0000_0000 + i * 0x1000, 0x1000, 1, ['read', 'write'], { mayBlock: true, phase: 'run' });
  assert.equal(r.error, undefined, `bind ${i}: ${r.error}`);
}
const callsInRun = scm.calls - callsBeforeRun;
assert.equal(callsInRun, 0, 'the run phase must not call the secure monitor');
assert.equal(pt.iovaToPhys(0x4000_0000 + 7 * 0x20_0000 + 0x10), 0x1_0000_0000 + 7 * 0x1000 + 0x10);

// Unbind everything; after the driver's TLB / walk-cache flush the freed tables go back to the pool.
pt.unmapPages(0x4000_0000, 0x4000_0000, 1, new IotlbGather());
alloc.flushDone();

const stats = alloc.secureStats();
console.log(`secure calls: ${stats.assignCalls} assign (${stats.pagesAssigned} pages) before the run, ${callsInRun} during it`);
console.log(`pool hits: ${stats.poolHits}; pages in the VMID's pool now: ${alloc.pooled()}`);
console.log(`access violations reported: ${access.control.violations.length}`);
assert.equal(access.control.violations.length, 0, JSON.stringify(access.control.violations[0]));

// Teardown: free the table, give the pages back to the host ([HLOS: RWX]) and to the backing allocator.
pt.free();
alloc.flushDone();
alloc.reclaim();
drainAll(alloc);
assertAccounting(alloc);
assert.equal(alloc.secureStats().quarantinedBlocks, 0);
assert.equal(backing.stats().liveTables, 0, 'every page went back to the backing allocator');
console.log(`teardown: ${alloc.secureStats().pagesUnassigned} pages reassigned to the host, every page back to the backing allocator`);
access.detach();
