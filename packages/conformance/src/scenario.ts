import type { TableAllocator } from '@io-pgtable/allocator-api';
import type { Harness, Vm } from './harness.js';

/** Data physical address for an IOVA: keeps block alignment, stays below 2^40. */
export function paFor(iova: number): number {
  return 2 ** 32 + (iova % 2 ** 36);
}

export type ScenarioOp =
  | { readonly kind: 'map'; readonly iova: number; readonly pgsize: number; readonly count: number }
  | { readonly kind: 'unmap'; readonly iova: number; readonly size: number; readonly pgsize: number };

/** Sizes of a page table's levels: granule (L3), one L3 table's span (B2) and one L2 table's span (B1). */
export function spans(vm: Vm): { G: number; B2: number; B1: number; far: boolean; b1Block: boolean } {
  const g = vm.pt.geometry;
  const G = g.granule;
  const B2 = g.blockSize[2]!;
  const B1 = g.blockSize[1]!;
  const far = 2 * B1 <= 2 ** vm.pt.cfg.ias;
  const b1Block = far && Math.floor(vm.pt.cfg.pgsizeBitmap / B1) % 2 === 1;
  return { G, B2, B1, far, b1Block };
}

/**
 * The standard scenario: creates tables at every level, frees leaf tables by unmapping
 * the block that covers them (the kernel's only way to free a table before teardown),
 * maps blocks, and reuses freed IOVA ranges. About ten allocations per page table.
 */
export function standardScenario(vm: Vm): ScenarioOp[] {
  const { G, B2, B1, far, b1Block } = spans(vm);
  const ops: ScenarioOp[] = [
    { kind: 'map', iova: 0, pgsize: G, count: 8 },
    { kind: 'map', iova: B2 + G, pgsize: G, count: 1 },
  ];
  if (far) ops.push({ kind: 'map', iova: B1, pgsize: G, count: 2 });
  ops.push(
    { kind: 'map', iova: 3 * B2, pgsize: B2, count: 1 },
    { kind: 'unmap', iova: 0, size: B2, pgsize: B2 },
    { kind: 'map', iova: 0, pgsize: G, count: 4 },
    { kind: 'map', iova: 4 * B2, pgsize: G, count: 1 },
    { kind: 'unmap', iova: B2, size: B2, pgsize: B2 },
    { kind: 'unmap', iova: 3 * B2, size: B2, pgsize: B2 },
  );
  if (far) ops.push({ kind: 'unmap', iova: B1, size: b1Block ? B1 : B2, pgsize: b1Block ? B1 : B2 });
  ops.push({ kind: 'map', iova: 2 * B2, pgsize: G, count: 3 }, { kind: 'map', iova: B2, pgsize: G, count: 2 });
  return ops;
}

/**
 * Run ops, calling `after` at every quiescent point. An unmap of a range the oracle
 * holds nothing in is skipped (an earlier map may have failed under fault injection).
 * Returns the number of maps that failed with ENOMEM.
 */
export function runOps<A extends TableAllocator>(h: Harness<A>, vm: Vm, ops: readonly ScenarioOp[], after: (where: string) => void): number {
  let enomem = 0;
  for (const [i, op] of ops.entries()) {
    const where = `${vm.config.label}, op ${i} (${op.kind} 0x${op.iova.toString(16)})`;
    if (op.kind === 'map') {
      if (h.map(vm, op.iova, paFor(op.iova), op.pgsize, op.count) === 'ENOMEM') enomem++;
    } else if (vm.maps.some((m) => m.iova < op.iova + op.size && op.iova < m.iova + m.size)) {
      h.unmap(vm, op.iova, op.size, op.pgsize);
    }
    after(where);
  }
  return enomem;
}
