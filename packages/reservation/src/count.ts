/**
 * Worst-case page-table counting for VM_BIND jobs: how many granule-sized tables a
 * job's map and unmap operations can allocate, computed from the geometry alone (the
 * tree the job will run against is not known at prepare time: earlier queued jobs
 * change it first).
 *
 * A map of [iova, iova + size) with leaves at level Lp needs, at each non-root level
 * M = startLevel+1 .. Lp, one table per naturally aligned window of `blockSize[M-1]`
 * (the span of the parent entry) that the range touches. The root never counts: it
 * exists from VM creation. Concatenated stage-2 PGDs, short start levels and Mali's
 * forced 4-level walk all fall out of `startLevel`/`blockSize`.
 */
import { describeValue } from '@io-pgtable/allocator-api';
import type { Geometry } from '@io-pgtable/core';

/** How an unmap that cuts a block mapping is handled. */
export type CountSplitPolicy =
  /** Never split (Linux >= 6.13, 33729a5fc0ca): unmaps reserve nothing. */
  | 'none'
  /** Unmap the whole block, then remap the border pieces with the largest pages (Panthor's partial-unmap fix). */
  | 'split';

/**
 * How the ops of one job are combined before counting.
 *  - `per-op`: each op counted alone (Panthor: one op per job).
 *  - `msm`: consecutive map ops whose ranges meet in the same leaf-table window are
 *    counted as one range (drm/msm `vm_bind_prealloc_count`).
 *  - `union`: every window touched by any op of the job is counted once.
 * `msm` and `union` restart their sharing after an op that could free a table (an unmap
 * covering a whole parent entry, or a block map over one): a freed table may have to
 * be allocated again by a later op of the same job.
 */
export type MergeStrategy = 'per-op' | 'msm' | 'union';

export interface CountMapOp {
  readonly kind: 'map';
  /** First IOVA (granule aligned; negative for TTBR1 tables, as the core's numbers). */
  readonly iova: number;
  /** Bytes (a positive multiple of the granule). */
  readonly size: number;
  /** Leaf size the op maps with; undefined = any size in the bitmap (counted as the granule, the worst case). */
  readonly pgsize?: number;
}
export interface CountUnmapOp {
  readonly kind: 'unmap';
  readonly iova: number;
  readonly size: number;
}
export type CountOp = CountMapOp | CountUnmapOp;

export interface CountPolicy {
  /** Default `none`. */
  readonly split?: CountSplitPolicy;
  /** Default `per-op`. */
  readonly merge?: MergeStrategy;
  /**
   * Page sizes the VM maps with (the effective `pgsizeBitmap`). Decides which block
   * mappings can exist (split count) and which ops can free tables. Default: every
   * level's block size from the start level down, the most pessimistic choice.
   */
  readonly pgsizeBitmap?: number;
}

/** A count that cannot be computed because an op is malformed; names the op. */
export class CountError extends Error {
  override readonly name = 'CountError';
  readonly code = 'EINVAL' as const;
  constructor(
    readonly opIndex: number,
    message: string,
  ) {
    super(`[iopgt] [reservation] EINVAL: op ${opIndex}: ${message}`);
  }
}

/** Tables per level (index = absolute level; entries above the root are 0) and their sum. */
export interface TableCount {
  readonly total: number;
  readonly perLevel: readonly number[];
}

/** Level whose entry maps `pgsize` bytes, or -1. */
export function leafLevelOf(g: Geometry, pgsize: number): number {
  for (let l = g.startLevel; l <= 3; l++) if (g.blockSize[l] === pgsize) return l;
  return -1;
}

/** Every block size of the geometry from the start level down: the default bitmap. */
export function allBlockSizes(g: Geometry): number {
  let m = 0;
  for (let l = g.startLevel; l <= 3; l++) m += g.blockSize[l]!;
  return m;
}

function inBitmap(bitmap: number, size: number): boolean {
  // Sizes reach 2^42 (4T pages), past 32-bit bit operations.
  return Math.floor(bitmap / size) % 2 === 1;
}

/** Union of half-open integer intervals per level, kept sorted and disjoint. */
class WindowSet {
  private lo: number[][] = [[], [], [], []];
  private hi: number[][] = [[], [], [], []];

