/**
 * Property group (requirement 5): over at least 100,000 random map/unmap operations in
 * total, across every selected format and granule, no live table is ever handed out
 * twice, every allocation is zeroed and aligned, the accounting identity holds after
 * every operation, and teardown leaves nothing. fast-check drives it; the seed of a
 * failing run is printed (pass it back as `options.seed` to replay).
 */
import type { TableAllocator } from '@io-pgtable/allocator-api';
import fc from 'fast-check';
import { selectConfigs, type TableConfig } from '../configs.js';
import { ConformanceFailure, fail } from '../failure.js';
import { Harness, type Vm } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions } from '../options.js';
import { paFor, spans } from '../scenario.js';
import type { ConformanceCheck } from './group.js';

const REGIONS = 8;
const PAGES = 16;

interface Op {
  readonly kind: number;
  readonly region: number;
  readonly page: number;
  readonly count: number;
}

const opArb: fc.Arbitrary<Op> = fc.record({
  kind: fc.nat(5),
  region: fc.nat(REGIONS - 1),
  page: fc.nat(PAGES - 1),
  count: fc.integer({ min: 1, max: 4 }),
});

/** Region state: -1 a block, otherwise a bitmask of mapped pages (0 = empty). */
function runSequence<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>, config: TableConfig, ops: readonly Op[]): void {
  const h = new Harness(factory, options);
  const vm = h.createVm(config);
  if (vm === null) fail('caps', `${config.label}: PGD allocation failed with a healthy backing store`);
  const { G, B2, B1, far, b1Block } = spans(vm);
  const base = (r: number) => (far && r >= REGIONS / 2 ? B1 + (r - REGIONS / 2) * B2 : r * B2);
  const state = new Int32Array(REGIONS);
  const mayFail = h.instance.caps.mayFail;
  for (const [i, op] of ops.entries()) {
    const r = op.region;
    const iova = base(r);
    const end = Math.min(PAGES, op.page + op.count);
    const mask = ((1 << end) - 1) & ~((1 << op.page) - 1);
    switch (op.kind) {
      case 0:
      case 1:
        if (state[r] !== -1 && (state[r]! & mask) === 0) {
          if (h.map(vm, iova + op.page * G, paFor(iova + op.page * G), G, end - op.page) === null) state[r]! |= mask;
          else if (!mayFail) enomem(h, vm, i);
        }
        break;
      case 2:
        if (state[r] === 0) {
          if (h.map(vm, iova, paFor(iova), B2, 1) === null) state[r] = -1;
          else if (!mayFail) enomem(h, vm, i);
        }
        break;
      case 3:
        if (state[r] !== 0) {
          h.unmap(vm, iova, B2, B2);
          state[r] = 0;
        }
        break;
      case 4:
        if (state[r]! > 0 && (state[r]! & mask) === mask) {
          h.unmap(vm, iova + op.page * G, (end - op.page) * G, G);
          state[r]! &= ~mask;
        }
        break;
      default:
        if (b1Block && r >= REGIONS / 2 && state.subarray(REGIONS / 2).some((s) => s !== 0)) {
          h.unmap(vm, B1, B1, B1); // drops a level-2 table and every leaf table under it
          state.fill(0, REGIONS / 2);
        } else h.flush();
    }
    h.checkAccounting(`${config.label}, op ${i}`);
  }
  h.verifyTranslations(vm);
  h.teardown();
}

function enomem<A extends TableAllocator>(h: Harness<A>, vm: Vm, i: number): never {
  fail('caps', `${vm.config.label}, op ${i}: map failed with ENOMEM on a healthy backing store, but ${h.name} declares caps.mayFail false`);
}

export function propertyChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  const configs = selectConfigs(options);
  if (configs.length === 0) return [];
  const numRuns = options.numRuns ?? 100;
  const total = options.propertyOps ?? 100_000;
  const perRun = Math.max(1, Math.ceil(total / numRuns));
  return [
    {
      title: `no live table is handed out twice over ${numRuns * perRun} random map/unmap operations (all formats and granules)`,
      run() {
        const details = fc.check(
          fc.property(fc.nat(configs.length - 1), fc.array(opArb, { minLength: perRun, maxLength: perRun }), (ci, ops) => {
            runSequence(factory, options, configs[ci]!, ops);
          }),
          { numRuns, seed: options.seed, endOnFailure: true },
        );
        if (!details.failed) return;
        const where = `(fast-check seed ${details.seed}, path ${details.counterexamplePath}; replay with options.seed = ${details.seed})`;
        const e = details.errorInstance;
        if (e instanceof ConformanceFailure) {
          throw new ConformanceFailure(e.rule, `${e.message.replace(/^\[iopgt\] \[conformance\] [a-z-]+: /, '')} ${where}`, { cause: e });
        }
        throw new Error(`[iopgt] [conformance] property run failed ${where}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
      },
    },
  ];
}
