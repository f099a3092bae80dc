/**
 * Fault-injection group: the k-th backing allocation fails, for every k the standard
 * scenario makes. Maps report ENOMEM (never a throw), the tree stays consistent, the
 * accounting identity holds, and teardown leaves nothing behind (requirements 12, 20).
 */
import type { TableAllocator } from '@io-pgtable/allocator-api';
import { selectConfigs, type TableConfig } from '../configs.js';
import { Harness } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions } from '../options.js';
import { runOps, standardScenario } from '../scenario.js';
import type { ConformanceCheck } from './group.js';

function scenario<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>, config: TableConfig, failAt: number): { calls: number } {
  const h = new Harness(factory, options);
  h.backing.failAt = failAt;
  const vm = h.createVm(config);
  let enomem = 0;
  if (vm === null) enomem++;
  else {
    enomem += runOps(h, vm, standardScenario(vm), (where) => {
      h.verifyTranslations(vm);
      h.checkAccounting(`${where}, backing call ${failAt} failing`);
    });
  }
  h.teardown();
  return { calls: h.backing.calls };
}

export function faultInjectionChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  return selectConfigs(options).map((config) => ({
    title: `${config.label}: failing the k-th backing allocation for every k gives ENOMEM, a consistent tree, no leak`,
    run() {
      const { calls } = scenario(factory, options, config, -1);
      // A plugin may absorb a failure (a batch that asked for more than it needed), so the
      // number of ENOMEMs is not fixed; consistency and the absence of leaks are.
      for (let k = 0; k < calls; k++) scenario(factory, options, config, k);
    },
  }));
}