  /** Add windows [a, b) at `level`; reports each new sub-range to `onNew`, returns how many were new. */
  add(level: number, a: number, b: number, onNew?: (a: number, b: number) => void): number {
    const los = this.lo[level]!;
    const his = this.hi[level]!;
    // Ops mostly arrive in order: scan from the end for the insertion point.
    let i = los.length;
    while (i > 0 && his[i - 1]! >= a) i--;
    // Intervals i..j-1 overlap or touch [a, b); the gaps between them are new.
    let j = i;
    let added = 0;
    let cursor = a;
    let na = a;
    let nb = b;
    while (j < los.length && los[j]! <= b) {
      const l = los[j]!;
      const h = his[j]!;
      if (l > cursor) {
        added += l - cursor;
        onNew?.(cursor, l);
      }
      if (h > cursor) cursor = h;
      na = Math.min(na, l);
      nb = Math.max(nb, h);
      j++;
    }
    if (cursor < b) {
      added += b - cursor;
      onNew?.(cursor, b);
    }
    los.splice(i, j - i, na);
    his.splice(i, j - i, nb);
    return added;
  }

  /** Forget windows [a, b) at `level`. */
  remove(level: number, a: number, b: number): void {
    if (b <= a) return;
    const los = this.lo[level]!;
    const his = this.hi[level]!;
    const nl: number[] = [];
    const nh: number[] = [];
    for (let i = 0; i < los.length; i++) {
      const l = los[i]!;
      const h = his[i]!;
      if (h <= a || l >= b) {
        nl.push(l);
        nh.push(h);
        continue;
      }
      if (l < a) nl.push(l), nh.push(a);
      if (h > b) nl.push(b), nh.push(h);
    }
    this.lo[level] = nl;
    this.hi[level] = nh;
  }

  clear(): void {
    for (let l = 0; l < 4; l++) {
      this.lo[l]!.length = 0;
      this.hi[l]!.length = 0;
    }
  }
}

/** Receives the windows (per level, as index ranges) an op needs. */
type Sink = (level: number, a: number, b: number) => void;

/** Windows of a run of leaves at `leafLevel` over [start, end), levels above `fromLevel` exclusive. */
function runWindows(g: Geometry, start: number, end: number, leafLevel: number, fromLevel: number, sink: Sink): void {
  for (let m = fromLevel + 1; m <= leafLevel; m++) {
    const s = g.blockSize[m - 1]!;
    sink(m, Math.floor(start / s), Math.ceil(end / s));
  }
}

/**
 * Windows the remap of a border piece [start, end) needs when it is mapped with the
 * largest pages of `bitmap` (iommu_map's page-size choice; the piece keeps the block's
 * alignment, so physical alignment follows the virtual one). Only levels below
 * `blockLevel` count: the cut block's parents exist.
 */
function remapWindows(g: Geometry, bitmap: number, start: number, end: number, blockLevel: number, sink: Sink): void {
  let p = start;
  while (p < end) {
    let level = 3;
    for (let l = blockLevel + 1; l < 3; l++) {
      const s = g.blockSize[l]!;
      if (inBitmap(bitmap, s) && p % s === 0 && p + s <= end) {
        level = l;
        break;
      }
    }
    // A run of equal pages ends where a larger page first fits, or at the end.
    const s = g.blockSize[level]!;
    let runEnd = p + Math.floor((end - p) / s) * s;
    for (let l = blockLevel + 1; l < level; l++) {
      const big = g.blockSize[l]!;
      if (!inBitmap(bitmap, big)) continue;
      const q = Math.ceil(p / big) * big;
      if (q + big <= end && q < runEnd) runEnd = q;
    }
    runWindows(g, p, runEnd, level, blockLevel, sink);
    p = runEnd;
  }
}

/**
 * The block level an edge can cut: the largest block size in the bitmap the edge is
 * not aligned to, or -1 when no block can straddle the edge.
 */
function cutLevel(g: Geometry, bitmap: number, edge: number): number {
  for (let l = g.startLevel; l < 3; l++) {
    const s = g.blockSize[l]!;
    if (inBitmap(bitmap, s) && edge % s !== 0) return l;
  }
  return -1;
}

