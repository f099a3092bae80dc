/**
 * Reservation group (requirements 7-15 and 18 of the allocator-users spec): the two-phase
 * VM_BIND protocol of Panthor and drm/msm. `prepare` may sleep, allocate and fail; `run`
 * happens in the dma-fence signalling path and may only consume what was reserved;
 * `release` gives the rest back exactly once. Runs only with `options.reservation`.
 */
import type { TableAllocator } from '@io-pgtable/allocator-api';
import fc from 'fast-check';
import { TABLE_CONFIGS, selectConfigs, type TableConfig } from '../configs.js';
import { ConformanceFailure, check, fail } from '../failure.js';
import type { Vm } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions, ReservationHandle, JobSplitPolicy } from '../options.js';
import { paFor, spans, type ScenarioOp } from '../scenario.js';
import { assertRuns } from './fc-run.js';
import type { ConformanceCheck } from './group.js';
import { Jobs, RUN_ATOMIC_CTX, RUN_CTX, SLOTS, SLOTS_PER_WINDOW, SlotLayout, WINDOWS, describeOps, type JobSpec } from './jobs.js';

const STEPS = 40;

type Factory<A extends TableAllocator> = AllocatorFactory<A>;
type Options<A extends TableAllocator> = ConformanceOptions<A>;

const map = (iova: number, pgsize: number, count: number): ScenarioOp => ({ kind: 'map', iova, pgsize, count });
const unmap = (iova: number, size: number, pgsize: number): ScenarioOp => ({ kind: 'unmap', iova, size, pgsize });

// ---------------------------------------------------------------------------------------
// Random job sequences on a pre-existing tree (requirements 7, 8, 10, 18)
// ---------------------------------------------------------------------------------------

interface Step {
  /** 0-1 map pages, 2 map a block, 3 unmap a window, 4 unmap pages, 5 flush + drain, 6 multi-op job. */
  readonly kind: number;
  readonly slot: number;
  readonly count: number;
  /** Further slots of a multi-op job, in job order (shuffled by construction). */
  readonly more: readonly number[];
}

const stepArb: fc.Arbitrary<Step> = fc.record({
  kind: fc.nat(6),
  slot: fc.nat(SLOTS - 1),
  count: fc.integer({ min: 1, max: 6 }),
  more: fc.array(fc.nat(SLOTS - 1), { maxLength: 7 }),
});

/** The oracle: which slots hold a page, which windows hold a block. */
class TreeState {
  readonly pages = new Uint8Array(SLOTS);
  readonly blocks = new Uint8Array(WINDOWS);
  free(a: number, e: number): boolean {
    for (let s = a; s < e; s++) if (this.pages[s] !== 0 || this.blocks[Math.floor(s / SLOTS_PER_WINDOW)] !== 0) return false;
    return true;
  }
  windowEmpty(w: number): boolean {
    return this.blocks[w] === 0 && this.pages.subarray(w * SLOTS_PER_WINDOW, (w + 1) * SLOTS_PER_WINDOW).every((p) => p === 0);
  }
}

/** Translate a step into a job (null: nothing to do in the current state) and apply it to the oracle. */
function jobFor(step: Step, L: SlotLayout, st: TreeState): ScenarioOp[] | null {
  const w = Math.floor(step.slot / SLOTS_PER_WINDOW);
  switch (step.kind) {
    case 0:
    case 1: {
      const e = L.runEnd(step.slot, step.count);
      if (!st.free(step.slot, e)) return null;
      st.pages.fill(1, step.slot, e);
      return [map(L.iova(step.slot), L.G, e - step.slot)];
    }
    case 2:
      if (!st.windowEmpty(w)) return null;
      st.blocks[w] = 1;
      return [map(L.window(w), L.B2, 1)];
    case 3:
      if (st.windowEmpty(w)) return null;
      st.blocks[w] = 0;
      st.pages.fill(0, w * SLOTS_PER_WINDOW, (w + 1) * SLOTS_PER_WINDOW);
      return [unmap(L.window(w), L.B2, L.B2)];
    case 4: {
      // The mapped pages from `slot` on, up to `count` and while contiguous.
      let e = step.slot;
      const end = L.runEnd(step.slot, step.count);
      while (e < end && st.pages[e] !== 0) e++;
      if (e === step.slot) return null;
      st.pages.fill(0, step.slot, e);
      return [unmap(L.iova(step.slot), (e - step.slot) * L.G, L.G)];
    }
    case 6: {
      // Tiny sparse maps of one or two pages, in random order (msm merges such jobs).
      const ops: ScenarioOp[] = [];
      for (const s of [step.slot, ...step.more]) {
        const e = L.runEnd(s, 1 + (s % 2));
        if (!st.free(s, e)) continue;
        st.pages.fill(1, s, e);
        ops.push(map(L.iova(s), L.G, e - s));
      }
      return ops.length > 0 ? ops : null;
    }
    default:
      return null;
  }
}

