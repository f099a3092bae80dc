/**
 * The hardware side of translation: how an SMMU (stage 1 or stage 2) or a Mali GPU MMU
 * finds and decodes descriptors. Deliberately written from the architecture's point of
 * view and sharing nothing with the page-table code in `formats/lpae/`: it derives the
 * walk from the *register values* the page table publishes (TCR/VTCR/TRANSTAB) and
 * decodes raw descriptor words, so a bug in the software walk cannot hide itself here.
 */
import type { EffectiveCfg } from '../io-pgtable.js';
import { PhysMemory, storeOf } from '../phys/memory.js';

const TWO_32 = 0x1_0000_0000;
const TWO_48 = 2 ** 48;
const TWO_52 = 2 ** 52;

/** Translation regime: the descriptor dialect the walker speaks. */
export type Regime = 's1' | 's2' | 'mali';

/** Everything the walker needs, as decoded from the translation registers. */
export interface WalkConfig {
  readonly regime: Regime;
  readonly granule: number;
  readonly pgShift: number;
  /** Index bits per level below the start level. */
  readonly bitsPerLevel: number;
  readonly startLevel: number;
  /** Index bits at the start level (more than bitsPerLevel for concatenated stage-2 tables). */
  readonly startBits: number;
  /** Input address bits: addresses must be below 2^ias (or sign-extended with TTBR1). */
  readonly ias: number;
  /** Output address bits: table and output addresses at or above 2^oas are address-size faults. */
  readonly oas: number;
  /** Physical address of the start-level table. */
  readonly base: number;
  /** Stage-1 upper-half table (TTBR1): inputs are negative in signed-64 form. */
  readonly ttbr1: boolean;
  /** Hardware dirty-bit management (stage 1 with HD): writes to DBM leaves clear AP[2]. */
  readonly hd: boolean;
  /** Does a leaf need AF set? (Every LPAE regime except Mali's.) */
  readonly checkAf: boolean;
}

/** Which faults a walk or an access can take (names follow the Arm fault status codes). */
export type FaultKind = 'unmapped' | 'address-size-fault' | 'access-flag-fault' | 'permission-fault' | 'bad-descriptor';

/** A successful walk: the leaf descriptor and what it maps. */
export interface Translation {
  readonly ok: true;
  /** Low 52 bits of the input address (the bits the walk indexes with). */
  readonly va: number;
  /** Level of the leaf (1..3). */
  readonly level: number;
  /** Bytes the leaf maps (its block or page size). */
  readonly size: number;
  /** Output address of the start of the block. */
  readonly oa: number;
  /** The leaf descriptor, as two 32-bit words. */
  readonly lo: number;
  readonly hi: number;
  /** Physical address of the leaf descriptor. */
  readonly descAddr: number;
  /** Stage-1 hierarchical restrictions from table descriptors: bit 0 no-write, 1 no-user, 2 no-exec (UXN), 3 no-priv-exec. */
  readonly tableAttrs: number;
}

export interface Fault {
  readonly ok: false;
  readonly fault: FaultKind;
  readonly level: number;
  readonly va: number;
  readonly message: string;
}

export type WalkOutcome = Translation | Fault;

/** One table descriptor met on a walk: what a walk cache may remember. */
export interface TableStep {
  /** Level of the table holding the descriptor. */
  readonly level: number;
  /** Physical address of the next-level table it points to. */
  readonly next: number;
  /** Hierarchical attributes accumulated so far, including this descriptor's. */
  readonly tableAttrs: number;
}

/** Index bits of stage-1 TG0 and TG1 and of stage-2 TG encodings, by granule. */
const TG0_GRANULE: Readonly<Record<number, number>> = { 0: 4096, 1: 65536, 2: 16384 };
const TG1_GRANULE: Readonly<Record<number, number>> = { 1: 16384, 2: 4096, 3: 65536 };
/** (I)PS field to address bits. */
const PS_BITS: readonly number[] = [32, 36, 40, 42, 44, 48, 52];

