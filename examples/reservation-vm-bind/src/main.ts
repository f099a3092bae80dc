/**
 * Asynchronous VM_BIND with reserved page tables, as Panthor and drm/msm do it: each job
 * reserves, when it is submitted (a context that may sleep), every table its ops could need;
 * jobs then run in order on the fence-signalling path, where they only consume their
 * reservation and never call the backing allocator; unused pages go back at cleanup.
 * Checks what it prints and exits non-zero if anything is off.
 */
import assert from 'node:assert/strict';
import { assertAccounting, drainAll } from '@io-pgtable/allocator-api';
import { createSystemAllocator } from '@io-pgtable/core';
import { VmBindQueue, createAdmission, createVm, withReservation, type BindOp } from '@io-pgtable/reservation';

const system = createSystemAllocator();
const allocator = withReservation(system, { freePolicy: 'backing' });
const vm = createVm(allocator, { format: 'ARM_64_LPAE_S1', cfg: { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 }, split: 'none' });
const queue = new VmBindQueue(vm, { strategy: 'tree', admission: createAdmission({ limit: 256 }) });

// Eight bind jobs of four 64 KiB buffers each, scattered over the address space.
const jobs = [];
for (let j = 0; j < 8; j++) {
  const ops: BindOp[] = [];
  for (let k = 0; k < 4; k++) {
    const iova = 0x10_0000_0000 + j * 0x4000_0000 + k * 0x20_0000;
    ops.push({ kind: 'map', iova, size: 0x10000, paddr: 0x8000_0000 + (j * 4 + k) * 0x10000 });
  }
  jobs.push(await queue.submit(ops)); // prepare: admission, then the reservation (may sleep)
}
const reserved = jobs.reduce((n, job) => n + job.count, 0);

const callsBeforeRun = system.stats().backingCalls;
queue.runAll(); // the signalling path: in order, each job inside its reservation's section
const callsInRun = system.stats().backingCalls - callsBeforeRun;

const consumed = jobs.reduce((n, job) => n + job.consumed, 0);
for (const job of jobs) {
  assert.equal(job.state, 'done', `job ${job.id}: ${job.error?.message}`);
  assert.ok(job.consumed <= job.count, `job ${job.id} consumed ${job.consumed} of ${job.count} reserved tables`);
}
assert.equal(callsInRun, 0, 'the run phase must not reach the backing allocator');
assert.equal(vm.pageTable.iovaToPhys(0x10_0000_0000 + 3 * 0x4000_0000 + 0x20_0000 + 0x42), 0x8000_0000 + 13 * 0x10000 + 0x42);
const returned = queue.cleanup(); // out of the run path: unused reserved pages go back

console.log(`${jobs.length} jobs reserved ${reserved} tables at submit and consumed ${consumed} in run`);
console.log(`backing-allocator calls during run: ${callsInRun}; unused pages returned at cleanup: ${returned}`);
assert.equal(returned, reserved - consumed);

// An unbind job: unmaps reserve nothing under split 'none'.
const unbind = await queue.submit(jobs.flatMap((job) => job.ops.map((op) => ({ kind: 'unmap' as const, iova: op.iova, size: op.size }))));
queue.runAll();
assert.equal(unbind.state, 'done', unbind.error?.message);
assert.equal(vm.pageTable.iovaToPhys(0x10_0000_0000), 0);
queue.cleanup();
console.log(`unbind job: ${unbind.ops.length} unmaps, ${unbind.count} tables reserved`);

// Teardown: the page table, then every layer of the stack.
vm.destroy();
drainAll(allocator);
assertAccounting(allocator);
assert.equal(system.stats().liveTables, 0, 'every page went back to the system allocator');
console.log('teardown: every page back to the system allocator');
