/**
 * Tables group: the allocator behind real page tables of every format and granule,
 * two page tables sharing it, every allocation checked (zeroed after poisoning, aligned,
 * in range, held, not live twice), translations checked by the IOMMU model, accounting
 * at every quiescent point, nothing left after teardown (requirements 1, 2, 5, 27).
 */
import type { TableAllocator } from '@io-pgtable/allocator-api';
import { selectConfigs } from '../configs.js';
import { fail } from '../failure.js';
import { Harness } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions } from '../options.js';
import { runOps, standardScenario } from '../scenario.js';
import type { ConformanceCheck } from './group.js';

export function tablesChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  return selectConfigs(options).map((config) => ({
    title: `${config.label}: two page tables share the allocator; every table checked; nothing left after teardown`,
    run() {
      const h = new Harness(factory, options);
      const a = h.createVm(config);
      const b = h.createVm(config);
      if (a === null || b === null) fail('caps', `${config.label}: PGD allocation failed with a healthy backing store`);
      for (const vm of [a, b]) {
        const enomem = runOps(h, vm, standardScenario(vm), (where) => {
          h.verifyTranslations(vm);
          h.checkAccounting(where);
        });
        if (enomem > 0 && !h.instance.caps.mayFail) fail('caps', `${config.label}: ${enomem} maps failed with ENOMEM on a healthy backing store, but caps.mayFail is false`);
        h.flush();
        h.checkAccounting(`${config.label}: after flushDone()`);
      }
      h.verifyTranslations(a);
      h.teardown();
    },
  }));
}
