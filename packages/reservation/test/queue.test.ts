import { assertAccounting } from '@io-pgtable/allocator-api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { VmBindQueue, createAdmission, type BindOp, type CountStrategy } from '../src/index.js';
import { SHAPES, SZ_2M, SZ_4K, rig } from './helpers.js';

const PANTHOR = SHAPES[0]!;

describe('admission control (requirement 15)', () => {
  it('jobs that do not fit wait, in FIFO order, and outstanding stays <= limit + one job', async () => {
    const adm = createAdmission({ limit: 10 });
    const a = adm.tryAcquire(6)!;
    expect(adm.tryAcquire(6)).toBe(null);
    const order: number[] = [];
    const p1 = adm.acquire(6).then((t) => (order.push(1), t));
    const p2 = adm.acquire(1).then((t) => (order.push(2), t));
    // A small job does not overtake a waiting one.
    expect(adm.tryAcquire(1)).toBe(null);
    expect(adm.counters()).toMatchObject({ outstanding: 6, waiting: 2 });
    a.release();
    a.release(); // idempotent
    const [t1, t2] = await Promise.all([p1, p2]);
    expect(order).toEqual([1, 2]);
    expect(adm.counters().outstanding).toBe(7);
    t1.release();
    t2.release();
    expect(adm.counters()).toMatchObject({ outstanding: 0, peak: 7, waited: 2 });
  });

  it('a job larger than the limit is admitted alone', async () => {
    const adm = createAdmission({ limit: 4 });
    const big = await adm.acquire(9);
    expect(adm.tryAcquire(1)).toBe(null);
    big.release();
    expect(adm.tryAcquire(1)).not.toBe(null);
  });

  it('N queued jobs against a limit: the peak never passes limit + largest job', async () => {
    const { vm, allocator, backing } = rig(PANTHOR);
    const admission = createAdmission({ limit: 12 });
    const q = new VmBindQueue(vm, { admission });
    const submits: Promise<unknown>[] = [];
    for (let i = 0; i < 20; i++) submits.push(q.submit([{ kind: 'map', iova: i * SZ_2M * 7, size: SZ_4K, paddr: 0 }]));
    // Drive the queue as the scheduler and the cleanup worker would, in explicit steps:
    // admission and submit settle through promise jobs only, so draining the microtask
    // queue between steps is deterministic (no timers), and the step bound ends a stall.
    const drain = async () => {
      for (let i = 0; i < 16; i++) await Promise.resolve();
    };
    for (let step = 0; q.counters().ran < 20; step++) {
      expect(step, 'the queue stalled').toBeLessThan(200);
      await drain();
      q.runAll();
      q.cleanup();
    }
    await Promise.all(submits);
    expect(admission.counters().peak).toBeLessThanOrEqual(12 + 3);
    expect(admission.counters().waited).toBeGreaterThan(0);
    expect(q.counters()).toMatchObject({ submitted: 20, ran: 20, runFailures: 0, reserved: 60, consumed: 3 + 19 });
    assertAccounting(allocator);
    vm.destroy();
    expect(backing.stats().outstanding).toBe(0);
  });

  it('bad limits and counts are RangeErrors', () => {
    expect(() => createAdmission({ limit: -1 })).toThrow(RangeError);
    expect(() => createAdmission({ limit: 1 }).tryAcquire(0.5)).toThrow(RangeError);
  });
});

describe('VM_BIND queue', () => {
  it('prepares at submit, runs in order, and cleans up out of the run path', () => {
    const { vm, allocator, backing } = rig(PANTHOR);
    const q = new VmBindQueue(vm);
    const j1 = q.trySubmit([{ kind: 'map', iova: 0, size: 2 * SZ_4K, paddr: 0x10_0000 }]);
    const j2 = q.trySubmit([{ kind: 'unmap', iova: 0, size: SZ_4K }, { kind: 'map', iova: 0, size: SZ_4K, paddr: 0x30_0000 }]);
    expect(j1 !== 'wait' && j1.state).toBe('queued');
    expect(q.pending.length).toBe(2);
    expect(allocator.stats().reserved).toBe(6 * 4096);
    const ran = q.runAll();
    expect(ran.map((j) => [j.state, j.count, j.consumed])).toEqual([
      ['done', 3, 3],
      ['done', 3, 0],
    ]);
    expect(vm.pageTable.iovaToPhys(0)).toBe(0x30_0000);
    expect(vm.pageTable.iovaToPhys(SZ_4K)).toBe(0x10_1000);
    expect(allocator.stats().reserved).toBe(3 * 4096); // not released in the run path
    expect(q.cleanup()).toBe(3);
    expect(j2 !== 'wait' && j2.state).toBe('cleaned');
    assertAccounting(allocator);
    vm.destroy();
    expect(backing.stats().outstanding).toBe(0);
  });

  it('a job whose prepare fails is failed at submit and holds nothing', () => {
    const { vm, backing } = rig(PANTHOR, {}, (i) => i === 2);
    const q = new VmBindQueue(vm);
    const j = q.trySubmit([{ kind: 'map', iova: 0, size: SZ_4K, paddr: 0 }]);
    expect(j !== 'wait' && j.state).toBe('failed');
    expect(j !== 'wait' && j.error?.name).toBe('PrepareFailure');
    expect(q.pending.length).toBe(0);
    q.cleanup();
    vm.destroy();
    expect(backing.stats().outstanding).toBe(0);
  });

  it('cancelAll releases queued jobs without running them', () => {
    const { vm, backing } = rig(PANTHOR);
    const q = new VmBindQueue(vm);
    q.trySubmit([{ kind: 'map', iova: 0, size: SZ_4K, paddr: 0 }]);
    expect(q.cancelAll()).toBe(3);
    vm.destroy();
    expect(backing.stats().outstanding).toBe(0);
  });
});