function runSequence<A extends TableAllocator>(factory: Factory<A>, options: Options<A>, config: TableConfig, steps: readonly Step[], merge: boolean): void {
  const J = new Jobs(factory, options);
  const vm = J.vm(config);
  const L = new SlotLayout(vm);
  const st = new TreeState();
  for (const [i, step] of steps.entries()) {
    const where = `${config.label}, job ${i}`;
    if (step.kind === 5) {
      J.h.flush();
      J.h.instance.drain?.();
      J.h.checkAccounting(`${where}, after flushDone() and drain()`);
      continue;
    }
    const ops = jobFor(step, L, st);
    if (ops === null) continue;
    // Odd jobs run atomic, even ones with Panthor's GFP_KERNEL: neither may reach the backing store.
    J.job(vm, { ops, merge: merge && ops.length > 1 }, where, i % 2 === 0 ? RUN_CTX : RUN_ATOMIC_CTX);
  }
  J.h.verifyTranslations(vm);
  J.teardown();
}

function sequenceCheck<A extends TableAllocator>(factory: Factory<A>, options: Options<A>, configs: readonly TableConfig[], merge: boolean): void {
  assertRuns(
    fc.property(fc.nat(configs.length - 1), fc.array(stepArb, { minLength: STEPS, maxLength: STEPS }), (ci, steps) => {
      runSequence(factory, options, configs[ci]!, steps, merge);
    }),
    options.numRuns ?? 100,
    options.seed,
  );
}

// ---------------------------------------------------------------------------------------
// Exact counts on empty trees (requirement 8)
// ---------------------------------------------------------------------------------------

/** One map job on a fresh (empty) page table; returns its handle after release. */
function emptyTreeJob<A extends TableAllocator>(factory: Factory<A>, options: Options<A>, config: TableConfig, op: ScenarioOp, where: string): ReservationHandle {
  const J = new Jobs(factory, options);
  const vm = J.vm(config);
  const handle = J.job(vm, { ops: [op] }, where);
  check(handle.consumed === handle.reserved, 'reservation-count', () =>
    `${where}: on an empty tree a map of ${describeOps([op])} consumed ${handle.consumed} tables but reserved ${handle.reserved}: with ${config.granule / 1024}K pages only the count must be exact`,
  );
  J.teardown();
  return handle;
}

function tightCheck<A extends TableAllocator>(factory: Factory<A>, options: Options<A>, configs: readonly TableConfig[]): void {
  const worked = configs.find((c) => c.label === TABLE_CONFIGS[0]!.label);
  if (worked !== undefined) {
    // The spec's worked vectors for 48-bit, 4K: one page needs L1 + L2 + L3 tables; a
    // two-page map across a 2 MiB boundary needs a second leaf table.
    for (const [op, want] of [
      [map(0, 4096, 1), 3],
      [map(0x200000 - 0x1000, 4096, 2), 4],
    ] as const) {
      const h = emptyTreeJob(factory, options, worked, op, `${worked.label}: worked vector ${describeOps([op])}`);
      check(h.reserved === want, 'reservation-count', () => `${worked.label}: ${describeOps([op])} on an empty tree reserved ${h.reserved} tables, expected ${want}`);
    }
  }
  assertRuns(
    fc.property(fc.nat(configs.length - 1), fc.boolean(), fc.integer({ min: -300, max: 300 }), fc.integer({ min: 1, max: 600 }), (ci, upper, offset, count) => {
      const config = configs[ci]!;
      const G = config.granule;
      const B2 = (G * G) / 8;
      const B1 = B2 * (G / 8);
      // Around a leaf-table boundary, or a level-1 boundary when the input range has one.
      const boundary = upper && 2 * B1 <= 2 ** config.cfg.ias ? B1 : 2 * B2;
      const iova = Math.max(0, boundary + offset * G);
      emptyTreeJob(factory, options, config, map(iova, G, count), `${config.label}: ${count} pages at 0x${iova.toString(16)}`);
    }),
    options.numRuns ?? 100,
    options.seed,
  );
}

