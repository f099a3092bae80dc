/**
 * ARM LPAE descriptor bits and pure encode/decode functions. Descriptors are handled as
 * two 32-bit halves (`lo` = bits 0..31, `hi` = bits 32..63) so hot loops never use
 * BigInt; {@link pteToBigInt} joins them at the API boundary.
 */
import { TWO_32, hi32 } from '../../addr.js';
import type { FormatName } from '../../constants.js';
import { Prot, Quirk } from '../../constants.js';
import { LPAE_FORMATS } from './ops.js';

export const PTE_TYPE_MASK = 0x3;
export const PTE_TYPE_BLOCK = 0x1;
export const PTE_TYPE_TABLE = 0x3;
export const PTE_TYPE_PAGE = 0x3;

// Bits in the low word.
export const PTE_NS = 1 << 5;
export const PTE_AP_UNPRIV = 1 << 6;
export const PTE_AP_RDONLY = 1 << 7;
export const PTE_HAP_READ = 1 << 6;
export const PTE_HAP_WRITE = 2 << 6;
export const PTE_SH_SHIFT = 8;
export const PTE_SH_IS = 3 << 8;
export const PTE_SH_OS = 2 << 8;
export const PTE_AF = 1 << 10;
export const PTE_NG = 1 << 11;
export const PTE_ATTRINDX_SHIFT = 2;
export const PTE_MEMATTR_SHIFT = 2;
export const MAIR_IDX_NC = 0;
export const MAIR_IDX_CACHE = 1;
export const MAIR_IDX_DEV = 2;
export const MAIR_IDX_INC_OCACHE = 3;
export const MEMATTR_OIWB = 0xf;
export const MEMATTR_NC = 0x5;
export const MEMATTR_DEV = 0x1;
export const MEMATTR_FWB_WB = 0x6;

// Bits in the high word (bit n of the descriptor is bit n-32 of `hi`).
export const PTE_HI_DBM = 1 << (51 - 32);
export const PTE_HI_CONT = 1 << (52 - 32);
export const PTE_HI_XN = 3 << (53 - 32);
export const PTE_HI_SW_SYNC = 1 << (55 - 32);
export const PTE_HI_NSTABLE = (1 << (63 - 32)) >>> 0;
/** Address bits 47..32 live in hi bits 15..0. */
export const PTE_HI_ADDR_MASK = 0xffff;
/** Address bits 31..12 in the low word. */
export const PTE_LO_ADDR_MASK = 0xfffff000;

/** A leaf-attribute template: OR-ed into every leaf a map call writes. */
export interface PteTemplate {
  readonly lo: number;
  readonly hi: number;
}

/** arm_lpae_prot_to_pte: leaf attributes for `prot` in `fmt` with `quirks`. */
export function protToPte(fmt: FormatName, quirks: number, prot: number): PteTemplate {
  const ops = LPAE_FORMATS[fmt];
  let lo = 0;
  let hi = 0;
  if (ops.permissions === 'ap') {
    if (ops.nonGlobal) lo |= PTE_NG;
    if (!(prot & Prot.WRITE) && prot & Prot.READ) lo |= PTE_AP_RDONLY;
    else if (quirks & Quirk.ARM_HD) hi |= PTE_HI_DBM;
    if (!(prot & Prot.PRIV)) lo |= PTE_AP_UNPRIV;
  } else {
    // Stage 2 and Mali: HAP-style read/write permission bits.
    if (prot & Prot.READ) lo |= PTE_HAP_READ;
    if (prot & Prot.WRITE) lo |= PTE_HAP_WRITE;
  }
  if (ops.memoryType === 'mem-attr') {
    let memattr = MEMATTR_NC;
    if (prot & Prot.MMIO) memattr = MEMATTR_DEV;
    else if (prot & Prot.CACHE) memattr = quirks & Quirk.ARM_S2FWB ? MEMATTR_FWB_WB : MEMATTR_OIWB;
    lo |= memattr << PTE_MEMATTR_SHIFT;
  } else {
    // Stage 1 and Mali: MAIR index.
    if (prot & Prot.MMIO) lo |= MAIR_IDX_DEV << PTE_ATTRINDX_SHIFT;
    else if (prot & Prot.CACHE) lo |= MAIR_IDX_CACHE << PTE_ATTRINDX_SHIFT;
  }
  // Mali's outer domain is "outside the GPU", so it is always outer-shareable.
  lo |= prot & Prot.CACHE && ops.cacheInnerShareable ? PTE_SH_IS : PTE_SH_OS;
  if (prot & Prot.NOEXEC) hi |= PTE_HI_XN;
  if (quirks & Quirk.ARM_NS) lo |= PTE_NS;
  if (ops.accessFlag) lo |= PTE_AF;
  return { lo: lo >>> 0, hi: hi >>> 0 };
}

