import { MAX_LEVELS } from './constants.js';

/**
 * Everything about a table's shape, derived once from the granule, ias and the start
 * level (aarch64-paging style): nothing else recomputes shifts.
 */
export interface Geometry {
  /** Granule (leaf page and table size) in bytes: 4096, 16384 or 65536. */
  readonly granule: number;
  readonly pgShift: number;
  /** Index bits per table level: 9, 11 or 13. */
  readonly bitsPerLevel: number;
  /** Entries in a granule-sized table. */
  readonly ptesPerTable: number;
  readonly startLevel: number;
  /** Index bits of the start level (concatenation adds, small PGDs subtract; Mali may be 0). */
  readonly pgdBits: number;
  /** PGD size in bytes: 8 << pgdBits. */
  readonly pgdSize: number;
  /** Entries in the PGD. */
  readonly pgdEntries: number;
  readonly ias: number;
  readonly oas: number;
  /** Shift of the address bits a level indexes, per level 0..3 (undefined past 3). */
  readonly levelShift: readonly number[];
  /** Block (or page) size mapped by one entry, per level 0..3. */
  readonly blockSize: readonly number[];
  /** Number of index values at each level (2^bits; the start level uses pgdBits). */
  readonly indexCount: readonly number[];
}

export function makeGeometry(p: {
  granule: number;
  startLevel: number;
  pgdBits: number;
  ias: number;
  oas: number;
}): Geometry {
  const pgShift = Math.log2(p.granule);
  const bitsPerLevel = pgShift - 3;
  const levelShift: number[] = [];
  const blockSize: number[] = [];
  const indexCount: number[] = [];
  for (let l = 0; l <= MAX_LEVELS; l++) {
    const shift = (MAX_LEVELS - l) * bitsPerLevel + 3;
    levelShift.push(shift);
    blockSize.push(2 ** shift);
    indexCount.push(2 ** (l === p.startLevel ? p.pgdBits : bitsPerLevel));
  }
  // Not Object.freeze: V8 reads elements of frozen arrays ~10x slower, and these tables
  // are read on every level of every walk. `readonly` types keep them immutable.
  return {
    granule: p.granule,
    pgShift,
    bitsPerLevel,
    ptesPerTable: p.granule / 8,
    startLevel: p.startLevel,
    pgdBits: p.pgdBits,
    pgdSize: 8 * 2 ** p.pgdBits,
    pgdEntries: 2 ** p.pgdBits,
    ias: p.ias,
    oas: p.oas,
    levelShift,
    blockSize,
    indexCount,
  };
}

/**
 * Index of `iova` (low 52 bits, non-negative) at `level`: ARM_LPAE_LVL_IDX. Bits above
 * the level's index width are masked away, so addresses above ias alias (as in Linux).
 */
export function levelIndex(g: Geometry, iova52: number, level: number): number {
  return Math.floor(iova52 / g.blockSize[level]!) % g.indexCount[level]!;
}

/** Entries left in the granule-sized table page holding `idx`: arm_lpae_max_entries. */
export function maxEntries(g: Geometry, idx: number): number {
  return g.ptesPerTable - (idx & (g.ptesPerTable - 1));
}

/** Size in bytes of the table at `level`: the PGD size at the start level, else one granule. */
export function tableSize(g: Geometry, level: number): number {
  return level === g.startLevel ? g.pgdSize : g.granule;
}