describe('split policy in the run (requirement 9, both policies)', () => {
  const block: BindOp = { kind: 'map', iova: SZ_2M, size: SZ_2M, paddr: 0x4000_0000, pgsize: SZ_2M };
  const cut: BindOp = { kind: 'unmap', iova: SZ_2M + 0x10_0000, size: SZ_4K };

  it('none: an unmap cutting a block is refused with EINVAL and changes nothing', () => {
    const { vm } = rig(PANTHOR, { split: 'none' });
    const q = new VmBindQueue(vm);
    q.trySubmit([block]);
    const j = q.trySubmit([cut]);
    expect(j !== 'wait' && j.count).toBe(0);
    const [, r] = q.runAll();
    expect(r!.error).toMatchObject({ code: 'EINVAL', reason: 'block-cut' });
    expect(vm.pageTable.iovaToPhys(SZ_2M + 0x10_0000)).toBe(0x4010_0000);
  });

  it('split: the block is unmapped and its borders remapped from the one reserved leaf table', () => {
    const { vm, allocator, backing } = rig(PANTHOR, { split: 'split' });
    const q = new VmBindQueue(vm);
    q.trySubmit([block]);
    const j = q.trySubmit([cut]);
    expect(j !== 'wait' && j.count).toBe(1);
    const [, r] = q.runAll();
    expect([r!.state, r!.consumed]).toEqual(['done', 1]);
    expect(vm.pageTable.iovaToPhys(SZ_2M + 0x10_0000)).toBe(0);
    expect(vm.pageTable.iovaToPhys(SZ_2M + 0x10_0000 - SZ_4K)).toBe(0x4010_0000 - SZ_4K);
    expect(vm.pageTable.iovaToPhys(SZ_2M + 0x10_1000)).toBe(0x4010_1000);
    expect(vm.pageTable.lookup(SZ_2M).kind === 'mapped' && vm.pageTable.lookup(SZ_2M)).toMatchObject({ level: 3 });
    q.cleanup();
    assertAccounting(allocator);
    vm.destroy();
    expect(backing.stats().outstanding).toBe(0);
  });
});

describe('queued jobs: every strategy stays an upper bound (including tree-aware counting)', () => {
  // Jobs of maps (4K runs and 2 MiB blocks) and unmaps over an 8 MiB window, queued 3 deep.
  const op = fc.oneof(
    fc.record({ page: fc.integer({ min: 0, max: 2047 }), pages: fc.integer({ min: 1, max: 1024 }) }).map(({ page, pages }): BindOp => ({ kind: 'map', iova: page * SZ_4K, size: Math.min(pages, 2048 - page) * SZ_4K, paddr: page * SZ_4K, pgsize: SZ_4K })),
    fc.integer({ min: 0, max: 3 }).map((b): BindOp => ({ kind: 'map', iova: b * SZ_2M, size: SZ_2M, paddr: b * SZ_2M, pgsize: SZ_2M })),
    fc.record({ b: fc.integer({ min: 0, max: 3 }), n: fc.integer({ min: 1, max: 2 }) }).map(({ b, n }): BindOp => ({ kind: 'unmap', iova: b * SZ_2M, size: Math.min(n, 4 - b) * SZ_2M })),
  );
  const jobs = fc.array(fc.array(op, { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 9 });

  const auto = fc.record({ b: fc.integer({ min: 0, max: 1023 }), n: fc.integer({ min: 1, max: 1100 }), off: fc.constantFrom(0, SZ_4K) }).map(
    ({ b, n, off }): BindOp => ({ kind: 'map', iova: b * SZ_4K, size: Math.min(n, 2048 - b) * SZ_4K, paddr: b * SZ_4K + off }),
  );
  const mixed = fc.array(fc.array(fc.oneof(op, auto), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 9 });
  it.each<[CountStrategy, boolean]>([
    ['per-op', false],
    ['msm', false],
    ['union', false],
    ['tree', false],
    ['per-op', true],
    ['msm', true],
    ['union', true],
    ['tree', true],
  ])('%s (exact page sizes: %s)', (strategy, exactPageSizes) => {
    fc.assert(
      fc.property(exactPageSizes ? mixed : jobs, (list) => {
        const { vm, allocator, backing } = rig(PANTHOR);
        const q = new VmBindQueue(vm, { strategy, exactPageSizes });
        for (let i = 0; i < list.length; i++) {
          q.trySubmit(list[i]!);
          if (i % 3 === 2) q.runAll();
        }
        q.runAll();
        q.cleanup();
        expect(vm.unusable).toBe(false);
        expect(allocator.counters().exhaustions).toBe(0);
        const c = q.counters();
        expect(c.consumed).toBeLessThanOrEqual(c.reserved);
        assertAccounting(allocator);
        vm.destroy();
        expect(backing.stats().outstanding).toBe(0);
      }),
      { numRuns: 150 },
    );
  });
});
