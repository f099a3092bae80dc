/**
 * How many tables a job may allocate, counted as Panthor does at VM_BIND job creation
 * (`panthor_vm_op_ctx_prealloc_pts`): for each map, at every level below the root down
 * to the level of its page size, one table per naturally aligned region that level's
 * tables cover. The count assumes nothing is mapped yet (the worst case, and exact on an
 * empty tree); unmaps reserve nothing because splitting a block is refused (Linux >= 6.13).
 */

/** The part of core's `Geometry` the count needs. */
export interface CountGeometry {
  readonly granule: number;
  readonly startLevel: number;
  /** Bytes mapped by one entry, per level 0..3. */
  readonly blockSize: readonly number[];
}

/** One op of a job (addresses and sizes in bytes, below 2^53). */
export interface CountOp {
  readonly kind: 'map' | 'unmap';
  readonly iova: number;
  readonly size: number;
  /** Page size the map uses (default: the granule, the worst case). */
  readonly pgsize?: number;
}

/** Tables a job of `ops` may allocate on a tree that has its root. */
export function tablesForJob(g: CountGeometry, ops: readonly CountOp[]): number {
  let total = 0;
  for (const op of ops) {
    if (op.kind !== 'map' || op.size <= 0) continue;
    const pgsize = op.pgsize ?? g.granule;
    let leaf = 3;
    while (leaf > g.startLevel && g.blockSize[leaf] !== pgsize) leaf--;
    if (g.blockSize[leaf] !== pgsize) throw new RangeError(`[iopgt] [c-allocator] page size ${pgsize} is not a block size of this geometry`);
    const last = op.iova + op.size - 1;
    for (let l = g.startLevel + 1; l <= leaf; l++) {
      const span = g.blockSize[l - 1]!;
      total += Math.floor(last / span) - Math.floor(op.iova / span) + 1;
    }
  }
  return total;
}