/**
 * paddr_to_iopte, low word: bits 31..12 of `pa`. With a 64K granule, PA bits 51..48 are
 * folded into bits 15..12 (which a 64K-aligned address never uses); the kernel applies
 * the fold for every granule, and it is a no-op below 2^48.
 */
export function paddrToPteLo(pa: number): number {
  const lo = pa >>> 0; // the low 32 bits of an integer below 2^53 (no float modulo)
  // Bit 52 (a table an allocator placed above the 52-bit space, kernel mode) folds into bit 16, as in the kernel.
  const fold = Math.floor(pa / 2 ** 48) & 0x1f;
  return ((lo & PTE_LO_ADDR_MASK) | (fold << 12)) >>> 0;
}

/** paddr_to_iopte, high word: PA bits 47..32. */
export function paddrToPteHi(pa: number): number {
  return hi32(pa) & PTE_HI_ADDR_MASK;
}

/**
 * iopte_to_paddr: the output address of a descriptor. With 4K/16K granules it is bits
 * 47..12; with 64K, bits 15..12 hold PA[51:48] and the result is masked to bits 51..16.
 */
export function pteToPaddr(lo: number, hi: number, granule: number): number {
  const big = granule === 0x10000;
  return pteAddrHi(lo, hi, big) * TWO_32 + (pteAddrLo(lo, big) >>> 0);
}

/** iopte_to_paddr, bits 31..0 (as a signed 32-bit value; `>>> 0` for the unsigned one). `big`: 64K granule. */
export function pteAddrLo(lo: number, big: boolean): number {
  return big ? lo & 0xffff0000 : lo & PTE_LO_ADDR_MASK;
}

/** iopte_to_paddr, bits 51..32: bits 47..32 from the high word, and with 64K, bits 51..48 unfolded from bits 15..12. */
export function pteAddrHi(lo: number, hi: number, big: boolean): number {
  return big ? (hi & PTE_HI_ADDR_MASK) | (((lo >>> 12) & 0xf) << 16) : hi & PTE_HI_ADDR_MASK;
}

/** iopte_leaf: a page at level 3 (type 3; Mali uses type 1), a block elsewhere (type 1). */
export function isLeaf(lo: number, level: number, mali: boolean): boolean {
  if (level === 3 && !mali) return (lo & PTE_TYPE_MASK) === PTE_TYPE_PAGE;
  return (lo & PTE_TYPE_MASK) === PTE_TYPE_BLOCK;
}

/** iopte_table: a table descriptor, possible only above level 3. */
export function isTable(lo: number, level: number): boolean {
  return level !== 3 && (lo & PTE_TYPE_MASK) === PTE_TYPE_TABLE;
}

/** Join two halves into the 64-bit descriptor (API boundary only). */
export function pteToBigInt(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Split a 64-bit descriptor into halves. */
export function pteFromBigInt(v: bigint): PteTemplate {
  return { lo: Number(v & 0xffffffffn), hi: Number((v >> 32n) & 0xffffffffn) };
}

/** A decoded descriptor, for tools and tests: named attribute fields instead of bits. */
export interface DecodedPte {
  readonly kind: 'invalid' | 'table' | 'block' | 'page';
  readonly paddr: number;
  readonly attrIndx: number;
  readonly memAttr: number;
  readonly ns: boolean;
  readonly ap: number;
  readonly sh: number;
  readonly af: boolean;
  readonly nG: boolean;
  readonly dbm: boolean;
  readonly xn: boolean;
  readonly swSync: boolean;
  readonly nsTable: boolean;
}

export function decodePte(v: bigint, level: number, granule: number, mali: boolean): DecodedPte {
  const { lo, hi } = pteFromBigInt(v);
  let kind: DecodedPte['kind'] = 'invalid';
  if (isLeaf(lo, level, mali)) kind = level === 3 && !mali ? 'page' : 'block';
  else if (isTable(lo, level)) kind = 'table';
  return {
    kind,
    paddr: kind === 'invalid' ? 0 : pteToPaddr(lo, hi, granule),
    attrIndx: (lo >>> 2) & 0x7,
    memAttr: (lo >>> 2) & 0xf,
    ns: (lo & PTE_NS) !== 0,
    ap: (lo >>> 6) & 0x3,
    sh: (lo >>> 8) & 0x3,
    af: (lo & PTE_AF) !== 0,
    nG: (lo & PTE_NG) !== 0,
    dbm: (hi & PTE_HI_DBM) !== 0,
    xn: (hi & PTE_HI_XN) === PTE_HI_XN,
    swSync: (hi & PTE_HI_SW_SYNC) !== 0,
    nsTable: (hi & PTE_HI_NSTABLE) !== 0,
  };
}
