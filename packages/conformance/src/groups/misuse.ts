/**
 * Misuse group: double frees, foreign frees and oversized frees are rejected with
 * AllocatorMisuseError naming the rule, and change no state (requirement 2). Uses a page
 * table's PGD as the victim, so allocators that only allocate inside operations run it too.
 */
import { AllocatorMisuseError, type AllocatorRule, type TableAllocator } from '@io-pgtable/allocator-api';
import { fail } from '../failure.js';
import { Harness, probeCaps, reuseOf, type Vm } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions } from '../options.js';
import { TABLE_CONFIGS } from '../configs.js';
import type { ConformanceCheck } from './group.js';

/** 64-bit stage 1, 4K granule, ias 48: a 4 KiB PGD. */
const CONFIG = TABLE_CONFIGS[0]!;

function expectMisuse<A extends TableAllocator>(h: Harness<A>, what: string, rules: readonly AllocatorRule[], fn: () => void): void {
  const before = JSON.stringify(h.instance.stats());
  try {
    fn();
  } catch (e) {
    if (!(e instanceof AllocatorMisuseError)) fail(rules[0]!, `${what} threw ${(e as Error).name ?? typeof e} instead of AllocatorMisuseError: ${(e as Error).message ?? e}`);
    if (!rules.includes(e.rule)) fail(rules[0]!, `${what} was rejected with rule ${e.rule}, expected ${rules.join(' or ')}`);
    const after = JSON.stringify(h.instance.stats());
    if (after !== before) fail('accounting', `${what} was rejected but changed the stats: ${before} -> ${after}`);
    return;
  }
  fail(rules[0]!, `${what} was accepted`);
}

/** Release the PGD through the checker and forget the page table (it must not free it again). */
function takePgd<A extends TableAllocator>(h: Harness<A>, vm: Vm): [number, number] {
  const pgd = vm.pt.pgd;
  const size = vm.pt.geometry.pgdSize;
  h.top.free(pgd, size);
  h.vms.splice(h.vms.indexOf(vm), 1);
  vm.iommu.dispose();
  return [pgd, size];
}

function vmOf<A extends TableAllocator>(h: Harness<A>): Vm {
  const vm = h.createVm(CONFIG);
  if (vm === null) fail('caps', 'creating a page table failed with a healthy backing store');
  return vm;
}

export function misuseChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  // A recycling allocator still holds a freed page while its flush is pending, so the
  // double free is tried then (deferred regime); an immediate one has it on its free list.
  const regime = reuseOf(probeCaps(factory)) === 'after-flush' ? 'deferred' : 'sync';
  return [
    {
      title: 'double free is rejected (double-free), before and after flushDone()',
      run() {
        const h = new Harness(factory, options, { regime });
        const [pgd, size] = takePgd(h, vmOf(h));
        expectMisuse(h, `a second free of 0x${pgd.toString(16)}`, ['double-free'], () => h.instance.free(pgd, size));
        h.flush();
        h.instance.drain?.();
        expectMisuse(h, `a free of 0x${pgd.toString(16)} after it was freed and flushed`, ['double-free', 'foreign-free'], () => h.instance.free(pgd, size));
        h.teardown();
      },
    },
    {
      title: 'foreign free is rejected (foreign-free): never allocated, or inside a live table',
      run() {
        const h = new Harness(factory, options);
        const vm = vmOf(h);
        expectMisuse(h, 'a free of 0x7654_3000, never handed out', ['foreign-free'], () => h.instance.free(0x7654_3000, 4096));
        expectMisuse(h, `a free of 0x${(vm.pt.pgd + 64).toString(16)}, inside a live table`, ['foreign-free'], () => h.instance.free(vm.pt.pgd + 64, 64));
        h.teardown();
      },
    },
    {
      title: 'a free larger than the allocation is rejected (free-size)',
      run() {
        const h = new Harness(factory, options);
        const vm = vmOf(h);
        const size = vm.pt.geometry.pgdSize;
        expectMisuse(h, `free(pgd, ${size * 2}) of a ${size}-byte table`, ['free-size'], () => h.instance.free(vm.pt.pgd, size * 2));
        h.teardown();
      },
    },
  ];
}