/** ARM_TTBR1 and ARM_HD quirk bits, as io-pgtable numbers them (io-pgtable.h). */
const QUIRK_TTBR1 = 1 << 5;
const QUIRK_HD = 1 << 7;

export class WalkConfigError extends Error {
  override readonly name = 'WalkConfigError';
  constructor(message: string) {
    super(`[iopgt] [iommu] ${message}`);
  }
}

function levelShift(bitsPerLevel: number, level: number): number {
  return (4 - level) * bitsPerLevel + 3;
}

/**
 * Program the model from the registers a driver would write: TTBR+TCR (stage 1),
 * VTTBR+VTCR (stage 2) or TRANSTAB (Mali). Only register fields are used, never the
 * page table's own geometry.
 */
export function walkConfigFromRegisters(cfg: EffectiveCfg): WalkConfig {
  const quirks = cfg.quirks;
  if (cfg.format === 'ARM_MALI_LPAE') {
    if (cfg.transtab === undefined) throw new WalkConfigError('Mali config without TRANSTAB');
    // TRANSTAB carries mode and cacheability in bits [4:0]; the table base is above them.
    const base = cfg.transtab - (cfg.transtab % 32);
    // AS_TRANSCFG-less (LPAE) Mali: always a 4-level, 4 KiB walk of a 48-bit space.
    return freeze({ regime: 'mali', granule: 4096, startLevel: 0, walkBits: 48, ias: cfg.ias, oas: cfg.oas, base, ttbr1: false, hd: false, checkAf: false });
  }
  if (cfg.tcr !== undefined && cfg.ttbr !== undefined) {
    const ttbr1 = (quirks & QUIRK_TTBR1) !== 0;
    const granule = (ttbr1 ? TG1_GRANULE : TG0_GRANULE)[cfg.tcr.tg];
    if (granule === undefined) throw new WalkConfigError(`reserved TCR.TG${ttbr1 ? 1 : 0} value ${cfg.tcr.tg}`);
    const oas = PS_BITS[cfg.tcr.ips];
    if (oas === undefined) throw new WalkConfigError(`reserved TCR.IPS value ${cfg.tcr.ips}`);
    const ias = 64 - cfg.tcr.tsz;
    const pgShift = Math.log2(granule);
    const bpl = pgShift - 3;
    // Stage 1 starts at the level whose index covers the top input bit (no concatenation).
    const startLevel = 4 - Math.ceil((ias - pgShift) / bpl);
    return freeze({ regime: 's1', granule, startLevel, walkBits: ias, ias, oas, base: cfg.ttbr, ttbr1, hd: (quirks & QUIRK_HD) !== 0, checkAf: true });
  }
  if (cfg.vtcr !== undefined && cfg.vttbr !== undefined) {
    const granule = TG0_GRANULE[cfg.vtcr.tg];
    if (granule === undefined) throw new WalkConfigError(`reserved VTCR.TG0 value ${cfg.vtcr.tg}`);
    const oas = PS_BITS[cfg.vtcr.ps];
    if (oas === undefined) throw new WalkConfigError(`reserved VTCR.PS value ${cfg.vtcr.ps}`);
    const ias = 64 - cfg.vtcr.tsz;
    // SL0 encodes the start level relative to the granule (4K: 2->L0; 16K/64K: 2->L1).
    const startLevel = (granule === 4096 ? 2 : 3) - cfg.vtcr.sl;
    if (startLevel < 0 || startLevel > 3) throw new WalkConfigError(`VTCR.SL0 ${cfg.vtcr.sl} is reserved for this granule`);
    return freeze({ regime: 's2', granule, startLevel, walkBits: ias, ias, oas, base: cfg.vttbr, ttbr1: false, hd: false, checkAf: true });
  }
  throw new WalkConfigError(`config of ${cfg.format} carries no translation registers`);
}

/** What the registers program, before the fields derived from it (`walkBits`: the input bits the walk resolves). */
interface Programmed {
  regime: Regime;
  granule: number;
  startLevel: number;
  walkBits: number;
  ias: number;
  oas: number;
  base: number;
  ttbr1: boolean;
  hd: boolean;
  checkAf: boolean;
}