// ---------------------------------------------------------------------------------------
// Unmaps and split policies (requirement 9)
// ---------------------------------------------------------------------------------------

function splitCheck<A extends TableAllocator>(factory: Factory<A>, options: Options<A>, base: TableConfig, policy: JobSplitPolicy): void {
  // Only granule pages and leaf-table-sized blocks: a ragged edge then cuts at most one
  // block whose split needs exactly one leaf table.
  const G = base.granule;
  const B2 = (G * G) / 8;
  const config: TableConfig = { ...base, label: `${base.label} (pages ${G / 1024}K + ${B2 / 2 ** 20}M)`, cfg: { ...base.cfg, pgsizeBitmap: G + B2 } };
  const J = new Jobs(factory, options);
  const vm = J.vm(config);
  const N = B2 / G;
  const where = `${config.label}, split policy ${policy}`;
  J.job(vm, { ops: [map(0, G, 4), map(B2, B2, 1), map(2 * B2, B2, 1), map(3 * B2, B2, 1)] }, `${where}: setup`);
  const reserve = (ops: ScenarioOp[], what: string): ReservationHandle => J.ready(vm, { ops, split: policy }, `${where}: ${what}`);
  const expect = (h: ReservationHandle, ok: (n: number) => boolean, want: string, what: string) =>
    check(ok(h.reserved), 'reservation-count', () => `${where}: ${what} reserved ${h.reserved} tables, expected ${want}`);

  // An unmap aligned to blocks never needs a table; one of pages has one ragged edge,
  // which may cut a block as far as a count from the job alone can tell.
  for (const [ops, what, most] of [
    [[unmap(0, 2 * G, G)], 'an unmap of pages with one ragged edge', policy === 'forbid' ? 0 : 1],
    [[unmap(3 * B2, B2, B2)], 'an aligned unmap of a block', 0],
  ] as const) {
    const h = reserve([...ops], what);
    expect(h, (n) => n <= most, most === 0 ? '0' : `at most ${most}`, what);
    if (J.run(h, `${where}: ${what}`, () => J.perform(vm, ops, RUN_CTX)) >= 0) fail('reservation-count', `${where}: ${what} ran out of its reservation`);
    J.release(h, `${where}: ${what}`);
  }

  const inOne = [unmap(B2 + G, 2 * G, G)];
  const acrossTwo = [unmap(B2 + G, B2, G)];
  if (policy === 'forbid') {
    // Linux >= 6.13 never splits: the kernel refuses the unmap, so nothing is reserved.
    for (const [ops, what] of [
      [inOne, 'a ragged unmap inside one block'],
      [acrossTwo, 'a ragged unmap cutting two blocks'],
    ] as const) {
      const h = reserve(ops, what);
      expect(h, (n) => n === 0, '0 (splits are forbidden)', what);
      J.release(h, `${where}: ${what}`);
    }
  } else {
    // As the driver splits: unmap the whole block, remap the border pieces with pages.
    const one = reserve(inOne, 'a ragged unmap inside one block');
    expect(one, (n) => n === 1, '1 (both edges cut the same block)', 'a ragged unmap inside one block');
    const split1 = [unmap(B2, B2, B2), map(B2, G, 1), map(B2 + 3 * G, G, N - 3)];
    if (J.run(one, `${where}: split inside one block`, () => J.perform(vm, split1, RUN_CTX)) >= 0) fail('reservation-count', `${where}: splitting one block ran out of its reservation (reserved ${one.reserved})`);
    J.release(one, `${where}: split inside one block`);
    J.job(vm, { ops: [unmap(B2, B2, B2), map(B2, B2, 1)] }, `${where}: restore the block`);
    const two = reserve(acrossTwo, 'a ragged unmap cutting two blocks');
    expect(two, (n) => n <= 2, 'at most 2 (one leaf table per ragged edge)', 'a ragged unmap cutting two blocks');
    const split2 = [unmap(B2, 2 * B2, B2), map(B2, G, 1), map(2 * B2 + G, G, N - 1)];
    if (J.run(two, `${where}: split of two blocks`, () => J.perform(vm, split2, RUN_CTX)) >= 0) fail('reservation-count', `${where}: splitting two blocks ran out of its reservation (reserved ${two.reserved})`);
    J.release(two, `${where}: split of two blocks`);
  }
  J.h.verifyTranslations(vm);
  J.teardown();
}

