/**
 * The table shape derived again from the rules written down in FORMAT.md ("Configuration
 * rules worth knowing"), without importing core's geometry, so that a disagreement between
 * the two is a finding rather than a shared mistake.
 */
export type Fmt = 'ARM_64_LPAE_S1' | 'ARM_64_LPAE_S2' | 'ARM_32_LPAE_S1' | 'ARM_32_LPAE_S2' | 'ARM_MALI_LPAE';

export interface RefShape {
  granule: number;
  /** Entries in one granule-sized table. */
  entries: number;
  startLevel: number;
  /** Entries in the PGD (concatenated PGDs hold several granules' worth). */
  pgdEntries: number;
  pgdSize: number;
  ias: number;
  oas: number;
  /** Effective page-size bitmap, as a number (may exceed 2^32). */
  bitmap: number;
  /** Bytes covered by one entry at level 0..3. */
  blockSize: number[];
  /** Page sizes the bitmap allows, ascending. */
  pgsizes: number[];
}

const SZ_4K = 4096;
const SZ_16K = 16384;
const SZ_64K = 65536;

function sizesFor(granule: number, oas: number): number[] {
  if (granule === SZ_4K) return [SZ_4K, 2 ** 21, 2 ** 30];
  if (granule === SZ_16K) return [SZ_16K, 2 ** 25];
  return oas > 48 ? [SZ_64K, 2 ** 29, 2 ** 42] : [SZ_64K, 2 ** 29];
}

/** Derive the shape, or null when FORMAT.md says initialisation fails. */
export function refShape(fmt: Fmt, requestedBitmap: number, iasIn: number, oasIn: number): RefShape | null {
  const has = (s: number): boolean => Math.floor(requestedBitmap / s) % 2 === 1;
  let granule: number;
  if (has(SZ_4K)) granule = SZ_4K;
  else if (has(SZ_16K)) granule = SZ_16K;
  else if (has(SZ_64K)) granule = SZ_64K;
  else return null;
  const only4k = fmt !== 'ARM_64_LPAE_S1' && fmt !== 'ARM_64_LPAE_S2';
  if (only4k && granule !== SZ_4K) return null;
  const clamp = granule === SZ_64K ? 52 : 48;
  const ias = Math.min(iasIn, clamp);
  const oas = Math.min(oasIn, clamp);
  const pgsizes = sizesFor(granule, oas).filter(has);
  const pgShift = Math.log2(granule);
  const bpl = pgShift - 3;
  const entries = granule / 8;
  const levels = Math.ceil((ias - pgShift) / bpl);
  let startLevel = 4 - levels;
  let pgdBits = ias - pgShift - bpl * (levels - 1);
  const s2 = fmt === 'ARM_64_LPAE_S2' || fmt === 'ARM_32_LPAE_S2';
  if (s2) {
    const concat =
      (granule === SZ_16K && startLevel === 0 && (oas === 48 || ias === 48)) ||
      (granule === SZ_4K && startLevel === 0 && (oas === 40 || oas === 42)) ||
      (granule === SZ_16K && startLevel === 1 && oas === 40);
    if (concat) {
      if (2 ** pgdBits > 16) return null;
      startLevel++;
      pgdBits += bpl;
    }
  }
  if (fmt === 'ARM_MALI_LPAE' && startLevel > 0) {
    startLevel = 0;
    pgdBits = 0;
  }
  const blockSize = [0, 1, 2, 3].map((l) => 2 ** (pgShift + bpl * (3 - l)));
  let bitmap = 0;
  for (const s of pgsizes) bitmap += s;
  return { granule, entries, startLevel, pgdEntries: 2 ** pgdBits, pgdSize: 8 * 2 ** pgdBits, ias, oas, bitmap, blockSize, pgsizes };
}

/** Level whose entries map `size` bytes, or -1. */
export function levelOf(shape: RefShape, size: number): number {
  for (let l = shape.startLevel; l <= 3; l++) if (shape.blockSize[l] === size) return l;
  return -1;
}