function freeze({ regime, granule, startLevel, walkBits, ias, oas, base, ttbr1, hd, checkAf }: Programmed): WalkConfig {
  const pgShift = Math.log2(granule);
  const bitsPerLevel = pgShift - 3;
  const startBits = walkBits - levelShift(bitsPerLevel, startLevel);
  if (startBits < 1 || startBits > bitsPerLevel + 4) {
    // More than 16 concatenated tables (or none) is an invalid configuration.
    throw new WalkConfigError(`start level ${startLevel} cannot resolve ${walkBits} input bits with a ${granule}-byte granule`);
  }
  if (base % 8 !== 0 || base >= 2 ** oas) throw new WalkConfigError(`table base 0x${base.toString(16)} is not a valid output address`);
  return Object.freeze({ regime, granule, pgShift, bitsPerLevel, startLevel, startBits, ias, oas, base, ttbr1, hd, checkAf });
}

/** Block (or page) size an entry at `level` maps. */
export function entrySize(c: WalkConfig, level: number): number {
  return 2 ** levelShift(c.bitsPerLevel, level);
}

/**
 * Is the input address inside the configured range? Returns the low 52 bits used for
 * indexing, or -1. TTBR1 inputs are the top of the 64-bit space (negative numbers here).
 */
export function inputAddress(c: WalkConfig, iova: number): number {
  if (!Number.isSafeInteger(iova)) return -1;
  const span = 2 ** c.ias;
  if (c.ttbr1) return iova < 0 && iova >= -span ? iova + TWO_52 : -1;
  return iova >= 0 && iova < span ? iova : -1;
}

/** Can an entry at `level` be a block? The architecture's rule per granule (Arm ARM D8.2). */
function blockAllowed(c: WalkConfig, level: number): boolean {
  if (level === 2) return true;
  if (level === 1) return c.granule === 4096 || (c.granule === 65536 && c.oas > 48);
  return false;
}

/**
 * The output or next-table address in a descriptor. Bits [47:12]; with a 64 KiB granule
 * bits [15:12] hold PA[51:48] (the LPA encoding). Returns -1 when address bits below the
 * granule that must be zero are set.
 */
function descAddress(c: WalkConfig, lo: number, hi: number): number {
  const high = (hi & 0xffff) * TWO_32;
  if (c.granule === 65536) return high + ((lo & 0xffff0000) >>> 0) + ((lo >>> 12) & 0xf) * TWO_48;
  const low = (lo & 0xfffff000) >>> 0;
  if (low % c.granule !== 0) return -1;
  return high + low;
}

/** Index of `va` at `level`. */
function indexAt(c: WalkConfig, va: number, level: number): number {
  const bits = level === c.startLevel ? c.startBits : c.bitsPerLevel;
  return Math.floor(va / 2 ** levelShift(c.bitsPerLevel, level)) % 2 ** bits;
}

/** Hierarchical bits of a stage-1 table descriptor: PXNTable 59, UXNTable 60, APTable 61-62. */
function tableAttrBits(c: WalkConfig, hi: number): number {
  if (c.regime !== 's1') return 0;
  let a = 0;
  if (hi & (1 << 30)) a |= 1; // APTable[1]: no write at any EL
  if (hi & (1 << 29)) a |= 2; // APTable[0]: no unprivileged access
  if (hi & (1 << 28)) a |= 4; // UXNTable
  if (hi & (1 << 27)) a |= 8; // PXNTable
  return a;
}

const fault = (kind: FaultKind, level: number, va: number, message: string): Fault => ({ ok: false, fault: kind, level, va, message });

/**
 * Walk from `table` at `level` (the start level and the TTBR for a full walk, or a
 * walk-cache entry's next table). `onTable`, when given, sees each table descriptor as
 * the walk passes it, which is how a walk cache fills.
 */