// ---------------------------------------------------------------------------------------
// Exhaustion during run (requirements 11, 18)
// ---------------------------------------------------------------------------------------

/**
 * Prepare a one-page job on an empty tree, then run a two-page map across a leaf-table
 * boundary: it needs one table more than was reserved. Returns the handle, released.
 */
function exhaust<A extends TableAllocator>(J: Jobs<A>, vm: Vm, where: string): ReservationHandle {
  const { G, B2 } = spans(vm);
  const h = J.ready(vm, { ops: [map(0, G, 1)] }, where);
  const r = J.run(h, where, () => J.h.mapNow(vm, B2 - G, paFor(B2 - G), G, 2, RUN_CTX));
  if (r !== 'ENOMEM') {
    fail('reservation-count', `${where}: a one-page job on an empty tree (reserved ${h.reserved}) mapped two pages in two leaf tables: its count is not exact`);
  }
  // The failed map was undone (as iommu_map does): both pages unmapped, in software and for the device.
  for (const iova of [B2 - G, B2]) {
    const dev = vm.iommu.translate(iova);
    check(vm.pt.iovaToPhys(iova) === 0 && !dev.ok, 'reservation-exhausted', () => `${where}: after the failed map iova 0x${iova.toString(16)} still translates`);
  }
  J.h.verifyTranslations(vm);
  J.release(h, where);
  return h;
}

function exhaustionCheck<A extends TableAllocator>(factory: Factory<A>, options: Options<A>, config: TableConfig): void {
  const J = new Jobs(factory, options);
  const vm = J.vm(config);
  const { G, B2 } = spans(vm);
  const where = `${config.label}: exhaustion`;
  exhaust(J, vm, where);
  const again: JobSpec = { ops: [map(B2 - G, G, 2)] };
  if (J.unusable(vm)) {
    // Panthor's vm->unusable: later jobs are refused before they allocate anything.
    const calls = J.h.backing.calls;
    const r = J.prepare(vm, again, `${where}, VM unusable`);
    if (r !== null && r !== 'wait') {
      J.release(r, `${where}, VM unusable`);
      fail('reservation-exhausted', `${where}: the VM is marked unusable but a later prepare was accepted (reserved ${r.reserved})`);
    }
    check(J.h.backing.calls === calls, 'reservation-exhausted', () => `${where}: a prepare on an unusable VM made ${J.h.backing.calls - calls} backing allocations`);
  } else {
    J.job(vm, again, `${where}, the same map with a sufficient reservation`);
  }
  J.teardown();
}

function lostAllocationCheck<A extends TableAllocator>(factory: Factory<A>, options: Options<A>, config: TableConfig): void {
  const J = new Jobs(factory, options);
  const vm = J.vm(config);
  const { G, B2 } = spans(vm);
  const where = `${config.label}: lost allocation`;
  const ops = [map(B2 - G, G, 2)];
  const h = J.ready(vm, { ops }, where);
  J.run(h, where, () => {
    // A table allocated and never linked (a lost install race, a failed DMA map) is freed
    // again; the job's own map may then run short, but never past its count.
    const p = J.h.top.alloc(G, RUN_CTX);
    if (p !== null) J.h.top.free(p, G);
    return J.perform(vm, ops, RUN_CTX);
  });
  J.h.verifyTranslations(vm);
  J.release(h, where);
  J.h.flush();
  J.h.checkAccounting(`${where}, after flushDone()`);
  if (!J.unusable(vm) && vm.maps.length === 0) J.job(vm, { ops }, `${where}, the map again`);
  J.teardown();
}