function validate(g: Geometry, op: CountOp, i: number): void {
  if (op === null || typeof op !== 'object' || (op.kind !== 'map' && op.kind !== 'unmap')) throw new CountError(i, 'kind must be "map" or "unmap"');
  const { iova, size } = op;
  if (!Number.isSafeInteger(iova)) throw new CountError(i, `iova ${describeValue(iova)} is not a safe integer`);
  if (!Number.isSafeInteger(size) || size <= 0) throw new CountError(i, `size ${describeValue(size)} is not a positive safe integer`);
  if (iova % g.granule !== 0 || size % g.granule !== 0) throw new CountError(i, `iova ${iova} and size ${size} must be multiples of the ${g.granule}-byte granule`);
  const span = 2 ** g.ias;
  const ok = iova >= 0 ? iova + size <= span : iova >= -span && iova + size <= 0;
  if (!ok) throw new CountError(i, `[${iova}, ${iova + size}) is outside the ${g.ias}-bit input address space`);
  if (op.kind === 'map' && op.pgsize !== undefined) {
    const l = leafLevelOf(g, op.pgsize);
    if (l < 0) throw new CountError(i, `pgsize ${describeValue(op.pgsize)} is not a block or page size of this table`);
    if (iova % op.pgsize !== 0 || size % op.pgsize !== 0) throw new CountError(i, `iova ${iova} and size ${size} must be multiples of pgsize ${op.pgsize}`);
  }
}

/** Windows a single op needs (map: its path; unmap under `split`: the border remaps). */
function opWindows(g: Geometry, op: CountOp, split: CountSplitPolicy, bitmap: number, sink: Sink): void {
  if (op.kind === 'map') {
    const leaf = op.pgsize === undefined ? 3 : leafLevelOf(g, op.pgsize);
    runWindows(g, op.iova, op.iova + op.size, leaf, g.startLevel, sink);
    return;
  }
  if (split === 'none') return;
  const end = op.iova + op.size;
  const lc = cutLevel(g, bitmap, op.iova);
  if (lc >= 0) remapWindows(g, bitmap, floorTo(op.iova, g.blockSize[lc]!), op.iova, lc, sink);
  const rc = cutLevel(g, bitmap, end);
  if (rc >= 0) remapWindows(g, bitmap, end, floorTo(end, g.blockSize[rc]!) + g.blockSize[rc]!, rc, sink);
}

function floorTo(v: number, s: number): number {
  return Math.floor(v / s) * s;
}

/**
 * Can `op` free a table? io-pgtable frees a table when an unmap's page size equals the
 * span of the entry pointing at it, or a block is mapped over it. Both need the op to
 * cover a whole aligned block of a size in the bitmap.
 */
export function mayFreeTables(g: Geometry, op: CountOp, bitmap: number): boolean {
  if (op.kind === 'map') return op.pgsize !== undefined ? op.pgsize > g.granule : coversBlock(g, op, bitmap);
  return coversBlock(g, op, bitmap);
}

/**
 * Report the windows whose tables `op` may free (per level, index ranges): below every
 * whole aligned block the op covers, at a block size it may map or unmap with.
 */
function forFreeable(g: Geometry, op: CountOp, bitmap: number, sink: Sink): void {
  const fixed = op.kind === 'map' && op.pgsize !== undefined ? op.pgsize : 0;
  if (fixed === g.granule) return;
  for (let l = g.startLevel; l < 3; l++) {
    const s = g.blockSize[l]!;
    if (fixed !== 0 ? s !== fixed : !inBitmap(bitmap, s)) continue;
    const a = Math.ceil(op.iova / s) * s;
    const b = Math.floor((op.iova + op.size) / s) * s;
    if (b <= a) continue;
    for (let m = l + 1; m <= 3; m++) {
      const w = g.blockSize[m - 1]!;
      sink(m, a / w, b / w);
    }
  }
}

function coversBlock(g: Geometry, op: CountOp, bitmap: number): boolean {
  for (let l = g.startLevel; l < 3; l++) {
    const s = g.blockSize[l]!;
    if (inBitmap(bitmap, s) && Math.ceil(op.iova / s) * s + s <= op.iova + op.size) return true;
  }
  return false;
}