export function walk(
  c: WalkConfig,
  memory: PhysMemory,
  va: number,
  level: number = c.startLevel,
  table: number = c.base,
  tableAttrs = 0,
  onTable?: (step: TableStep) => void,
): WalkOutcome {
  for (;;) {
    const descAddr = table + indexAt(c, va, level) * 8;
    const words = storeOf(memory).peek(descAddr);
    const w = PhysMemory.wordIndex(descAddr);
    const lo = words[w]!;
    const hi = words[w + 1]!;
    if ((lo & 1) === 0) return fault('unmapped', level, va, `invalid descriptor at level ${level}`);
    const isTableOrPage = (lo & 2) !== 0;
    if (level < 3 && isTableOrPage) {
      const next = descAddress(c, lo, hi);
      if (next < 0) return fault('bad-descriptor', level, va, `table descriptor with low address bits set at level ${level}`);
      if (next >= 2 ** c.oas) return fault('address-size-fault', level, va, `next table 0x${next.toString(16)} beyond ${c.oas}-bit output range`);
      tableAttrs |= tableAttrBits(c, hi);
      onTable?.({ level, next, tableAttrs });
      table = next;
      level++;
      continue;
    }
    // A leaf: a block (0b01 at levels 1-2), a page (0b11 at level 3), or Mali's 0b01 level-3 page.
    if (level === 3) {
      const pageType = c.regime === 'mali' ? !isTableOrPage : isTableOrPage;
      if (!pageType) return fault('bad-descriptor', level, va, `reserved descriptor type ${lo & 3} at level 3`);
    } else if (!blockAllowed(c, level)) {
      return fault('bad-descriptor', level, va, `block descriptor at level ${level} is not allowed with a ${c.granule}-byte granule`);
    }
    const size = entrySize(c, level);
    const oa = descAddress(c, lo, hi);
    if (oa < 0 || oa % size !== 0) return fault('bad-descriptor', level, va, `leaf output address bits below the ${size}-byte block are set`);
    if (oa + size > 2 ** c.oas) return fault('address-size-fault', level, va, `output 0x${oa.toString(16)} beyond ${c.oas}-bit output range`);
    if (c.checkAf && (lo & (1 << 10)) === 0) return fault('access-flag-fault', level, va, 'leaf with AF clear');
    return { ok: true, va, level, size, oa, lo, hi, descAddr, tableAttrs };
  }
}

/** How a device accesses memory. */
export interface AccessType {
  readonly write?: boolean;
  /** Instruction fetch (checked against XN). */
  readonly exec?: boolean;
  /** Privileged transaction (stage 1 only; devices are unprivileged by default). */
  readonly priv?: boolean;
}

/**
 * Permission check of a leaf for an access. Returns null when allowed, `'dirty'` when a
 * stage-1 write is allowed only by hardware dirty-state management (DBM with HD), or the
 * reason of the permission fault.
 */
export function checkPermission(c: WalkConfig, t: Translation, access: AccessType): string | null | 'dirty' {
  const { lo, hi } = t;
  if (c.regime === 's1') {
    const ap1 = (lo & (1 << 6)) !== 0; // unprivileged access allowed
    const ap2 = (lo & (1 << 7)) !== 0; // read-only
    if (!access.priv && (!ap1 || (t.tableAttrs & 2) !== 0)) return 'unprivileged access to a privileged-only page';
    if (access.exec) {
      const xn = access.priv ? (hi & (1 << 21)) !== 0 || (t.tableAttrs & 8) !== 0 : (hi & (1 << 22)) !== 0 || (t.tableAttrs & 4) !== 0;
      if (xn) return 'instruction fetch from an execute-never page';
    }
    if (access.write) {
      if ((t.tableAttrs & 1) !== 0) return 'write below a read-only table';
      if (ap2) return c.hd && (hi & (1 << 19)) !== 0 ? 'dirty' : 'write to a read-only page';
    }
    return null;
  }
  // Stage 2 and Mali: HAP/AP bit 6 read, bit 7 write; XN in bit 54.
  if (access.write) {
    if ((lo & (1 << 7)) === 0) return 'write to a page without write permission';
  } else if ((lo & (1 << 6)) === 0) return 'read of a page without read permission';
  if (access.exec && (hi & (1 << 22)) !== 0) return 'instruction fetch from an execute-never page';
  return null;
}