// ---------------------------------------------------------------------------------------
// Release (requirements 12, 13)
// ---------------------------------------------------------------------------------------

function releaseTwice<A extends TableAllocator>(J: Jobs<A>, h: ReservationHandle, where: string): void {
  J.release(h, where);
  const snap = () => `${JSON.stringify(J.h.instance.stats())}, backing holds ${J.h.backing.heldBytes} bytes after ${J.h.backing.calls} calls`;
  const once = snap();
  check(J.h.instance.stats().reserved === 0, 'release-once', () => `${where}: after release() with no other job outstanding stats().reserved is ${J.h.instance.stats().reserved} bytes, not 0`);
  J.release(h, `${where}, second release`);
  J.release(h, `${where}, third release`);
  const twice = snap();
  check(once === twice, 'release-once', () => `${where}: release() is not idempotent: ${once} -> ${twice}`);
}

function releaseCheck<A extends TableAllocator>(factory: Factory<A>, options: Options<A>, config: TableConfig): void {
  const J = new Jobs(factory, options);
  const vm = J.vm(config);
  const { G, B2 } = spans(vm);
  const where = `${config.label}: release`;
  const ops = [map(B2 - G, G, 2)];
  releaseTwice(J, J.ready(vm, { ops }, where), `${where} of a job that never ran`);
  const partial = J.ready(vm, { ops }, where);
  J.run(partial, `${where}, partial run`, () => J.perform(vm, [map(B2 - G, G, 1)], RUN_CTX));
  check(partial.consumed < partial.reserved, 'reservation-count', () => `${where}: half of a job on an empty tree consumed ${partial.consumed} of ${partial.reserved} reserved tables`);
  releaseTwice(J, partial, `${where} of a partly consumed job`);
  const vm2 = J.vm(config);
  releaseTwice(J, exhaust(J, vm2, `${where}, exhausted run`), `${where} of a job whose run failed`);
  J.h.flush();
  J.teardown();
}

/** The job whose prepare is failed at every backing allocation: two leaf tables, and two level-2 tables where there is a level-1 boundary. */
function faultJob(vm: Vm): ScenarioOp[] {
  const { G, B2, B1, far } = spans(vm);
  return [map((far ? B1 : B2) - G, G, 2)];
}

function prepareFaultCheck<A extends TableAllocator>(factory: Factory<A>, options: Options<A>, config: TableConfig): void {
  let n = 0;
  {
    const J = new Jobs(factory, options);
    const vm = J.vm(config);
    const before = J.h.backing.calls;
    J.release(J.ready(vm, { ops: faultJob(vm) }, `${config.label}: prepare`), `${config.label}: prepare`);
    n = J.h.backing.calls - before;
    J.teardown();
  }
  for (let k = 0; k < n; k++) {
    const where = `${config.label}: prepare with backing allocation ${k} of ${n} failing`;
    const J = new Jobs(factory, options);
    const vm = J.vm(config);
    const ops = faultJob(vm);
    const held = J.h.backing.heldBytes;
    const reserved = J.h.instance.stats().reserved;
    J.h.backing.failAt = J.h.backing.calls + k;
    let r: ReservationHandle | null | 'wait';
    try {
      r = J.prepare(vm, { ops }, where);
    } catch (e) {
      fail('no-throw', `${where}: prepare threw instead of returning null: ${(e as Error)?.message ?? String(e)}`, e);
    }
    J.h.backing.failAt = -1;
    if (r === 'wait') fail('admission', `${where}: a job was told to wait with no other reservation outstanding`);
    if (r === null) {
      const s = J.h.instance.stats();
      check(J.h.backing.heldBytes === held && s.reserved === reserved, 'release-once', () =>
        `${where}: the failed prepare kept ${J.h.backing.heldBytes - held} bytes of backing memory (stats().reserved ${reserved} -> ${s.reserved}); it must give back everything it took`,
      );
      J.h.checkAccounting(`${where}, after the failed prepare`);
    } else {
      // The plugin absorbed the failure (retried): the reservation must still cover the job.
      const failed = J.run(r, where, () => J.perform(vm, ops, RUN_CTX));
      if (failed >= 0) fail('reservation-count', `${where}: the prepare absorbed the failure but its reservation (${r.reserved}) does not cover the job`);
      J.release(r, where);
    }
    if (!J.unusable(vm) && vm.maps.length === 0) J.job(vm, { ops }, `${where}, then the same job on a healthy store`);
    J.teardown();
  }
}

