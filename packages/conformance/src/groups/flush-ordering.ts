/**
 * Flush-ordering group (requirement 16, contract v2): no freed table is written, zeroed,
 * handed out, returned to the backing store or reassigned before the flush covering its
 * free completes. The claim is tested by behaviour, not trusted: every allocator runs
 * under both flush regimes.
 *
 *  - synchronous (arm-smmu): `tlb_flush_walk` completes before the free, so the table is
 *    freed under a token that is already done; the IOMMU model's walk cache says whether
 *    a reuse was really safe.
 *  - deferred (Panthor): no-op `tlb_flush_walk`/`tlb_flush_all`, `tlb.deferred: true`;
 *    tables are freed under a gather's pending token and the flush completes at
 *    `pt.iotlbSync(gather)`. Two gathers are kept pending at once and synced one at a
 *    time, so an allocator that releases every pending free on any `flushDone(token)` is
 *    caught handing out a page of the other gather.
 *
 * An allocator declaring `caps.reuse: 'immediate'` is safe only under the first: for the
 * deferred regime the check is that strict mode refuses to build the page table. Titles
 * say which regime a check is for and whether the allocator claims to be safe under it.
 */
import type { TableAllocator } from '@io-pgtable/allocator-api';
import { IotlbGather } from '@io-pgtable/core';
import { selectConfigs, type TableConfig } from '../configs.js';
import { check, fail } from '../failure.js';
import { Harness, REGIMES, probeCaps, reuseOf, type FlushRegime, type Vm } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions } from '../options.js';
import { spans } from '../scenario.js';
import type { ConformanceCheck } from './group.js';

const REGIONS = 4;
const ROUNDS = 3;

/** Device reads of the mapped pages of `count` regions from `base`: caches every table pointer. */
function touch(vm: Vm, base: number, B2: number, G: number): void {
  for (let r = 0; r < REGIONS; r++) for (let p = 0; p < 2; p++) vm.iommu.read(base + r * B2 + p * G);
}

function mapRegions<A extends TableAllocator>(h: Harness<A>, vm: Vm, base: number, pa: number, B2: number, G: number): void {
  for (let r = 0; r < REGIONS; r++) h.map(vm, base + r * B2, pa + r * B2, G, 2);
}

function unmapRegions<A extends TableAllocator>(h: Harness<A>, vm: Vm, base: number, B2: number, gather: IotlbGather): void {
  for (let r = 0; r < REGIONS; r++) h.unmap(vm, base + r * B2, B2, B2, true, gather);
}

function run<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>, config: TableConfig, regime: FlushRegime): void {
  const h = new Harness(factory, options, { regime, poison: true });
  const label = `${config.label}, ${REGIMES[regime].label}`;
  const vm = h.createVm(config);
  if (vm === null) fail('caps', `${label}: PGD allocation failed with a healthy backing store`);
  const { G, B2 } = spans(vm);
  const A = 0;
  const B = REGIONS * B2;
  const C = 2 * REGIONS * B2;
  for (let round = 0; round < ROUNDS; round++) {
    const ga = new IotlbGather();
    const gb = new IotlbGather();
    mapRegions(h, vm, A, 2 ** 32, B2, G);
    touch(vm, A, B2, G); // the walk cache now points at every leaf table of A
    unmapRegions(h, vm, A, B2, ga); // frees A's leaf tables under ga's token
    mapRegions(h, vm, B, 2 ** 33, B2, G); // new leaf tables: none may be one of A's
    touch(vm, B, B2, G);
    // Allocations first, then the books: a reuse is named as such, not as the lie it needs.
    h.checkAccounting(`${label}, round ${round}: A unmapped, its flush pending`);
    unmapRegions(h, vm, B, B2, gb); // B's leaf tables wait on gb's token
    h.sync(vm, ga); // A's flush completes: only A's frees may be reused
    mapRegions(h, vm, C, 2 ** 34, B2, G); // may take A's pages, never B's
    touch(vm, C, B2, G);
    h.checkAccounting(`${label}, round ${round}: A synced, B pending`);
    h.verifyTranslations(vm);
    h.sync(vm, gb);
    h.checkAccounting(`${label}, round ${round}: both synced`);
    // Every flush covering a free completed: nothing may still be reported pending.
    for (let r = 0; r < REGIONS; r++) {
      check(!vm.iommu.read(A + r * B2).ok, 'no-overlap', () => `${label}: iova 0x${(A + r * B2).toString(16)} still translates after unmap and sync`);
    }
    for (let r = 0; r < REGIONS; r++) h.unmap(vm, C + r * B2, B2, B2);
    h.checkAccounting(`${label}, round ${round}: C unmapped and synced`);
  }
  h.teardown();
}

/** An `immediate` allocator under deferred flush ops: strict mode must refuse the page table. */
function refused<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>, config: TableConfig): void {
  const h = new Harness(factory, options, { regime: 'deferred' });
  const r = h.tryCreateVm(config);
  if ('vm' in r) {
    h.dispose();
    fail('reuse-before-flush', `${config.label}: ${h.name} declares caps.reuse 'immediate', yet a strict-mode page table with deferred flush ops (tlb.deferred) was created over it`);
  }
  h.dispose();
  check(r.code === 'EINVAL' && r.reason.includes(h.name), 'reuse-before-flush', () => `${config.label}: expected EINVAL naming ${h.name}, got ${r.code}: ${r.reason}`);
}

export function flushOrderingChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  const out: ConformanceCheck[] = [];
  const reuse = reuseOf(probeCaps(factory));
  for (const config of selectConfigs(options)) {
    out.push({
      title: `${config.label}: ${REGIMES.sync.label} [safe: claimed]: no freed table written or reused while the walk cache points at it`,
      run: () => run(factory, options, config, 'sync'),
    });
    if (reuse === 'after-flush') {
      out.push({
        title: `${config.label}: ${REGIMES.deferred.label} [safe: claimed by caps.reuse 'after-flush']: no freed table written or reused before its token's iotlbSync`,
        run: () => run(factory, options, config, 'deferred'),
      });
    } else {
      out.push({
        title: `${config.label}: ${REGIMES.deferred.label} [NOT safe: caps.reuse 'immediate']: strict mode refuses the page table`,
        run: () => refused(factory, options, config),
      });
    }
  }
  return out;
}
