/**
 * Counting against the current tree, made safe for queued jobs.
 *
 * Subtracting every table that exists now is NOT safe: between prepare and run, the
 * jobs queued ahead (and this job's own earlier ops) may free tables. io-pgtable frees
 * a table only when an op covers the whole entry pointing at it: an unmap whose page
 * size equals that entry's span, or a block mapped over an empty table. So a table
 * that exists now is still there when the op needing it runs unless some op that runs
 * before it covers the table's whole window. The count keeps every window such an op
 * covers and drops the others that have a table now. It holds as long as every change
 * to the tree goes through the queue (no side-channel unmaps) and ops run in order.
 */
import { pte, type Geometry, type PageTable } from '@io-pgtable/core';
import { allBlockSizes, forEachWindow, tablesNeeded, type CountOp, type CountPolicy, type TableCount } from './count.js';

/** Beyond this many windows at one level, skip the tree lookups and count them all. */
const MAX_LOOKUPS_PER_RANGE = 4096;

/**
 * Tables `ops` can still allocate when run after `aheadOps` on the tree of `pageTable`
 * as it is now. Upper bound under the conditions above; never above the `union` count.
 */
export function tablesNeededOnTree(pageTable: PageTable, ops: readonly CountOp[], aheadOps: readonly CountOp[], policy: Omit<CountPolicy, 'merge'> = {}): TableCount {
  const g = pageTable.geometry;
  // Validation (throws CountError) and the split/bitmap defaults come from the plain count.
  tablesNeeded(g, ops, { ...policy, merge: 'union' });
  const bitmap = policy.pgsizeBitmap ?? allBlockSizes(g);
  const largest = largestBlock(g, bitmap);
  // Ranges that may free tables before op i runs: everything ahead, then ops 0..i-1.
  const risky: Array<[number, number]> = [];
  const addRisky = (op: CountOp) => {
    // A split unmap widens to the blocks it cuts.
    const a = op.kind === 'unmap' ? Math.floor(op.iova / largest) * largest : op.iova;
    const b = op.kind === 'unmap' ? Math.ceil((op.iova + op.size) / largest) * largest : op.iova + op.size;
    risky.push([a, b]);
  };
  for (const op of aheadOps) addRisky(op);
  const perLevel = [0, 0, 0, 0];
  let opDone = -1;
  forEachWindow(g, ops, { ...policy, merge: 'union' }, (level, a, b, opIndex) => {
    while (opDone + 1 < opIndex) addRisky(ops[++opDone]!);
    if (b - a > MAX_LOOKUPS_PER_RANGE) {
      perLevel[level]! += b - a;
      return;
    }
    const span = g.blockSize[level - 1]!;
    for (let w = a; w < b; w++) {
      const start = w * span;
      if (hasTable(pageTable, g, start, level) && !coveredBy(risky, start, start + span)) continue;
      perLevel[level]!++;
    }
  });
  return { total: perLevel[0]! + perLevel[1]! + perLevel[2]! + perLevel[3]!, perLevel };
}

function largestBlock(g: Geometry, bitmap: number): number {
  for (let l = g.startLevel; l <= 3; l++) {
    const s = g.blockSize[l]!;
    if (Math.floor(bitmap / s) % 2 === 1) return s;
  }
  return g.granule;
}

/** Does a table at `level` exist for the window starting at `iova`? (The entry above it is a table.) */
function hasTable(pt: PageTable, g: Geometry, iova: number, level: number): boolean {
  const walk = pt.pgtableWalk(iova < 0 ? BigInt.asUintN(64, BigInt(iova)) : iova);
  const parent = walk.ptes[level - 1];
  // Core's descriptor codec decides what a table descriptor is (no decoder of our own).
  return parent !== undefined && level - 1 >= g.startLevel && pte.isTable(pte.pteFromBigInt(parent).lo, level - 1);
}

function coveredBy(ranges: ReadonlyArray<[number, number]>, a: number, b: number): boolean {
  for (const [s, e] of ranges) if (s <= a && e >= b) return true;
  return false;
}