// ---------------------------------------------------------------------------------------
// Privacy (requirement 14) and admission (requirement 15)
// ---------------------------------------------------------------------------------------

function privateCheck<A extends TableAllocator>(factory: Factory<A>, options: Options<A>, config: TableConfig): void {
  const J = new Jobs(factory, options);
  const vmA = J.vm(config);
  const vmB = J.vm(config);
  const { G, B2 } = spans(vmA);
  const where = `${config.label}: reservation privacy`;
  // Job A on an empty tree: its run needs every table it reserved.
  const opsA = [map(B2 - G, G, 2)];
  const a = J.ready(vmA, { ops: opsA }, `${where}, job A`);
  const reservedA = a.reserved;
  // Job B asks for one page and maps more: it must run out rather than take A's tables.
  const b = J.prepare(vmB, { ops: [map(0, G, 1)] }, `${where}, job B`);
  if (b !== null && b !== 'wait') {
    let overrun: unknown = null;
    try {
      J.run(b, `${where}, job B overrunning its reservation`, () => J.perform(vmB, [map(0, G, 1), map(3 * B2, G, 1), map(5 * B2, G, 1)], RUN_CTX));
    } catch (e) {
      overrun = e;
    }
    check(a.consumed === 0 && a.reserved === reservedA, 'reservation-private', () =>
      `${where}: job B's run changed job A's reservation (reserved ${reservedA} -> ${a.reserved}, consumed 0 -> ${a.consumed})`,
    );
    if (overrun instanceof ConformanceFailure && overrun.rule === 'reservation-count') {
      // More than B reserved can only have come from someone else's reservation.
      fail('reservation-private', `${where}: while job A's reservation was outstanding, ${overrun.message.replace(/^\[iopgt\] \[conformance\] [a-z-]+: /, '')}`, overrun);
    }
    if (overrun !== null) throw overrun;
    J.release(b, `${where}, job B`);
  }
  // A trim or shrinker between prepare and release may only take idle pages.
  J.h.flush();
  J.h.instance.drain?.();
  J.h.checkAccounting(`${where}, after flushDone() and drain() with job A outstanding`);
  const failed = J.run(a, `${where}, job A`, () => J.perform(vmA, opsA, RUN_CTX));
  check(failed < 0, 'reservation-private', () =>
    `${where}: job A (reserved ${reservedA}) ran out of its reservation after job B ran and the allocator was drained: another job or the shrinker took from it`,
  );
  J.release(a, `${where}, job A`);
  J.teardown();
}

