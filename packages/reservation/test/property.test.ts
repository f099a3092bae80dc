import { assertAccounting } from '@io-pgtable/allocator-api';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { tablesNeeded, type BindOp, type CountOp, type MergeStrategy } from '../src/index.js';
import { SHAPES, rig, type Shape } from './helpers.js';

const NUM_RUNS = 60;

/** Page sizes of a shape, ascending. */
function sizesOf(shape: Shape): number[] {
  const out: number[] = [];
  const bm = Number(shape.cfg.pgsizeBitmap);
  for (let s = 4096; s <= bm; s *= 2) if (Math.floor(bm / s) % 2 === 1) out.push(s);
  return out;
}

/** Random map ops inside a window of `span` bytes, aligned to their page size. */
function mapOps(shape: Shape, maxOps: number, spanPages: number, fourKOnly = false) {
  const sizes = sizesOf(shape);
  const granule = sizes[0]!;
  const big = sizes[1];
  return fc.array(
    fc.record({
      page: fc.integer({ min: 0, max: spanPages - 1 }),
      pages: fc.integer({ min: 1, max: 40 }),
      block: fourKOnly || big === undefined ? fc.constant(false) : fc.boolean(),
    }),
    { minLength: 1, maxLength: maxOps },
  ).map((list) =>
    list.map(({ page, pages, block }): BindOp => {
      const pgsize = block ? big! : granule;
      const iova = Math.floor((page * granule) / pgsize) * pgsize;
      const size = (block ? 1 : pages) * pgsize;
      return { kind: 'map', iova, size, paddr: iova, pgsize };
    }),
  );
}

function toCount(ops: readonly BindOp[]): CountOp[] {
  return ops.map((op) => (op.kind === 'map' ? { kind: 'map', iova: op.iova, size: op.size, ...(op.pgsize ? { pgsize: op.pgsize } : {}) } : { kind: 'unmap', iova: op.iova, size: op.size }));
}

describe.each(SHAPES)('$label', (shape) => {
  const bitmap = Number(shape.cfg.pgsizeBitmap);

  it.each<MergeStrategy>(['per-op', 'msm', 'union'])('on any pre-existing tree, tables consumed <= reserved (%s)', (merge) => {
    fc.assert(
      fc.property(mapOps(shape, 6, 4096), mapOps(shape, 6, 4096), (before, job) => {
        const { allocator, vm, backing } = rig(shape);
        // Build the pre-existing tree with a generous reservation.
        const pre = allocator.prepare(tablesNeeded(vm.geometry, toCount(before), { pgsizeBitmap: bitmap }).total);
        vm.run(pre, before);
        pre.release();
        const count = tablesNeeded(vm.geometry, toCount(job), { pgsizeBitmap: bitmap, merge }).total;
        const r = allocator.prepare(count);
        const calls = backing.allocCalls;
        const res = vm.run(r, job);
        expect(backing.allocCalls).toBe(calls); // run never reaches the backing allocator
        expect(r.consumed).toBeLessThanOrEqual(r.reserved);
        expect(r.exhausted).toBe(false);
        if (!res.ok) expect(res.error.reason).not.toBe('exhausted'); // EEXIST over the old tree is fine
        r.release();
        assertAccounting(allocator);
        vm.destroy();
        expect(backing.stats().outstanding).toBe(0);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('on an empty tree mapped with granule pages only, consumed == reserved (one op per-op; disjoint ops union)', () => {
    fc.assert(
      fc.property(mapOps(shape, 5, 1 << 16, true), (ops) => {
        const { allocator, vm } = rig(shape);
        // Make the ops disjoint, keeping order: drop any op overlapping an earlier one.
        const kept: BindOp[] = [];
        for (const op of ops) if (!kept.some((k) => k.iova < op.iova + op.size && op.iova < k.iova + k.size)) kept.push(op);
        const single = allocator.prepare(tablesNeeded(vm.geometry, toCount([kept[0]!]), { pgsizeBitmap: bitmap }).total);
        expect(vm.run(single, [kept[0]!]).ok).toBe(true);
        expect(single.consumed).toBe(single.reserved);
        single.release();
        vm.destroy();

        const two = rig(shape);
        const r = two.allocator.prepare(tablesNeeded(two.vm.geometry, toCount(kept), { pgsizeBitmap: bitmap, merge: 'union' }).total);
        expect(two.vm.run(r, kept).ok).toBe(true);
        expect(r.consumed).toBe(r.reserved);
        r.release();
        two.vm.destroy();
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('merged counts stay upper bounds over shuffled tiny sparse ops', () => {
    const granule = sizesOf(shape)[0]!;
    const tiny = fc
      .uniqueArray(fc.integer({ min: 0, max: 1 << 14 }), { minLength: 1, maxLength: 40 })
      .chain((pages) => fc.shuffledSubarray(pages, { minLength: pages.length, maxLength: pages.length }))
      .map((pages) => pages.map((p): BindOp => ({ kind: 'map', iova: p * granule * 3, size: granule, paddr: p * granule * 3 })));
    fc.assert(
      fc.property(tiny, (ops) => {
        const { allocator, vm } = rig(shape);
        const perOp = tablesNeeded(vm.geometry, toCount(ops), { pgsizeBitmap: bitmap }).total;
        const msm = tablesNeeded(vm.geometry, toCount(ops), { pgsizeBitmap: bitmap, merge: 'msm' }).total;
        const union = tablesNeeded(vm.geometry, toCount(ops), { pgsizeBitmap: bitmap, merge: 'union' }).total;
        expect(union).toBeLessThanOrEqual(msm);
        expect(msm).toBeLessThanOrEqual(perOp);
        const r = allocator.prepare(msm);
        expect(vm.run(r, ops).ok).toBe(true);
        // Empty tree, granule pages: the union count is exactly what the run consumes.
        expect(r.consumed).toBe(union);
        expect(r.consumed).toBeLessThanOrEqual(msm);
        r.release();
        vm.destroy();
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('fault injection at every backing allocation of prepare', () => {
  it.each(SHAPES)('$label: a failed prepare returns everything and leaves the VM usable', (shape) => {
    const ops: BindOp[] = [{ kind: 'map', iova: 0, size: 64 * sizesOf(shape)[0]!, paddr: 0 }];
    const probe = rig(shape);
    const need = tablesNeeded(probe.vm.geometry, toCount(ops)).total;
    probe.vm.destroy();
    expect(need).toBeGreaterThan(0);
    for (let k = 0; k < need; k++) {
      // Call 0 is the PGD at VM creation; prepare's calls are 1..need.
      const { allocator, vm, backing } = rig(shape, {}, (i) => i === k + 1);
      const pgdBytes = backing.stats().outstanding;
      const r = allocator.prepare(need);
      expect(r.state).toBe('failed');
      expect(r.reserved).toBe(0);
      expect(backing.stats().outstanding).toBe(pgdBytes); // the k pages taken were given back
      expect(r.release()).toBe(0);
      expect(r.release()).toBe(0);
      assertAccounting(allocator);
      // The same VM works with a retry.
      const again = allocator.prepare(need);
      expect(again.state).toBe('ready');
      expect(vm.run(again, ops).ok).toBe(true);
      again.release();
      vm.destroy();
      expect(backing.stats().outstanding).toBe(0);
    }
  });
});