/**
 * Worst-case number of tables `ops` can allocate, run in order on a tree that already
 * has its root. Throws {@link CountError} for a malformed op (nothing is counted).
 *
 * @example
 * const g = configureLpae({...}).setup.geometry; // 48-bit, 4K granule
 * tablesNeeded(g, [{ kind: 'map', iova: 0x1ff000, size: 0x2000 }]).total; // 4
 */
export function tablesNeeded(g: Geometry, ops: readonly CountOp[], policy: CountPolicy = {}): TableCount {
  const split = policy.split ?? 'none';
  const merge = policy.merge ?? 'per-op';
  const bitmap = policy.pgsizeBitmap ?? allBlockSizes(g);
  if (split !== 'none' && split !== 'split') throw new CountError(-1, `unknown split policy ${describeValue(split)}`);
  if (merge !== 'per-op' && merge !== 'msm' && merge !== 'union') throw new CountError(-1, `unknown merge strategy ${describeValue(merge)}`);
  ops.forEach((op, i) => validate(g, op, i));

  const perLevel = [0, 0, 0, 0];
  const add: Sink = (level, a, b) => {
    perLevel[level]! += b - a;
  };
  if (merge === 'msm') countMsm(g, ops, split, bitmap, add);
  else forEachWindow(g, ops, { split, merge, pgsizeBitmap: bitmap }, add);
  return { total: perLevel[0]! + perLevel[1]! + perLevel[2]! + perLevel[3]!, perLevel };
}

/**
 * Report the windows (level, index range [a, b), op index) that `ops` need under the
 * `per-op` or `union` strategy, each window once per op (`per-op`) or once until an op
 * that may free a table (`union`). The ops must be valid (see {@link tablesNeeded}).
 */
export function forEachWindow(
  g: Geometry,
  ops: readonly CountOp[],
  policy: CountPolicy,
  sink: (level: number, a: number, b: number, opIndex: number) => void,
): void {
  const split = policy.split ?? 'none';
  const bitmap = policy.pgsizeBitmap ?? allBlockSizes(g);
  if (policy.merge === 'msm') throw new CountError(-1, 'forEachWindow supports the per-op and union strategies, not msm');
  const perOp = (policy.merge ?? 'per-op') === 'per-op';
  // Dedupe windows within an op (both edges of an unmap can cut the same block) and,
  // for `union`, across ops until one of them may free a table.
  const set = new WindowSet();
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!;
    if (perOp) set.clear();
    opWindows(g, op, split, bitmap, (level, a, b) => set.add(level, a, b, (x, y) => sink(level, x, y, i)));
    forFreeable(g, op, bitmap, (level, a, b) => set.remove(level, a, b));
  }
}

/**
 * msm's merge: a map op joins the current range when it starts in the leaf-table window
 * where the range ends (the range grows to the hull of both, so unsorted ops stay
 * covered). Unmaps are counted on their own and do not break a range unless they can
 * free a table.
 */
function countMsm(g: Geometry, ops: readonly CountOp[], split: CountSplitPolicy, bitmap: number, add: Sink): void {
  let start = 0;
  let end = 0;
  let leaf = -1;
  const flush = () => {
    if (leaf >= 0) runWindows(g, start, end, leaf, g.startLevel, add);
    leaf = -1;
  };
  for (const op of ops) {
    if (op.kind === 'unmap') {
      const own = new WindowSet();
      opWindows(g, op, split, bitmap, (level, a, b) => add(level, a, a + own.add(level, a, b)));
      if (mayFreeTables(g, op, bitmap)) flush();
      continue;
    }
    const opLeaf = op.pgsize === undefined ? 3 : leafLevelOf(g, op.pgsize);
    const opEnd = op.iova + op.size;
    const win = g.blockSize[2]!; // the span of one leaf table
    if (leaf >= 0 && Math.floor((end - 1) / win) === Math.floor(op.iova / win)) {
      start = Math.min(start, op.iova);
      end = Math.max(end, opEnd);
      leaf = Math.max(leaf, opLeaf);
    } else {
      flush();
      start = op.iova;
      end = opEnd;
      leaf = opLeaf;
    }
    if (mayFreeTables(g, op, bitmap)) flush();
  }
  flush();
}
