/**
 * Accounting group: the identity `outstanding == live + cached + reserved + pendingFlush
 * + quarantined` at every quiescent point, equal to what the backing store handed out,
 * stable across flushDone() and drain() with tables live, and zero after teardown
 * (requirements 21, 27, 28).
 */
import type { TableAllocator } from '@io-pgtable/allocator-api';
import { selectConfigs } from '../configs.js';
import { check, fail } from '../failure.js';
import { Harness } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions } from '../options.js';
import { runOps, standardScenario } from '../scenario.js';
import type { ConformanceCheck } from './group.js';

export function accountingChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  const config = selectConfigs(options)[0];
  if (config === undefined) return [];
  return [
    {
      title: 'identity at every quiescent point; drain() with live tables keeps live, reserved and pending pages',
      run() {
        const h = new Harness(factory, options);
        h.checkAccounting('after creating the allocator');
        const vm = h.createVm(config);
        if (vm === null) fail('caps', 'PGD allocation failed with a healthy backing store');
        runOps(h, vm, standardScenario(vm), (where) => {
          const before = h.checkAccounting(where);
          h.instance.drain?.();
          const after = h.checkAccounting(`${where}, after drain()`);
          check(after.live === before.live && after.reserved === before.reserved && after.pendingFlush === before.pendingFlush, 'accounting', () =>
            `${where}: drain() changed live/reserved/pendingFlush ${before.live}/${before.reserved}/${before.pendingFlush} -> ${after.live}/${after.reserved}/${after.pendingFlush}`,
          );
        });
        h.flush();
        const s = h.checkAccounting('after flushDone()');
        check(s.pendingFlush === 0, 'accounting', () => `after flushDone() ${s.pendingFlush} bytes are still pending`);
        h.teardown();
      },
    },
    {
      title: 'zero outstanding after teardown and drain, for an allocator that never built a table',
      run() {
        const h = new Harness(factory, options);
        h.teardown();
      },
    },
  ];
}
