/**
 * Flush-ordering group (requirement 16): no freed table is reused, zeroed, returned to
 * the backing store or reassigned before the TLB/walk-cache flush covering it. Checked by
 * the IOMMU model, whose walk cache remembers every table pointer the device walked.
 *
 * An allocator that declares `defersFree` runs with Panthor's flush ops: `tlb_flush_all`
 * and `tlb_flush_walk` are no-ops, and the driver invalidates the IOMMU and calls
 * `flushDone()` at the end of each batch. An allocator that frees immediately runs with
 * real flush ops, the ordering that makes the kernel's immediate free safe.
 */
import type { TableAllocator } from '@io-pgtable/allocator-api';
import { selectConfigs, type TableConfig } from '../configs.js';
import { fail } from '../failure.js';
import { Harness, type Vm } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions } from '../options.js';
import { spans } from '../scenario.js';
import type { ConformanceCheck } from './group.js';

const REGIONS = 4;
const ROUNDS = 3;

function touch(vm: Vm, base: number, B2: number, G: number): void {
  for (let r = 0; r < REGIONS; r++) for (let p = 0; p < 2; p++) vm.iommu.read(base + r * B2 + p * G);
}

function run<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>, config: TableConfig): void {
  const h = new Harness(factory, options, { poison: false, watchMemory: true });
  const defers = h.instance.caps.defersFree;
  const vm = h.createVm(config, h.top, defers ? { flushAll: false, flushWalk: false } : {});
  if (vm === null) fail('caps', `${config.label}: PGD allocation failed with a healthy backing store`);
  // Pages given back to the backing store while a walk-cache entry points at them.
  h.backing.onRelease = (p, size) => vm.iommu.noteMemoryChange('returned to the backing store', p, size);
  const { G, B2 } = spans(vm);
  const first = 0;
  const second = REGIONS * B2;
  for (let round = 0; round < ROUNDS; round++) {
    for (let r = 0; r < REGIONS; r++) h.map(vm, first + r * B2, 2 ** 32 + r * B2, G, 2);
    touch(vm, first, B2, G); // the walk cache now points at every leaf table
    for (let r = 0; r < REGIONS; r++) h.unmap(vm, first + r * B2, B2, B2); // frees the leaf tables
    for (let r = 0; r < REGIONS; r++) h.map(vm, second + r * B2, 2 ** 33 + r * B2, G, 2); // new leaf tables
    touch(vm, first, B2, G); // walks through the cached pointers to the freed tables
    touch(vm, second, B2, G);
    h.flush(); // the driver's flush, then flushDone()
    for (let r = 0; r < REGIONS; r++) h.unmap(vm, second + r * B2, B2, B2);
    h.flush();
  }
  const bad = vm.iommu.findings.find((f) => f.rule === 'reuse-before-flush');
  if (bad !== undefined) {
    fail('reuse-before-flush', `${config.label} (${defers ? 'deferred frees, no-op flush_walk' : 'immediate frees, real flush ops'}): ${bad.message}`);
  }
  h.backing.onRelease = null;
  h.teardown();
}

export function flushOrderingChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  return selectConfigs(options).map((config) => ({
    title: `${config.label}: no freed table is reused before the covering flush (IOMMU walk cache)`,
    run: () => run(factory, options, config),
  }));
}