function admissionCheck<A extends TableAllocator>(factory: Factory<A>, options: Options<A>, config: TableConfig, limit: number): void {
  const J = new Jobs(factory, options);
  const vm = J.vm(config);
  const { G, B2 } = spans(vm);
  const g = vm.pt.geometry;
  const depth = 3 - g.startLevel;
  const windows = Math.floor(2 ** g.ias / B2);
  const where = `${config.label}: admission (limit ${limit})`;
  // Ten jobs of about a third of the limit each: together three times what may be outstanding.
  const perJob = Math.max(1, Math.floor(limit / 3 / depth));
  const jobs: ScenarioOp[][] = [];
  for (let j = 0; j < 10 && (j + 1) * perJob <= windows; j++) {
    jobs.push(Array.from({ length: perJob }, (_, i) => map((j * perJob + i) * B2, G, 1)));
  }
  const outstanding: Array<{ h: ReservationHandle; ops: ScenarioOp[] }> = [];
  const finish = () => {
    const o = outstanding.shift()!;
    const failed = J.run(o.h, where, () => J.perform(vm, o.ops, RUN_CTX));
    if (failed >= 0) fail('reservation-count', `${where}: an admitted job ran out of its reservation`);
    J.release(o.h, where);
  };
  for (const [j, ops] of jobs.entries()) {
    for (;;) {
      const held = J.h.backing.heldBytes;
      const r = J.prepare(vm, { ops }, `${where}, job ${j}`);
      if (r === null) fail('admission', `${where}: job ${j} failed instead of waiting for ${outstanding.length} outstanding jobs to release`);
      if (r === 'wait') {
        check(J.h.backing.heldBytes === held, 'admission', () => `${where}: job ${j} was told to wait but took ${J.h.backing.heldBytes - held} bytes of backing memory`);
        if (outstanding.length === 0) fail('admission', `${where}: job ${j} was told to wait with nothing outstanding: it could never be admitted`);
        finish(); // the oldest job completes and releases, then the waiter retries
        continue;
      }
      outstanding.push({ h: r, ops });
      let sum = 0;
      let largest = 0;
      for (const o of outstanding) {
        sum += o.h.reserved;
        largest = Math.max(largest, o.h.reserved);
      }
      check(sum <= limit + largest, 'admission', () => `${where}: ${outstanding.length} jobs hold ${sum} reserved tables, more than the limit ${limit} + one job (${largest})`);
      break;
    }
  }
  while (outstanding.length > 0) finish();
  // A job larger than the limit is admitted once nothing else is outstanding.
  if (limit <= 4096 && limit + 1 <= windows) {
    const big = Array.from({ length: limit + 1 }, (_, i) => map(i * B2, G, 1));
    const r = J.prepare(vm, { ops: big }, `${where}, a job larger than the limit`);
    if (r === 'wait') fail('admission', `${where}: a job larger than the limit waits with nothing outstanding: it could never be admitted`);
    if (r !== null) J.release(r, `${where}, a job larger than the limit`);
  }
  J.teardown();
}

export function reservationChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  const adapter = options.reservation;
  if (adapter === undefined) return [];
  const configs = selectConfigs(options);
  const first = configs[0];
  if (first === undefined) return [];
  const checks: ConformanceCheck[] = [
    {
      title: 'run-phase-backing-call + reservation-count: random jobs on a pre-existing tree never reach the backing store in run and never consume more than reserved (ctx.mayBlock ignored)',
      run: () => sequenceCheck(factory, options, configs, false),
    },
    {
      title: 'reservation-count: on an empty tree mapped with granule pages consumed == reserved (48-bit 4K: one page reserves 3, two pages across 2 MiB reserve 4)',
      run: () => tightCheck(factory, options, configs),
    },
    ...(adapter.splitPolicies ?? ['forbid']).map((policy) => ({
      title: `reservation-count: unmaps under split policy '${policy}' reserve ${policy === 'forbid' ? 'nothing' : 'one leaf table per ragged edge that cuts a block (1 when both edges cut the same block)'}`,
      run: () => splitCheck(factory, options, first, policy),
    })),
    ...configs.map((config) => ({
      title: `${config.label}: reservation-exhausted: a run that outgrows its reservation fails with ENOMEM, tree and IOMMU consistent, unusable VMs refuse later jobs`,
      run: () => exhaustionCheck(factory, options, config),
    })),
    {
      title: 'reservation-count: a table allocated and freed unlinked during run keeps consumed <= reserved',
      run: () => lostAllocationCheck(factory, options, first),
    },
    {
      title: 'release-once: release returns unused pages exactly once, idempotent, after never-run, partial and failed runs',
      run: () => releaseCheck(factory, options, first),
    },
    ...configs.map((config) => ({
      title: `${config.label}: release-once: failing the k-th backing allocation of prepare for every k returns null and keeps nothing`,
      run: () => prepareFaultCheck(factory, options, config),
    })),
    {
      title: 'reservation-private: another job overrunning its reservation, flushDone() and drain() cannot take from a prepared job',
      run: () => privateCheck(factory, options, first),
    },
  ];
  if (adapter.merges === true) {
    checks.push({
      title: 'reservation-count: merged counts of shuffled, tiny, sparse multi-op jobs remain upper bounds',
      run: () => sequenceCheck(factory, options, configs, true),
    });
  }
  if (adapter.admissionLimit !== undefined) {
    const limit = adapter.admissionLimit;
    checks.push({
      title: `admission: reserved and unreleased tables stay <= limit ${limit} + one job; jobs that do not fit wait instead of failing`,
      run: () => admissionCheck(factory, options, first, limit),
    });
  }
  return checks;
}
