/**
 * An independent reading of LPAE descriptors, from FORMAT.md's descriptor cheat-sheet, and
 * a walker over `PageTable.tables()` snapshots built on it. Shares no code with core, so a
 * descriptor core writes wrongly and reads back with the same mistake is still caught.
 */
import type { Fmt, RefShape } from './ref-geometry.js';

const ADDR_MASK = ((1n << 48n) - 1n) & ~0xfffn; // bits 47:12
const FOLD_MASK = 0xf000n; // 64K granule: PA bits 51:48 live in 15:12

export const PROT = { read: 1, write: 2, cache: 4, noexec: 8, mmio: 16, priv: 32 } as const;
export type ProtName = keyof typeof PROT;
export const PROT_NAMES = Object.keys(PROT) as ProtName[];

export function protNames(prot: number): ProtName[] {
  return PROT_NAMES.filter((n) => (prot & PROT[n]) !== 0);
}

/** Output (or next-table) address held in a descriptor. */
export function descAddr(pte: bigint, granule: number): number {
  let a = pte & ADDR_MASK;
  if (granule === 65536) a = (a & ~FOLD_MASK) | ((a & FOLD_MASK) << 36n);
  return Number(a);
}

function addrBits(pa: number, granule: number): bigint {
  const p = BigInt(pa);
  if (granule !== 65536) return p & ADDR_MASK;
  return (p & ADDR_MASK & ~FOLD_MASK) | ((p >> 36n) & FOLD_MASK);
}

export interface DescCtx {
  fmt: Fmt;
  quirks: ReadonlySet<string>;
  coherentWalk: boolean;
  granule: number;
}

const isS1 = (f: Fmt): boolean => f === 'ARM_64_LPAE_S1' || f === 'ARM_32_LPAE_S1';
const isS2 = (f: Fmt): boolean => f === 'ARM_64_LPAE_S2' || f === 'ARM_32_LPAE_S2';

/**
 * The exact descriptor a leaf should hold. `cleaned`: read_and_clear_dirty has made a
 * DBM leaf writeable-clean (AP[2] set).
 */
export function expectedLeaf(c: DescCtx, level: number, pa: number, prot: number, cleaned: boolean): bigint {
  const mali = c.fmt === 'ARM_MALI_LPAE';
  const r = (prot & PROT.read) !== 0;
  const w = (prot & PROT.write) !== 0;
  const cache = (prot & PROT.cache) !== 0;
  const mmio = (prot & PROT.mmio) !== 0;
  let v = addrBits(pa, c.granule);
  v |= level === 3 && !mali ? 3n : 1n;
  if (!mali) v |= 1n << 10n; // AF
  v |= (cache && !mali ? 3n : 2n) << 8n; // SH
  if (prot & PROT.noexec) v |= 3n << 53n;
  const attrIdx = mmio ? 2n : cache ? 1n : 0n;
  if (isS1(c.fmt)) {
    if (c.quirks.has('ARM_NS')) v |= 1n << 5n;
    v |= 1n << 11n; // nG
    if (r && !w) v |= 1n << 7n;
    else if (c.quirks.has('ARM_HD')) {
      v |= 1n << 51n;
      if (cleaned) v |= 1n << 7n;
    }
    if (!(prot & PROT.priv)) v |= 1n << 6n;
    v |= attrIdx << 2n;
  } else {
    if (r) v |= 1n << 6n;
    if (w) v |= 1n << 7n;
    if (isS2(c.fmt)) v |= (mmio ? 0x1n : cache ? (c.quirks.has('ARM_S2FWB') ? 0x6n : 0xfn) : 0x5n) << 2n;
    else v |= attrIdx << 2n;
  }
  return v;
}

/** The exact table descriptor pointing at `table`. */
export function expectedTableDesc(c: DescCtx, table: number): bigint {
  let v = addrBits(table, c.granule) | 3n;
  if (c.quirks.has('ARM_NS')) v |= 1n << 63n;
  if (!c.coherentWalk) v |= 1n << 55n;
  return v;
}

export function isLeafDesc(c: DescCtx, pte: bigint, level: number): boolean {
  const t = pte & 3n;
  if (level === 3) return c.fmt === 'ARM_MALI_LPAE' ? t === 1n : t === 3n;
  return t === 1n;
}

export interface WalkedLeaf {
  iova: number;
  size: number;
  level: number;
  pte: bigint;
}

export interface SnapshotWalk {
  leaves: Map<number, WalkedLeaf>;
  /** `level:window` of every table below the PGD. */
  tables: Set<string>;
  /** Table address -> level. */
  tableLevels: Map<number, number>;
  problems: string[];
}

/**
 * Walk a `tables()` snapshot from the PGD: every table must be reached exactly once, every
 * non-zero entry must be a valid leaf or a table descriptor pointing at a live table.
 */
export function walkSnapshot(c: DescCtx, shape: RefShape, pgd: number, snap: Map<number, Map<number, bigint>>): SnapshotWalk {
  const out: SnapshotWalk = { leaves: new Map(), tables: new Set(), tableLevels: new Map(), problems: [] };
  const visit = (level: number, table: number, base: number, entries: number): void => {
    if (out.tableLevels.has(table)) {
      out.problems.push(`table 0x${table.toString(16)} is reached twice`);
      return;
    }
    out.tableLevels.set(table, level);
    const body = snap.get(table);
    if (body === undefined) {
      out.problems.push(`level-${level} table 0x${table.toString(16)} is not in the snapshot`);
      return;
    }
    const bs = shape.blockSize[level]!;
    for (const [idx, pte] of body) {
      const iova = base + idx * bs;
      if (idx >= entries) {
        out.problems.push(`entry ${idx} of level-${level} table 0x${table.toString(16)} lies past its ${entries} entries`);
        continue;
      }
      if (isLeafDesc(c, pte, level)) {
        out.leaves.set(iova, { iova, size: bs, level, pte });
        continue;
      }
      if (level === 3 || (pte & 3n) !== 3n) {
        out.problems.push(`invalid descriptor 0x${pte.toString(16)} at level ${level} iova 0x${iova.toString(16)}`);
        continue;
      }
      const child = descAddr(pte, c.granule);
      if (pte !== expectedTableDesc(c, child)) {
        out.problems.push(`table descriptor 0x${pte.toString(16)} at level ${level} has unexpected attribute bits`);
      }
      out.tables.add(`${level + 1}:${Math.floor(iova / bs)}`);
      visit(level + 1, child, iova, shape.entries);
    }
  };
  visit(shape.startLevel, pgd, 0, shape.pgdEntries);
  for (const t of snap.keys()) if (!out.tableLevels.has(t)) out.problems.push(`table 0x${t.toString(16)} is live but unreachable`);
  return out;
}
