/**
 * Long-lived group: one allocator instance for a whole run, as drivers keep one pool for
 * their lifetime and share it between VMs (Panthor's global `pt_cache`). It serves at
 * least `longLivedAllocations` (default 10,000) table allocations to several page tables
 * of different formats at once, created and freed over the run, with maps, unmaps into
 * two gathers per page table and syncs interleaved at random (seeded), so several flush
 * tokens are pending at any time. Every allocation, free window, accounting point and
 * the backing-call spy are checked as in the fresh-instance groups; bugs that need many
 * allocations (a live page handed out again after a few hundred, a single `null` from a
 * `mayFail: false` allocator) show here.
 */
import { ATOMIC_CTX, BLOCKING_CTX, type TableAllocator } from '@io-pgtable/allocator-api';
import { IotlbGather, xorshift32 } from '@io-pgtable/core';
import { selectConfigs, type TableConfig } from '../configs.js';
import { fail } from '../failure.js';
import { Harness, REGIMES, probeCaps, safeRegimes, type FlushRegime, type Vm } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions } from '../options.js';
import { paFor, spans } from '../scenario.js';
import type { ConformanceCheck } from './group.js';

/** Page tables alive at once (at most), and 2 MiB-style regions used per page table. */
const MAX_VMS = 4;
const REGIONS = 32;
/** Accounting every this many operations (every operation would dominate the run). */
const CHECK_EVERY = 16;

interface Slot {
  readonly vm: Vm;
  readonly base: (r: number) => number;
  readonly B2: number;
  readonly G: number;
  /** Pages mapped in each region (0 = empty). */
  readonly mapped: Uint8Array;
  readonly gathers: [IotlbGather, IotlbGather];
  readonly pending: [boolean, boolean];
}

/** One configuration per format (the first selected of each), so the tables differ in size and shape. */
function mixOf(options: Pick<ConformanceOptions, 'formats' | 'granules'>): TableConfig[] {
  const seen = new Set<string>();
  const out: TableConfig[] = [];
  for (const c of selectConfigs(options)) {
    if (seen.has(c.format)) continue;
    seen.add(c.format);
    out.push(c);
  }
  return out;
}

function run<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>, regime: FlushRegime, target: number, seed: number): void {
  const configs = mixOf(options);
  const h = new Harness(factory, options, { regime });
  const rnd = xorshift32(seed);
  const pick = (n: number) => rnd() % n;
  const slots: Slot[] = [];
  /** Page tables freed with their gather still to sync. */
  const draining: Array<{ vm: Vm; gather: IotlbGather }> = [];
  let created = 0;
  let op = 0;
  const where = () => `${REGIMES[regime].label}, long-lived run (seed ${seed}), operation ${op}, ${h.top.allocs} allocations`;

  const create = () => {
    const config = configs[created++ % configs.length]!;
    const vm = h.createVm(config);
    if (vm === null) {
      if (!h.instance.caps.mayFail) fail('caps', `${where()}: PGD allocation for a ${config.label} page table failed with a healthy backing store`);
      return;
    }
    const { G, B2 } = spans(vm);
    const room = Math.min(REGIONS, Math.floor(2 ** vm.pt.cfg.ias / B2));
    slots.push({ vm, base: (r) => (r % room) * B2, B2, G, mapped: new Uint8Array(room), gathers: [new IotlbGather(), new IotlbGather()], pending: [false, false] });
  };
  const destroy = (i: number) => {
    const s = slots[i]!;
    slots.splice(i, 1);
    for (const k of [0, 1] as const) if (s.pending[k]) h.sync(s.vm, s.gathers[k]);
    const g = new IotlbGather();
    s.vm.pt.free(g);
    draining.push({ vm: s.vm, gather: g });
  };

  for (let i = 0; i < 2; i++) create();
  while (h.top.allocs < target) {
    op++;
    const roll = pick(100);
    if (slots.length === 0 || (roll < 2 && slots.length < MAX_VMS)) create();
    else if (roll < 3 && slots.length > 1) destroy(pick(slots.length));
    else if (roll < 6 && draining.length > 0) {
      const d = draining.splice(pick(draining.length), 1)[0]!;
      h.sync(d.vm, d.gather);
    } else {
      const s = slots[pick(slots.length)]!;
      const r = pick(s.mapped.length);
      const k = pick(2) as 0 | 1;
      if (roll < 55 && s.mapped[r] === 0) {
        const n = 1 + pick(4);
        const iova = s.base(r);
        // GFP_KERNEL and GFP_ATOMIC maps, as drivers mix them (the reservation path sets its own).
        const ctx = options.reservation !== undefined ? undefined : pick(2) === 0 ? ATOMIC_CTX : BLOCKING_CTX;
        const got = h.map(s.vm, iova, paFor(iova), s.G, n, ctx);
        if (got === null) s.mapped[r] = n;
        else if (!h.instance.caps.mayFail) fail('caps', `${where()}: map failed with ENOMEM on a healthy backing store, but ${h.name} declares caps.mayFail false`);
      } else if (roll < 85 && s.mapped[r] !== 0) {
        h.unmap(s.vm, s.base(r), s.B2, s.B2, true, s.gathers[k]); // frees the region's leaf table
        s.mapped[r] = 0;
        s.pending[k] = true;
      } else if (s.pending[k]) {
        h.sync(s.vm, s.gathers[k]);
        s.pending[k] = false;
      } else if (s.mapped[r] !== 0) {
        s.vm.iommu.read(s.base(r)); // the device walks a live mapping (fills the walk cache)
      }
    }
    if (op % CHECK_EVERY === 0) h.checkAccounting(where());
    if (op % (CHECK_EVERY * 32) === 0) for (const s of slots) h.verifyTranslations(s.vm);
  }
  for (const s of slots) {
    h.verifyTranslations(s.vm);
    for (const k of [0, 1] as const) if (s.pending[k]) h.sync(s.vm, s.gathers[k]);
  }
  for (const d of draining) h.sync(d.vm, d.gather);
  h.checkAccounting(`${where()}, every gather synced`);
  h.teardown();
}

export function longLivedChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  if (mixOf(options).length === 0) return [];
  const target = options.longLivedAllocations ?? 10_000;
  const seed = options.seed ?? 0x10ad;
  return safeRegimes(probeCaps(factory)).map((regime) => ({
    title: `one instance, ${target} allocations, page tables of ${mixOf(options).length} formats created and freed, interleaved gathers: ${REGIMES[regime].label} [safe: claimed]`,
    run: () => run(factory, options, regime, target, seed),
  }));
}
