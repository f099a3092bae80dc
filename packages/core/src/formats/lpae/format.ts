/**
 * Configuration of the LPAE formats: what `alloc_io_pgtable_ops` does before it
 * allocates the PGD. Restricts the page sizes, clamps ias/oas, checks quirks and
 * limits, derives the geometry (start level, PGD bits, S2 concatenation, Mali's
 * one-entry level 0) and computes the register values.
 */
import type { FormatName } from '../../constants.js';
import { HOST_PAGE_SIZE, Quirk, S2_MAX_CONCAT_PAGES, SZ_16K, SZ_1G, SZ_2M, SZ_32M, SZ_4K, SZ_4T, SZ_512M, SZ_64K } from '../../constants.js';
import { makeGeometry, type Geometry } from '../../geometry.js';
import { LPAE_FORMATS } from './ops.js';

export interface TcrFields {
  ips: number;
  tg: number;
  sh: number;
  orgn: number;
  irgn: number;
  tsz: number;
}
export interface VtcrFields {
  ps: number;
  tg: number;
  sh: number;
  orgn: number;
  irgn: number;
  sl: number;
  tsz: number;
}

/** Register outputs, as the kernel writes them into `cfg` (the base address is added once the PGD exists). */
export type LpaeRegisters =
  | { kind: 's1'; tcr: TcrFields; mair: bigint }
  | { kind: 's2'; vtcr: VtcrFields }
  | { kind: 'mali'; memattr: number; transtabFlags: number };

export interface LpaeSetup {
  geometry: Geometry;
  /** The restricted page-size bitmap (always below 2^43, so a number). */
  pgsizeBitmap: number;
  regs: LpaeRegisters;
}

/** Why a configuration fails (the kernel only returns NULL; the reason is ours). */
export type SetupResult = { ok: true; setup: LpaeSetup } | { ok: false; reason: string };

const SH_IS = 3;
const SH_OS = 2;
const RGN_NC = 0;
const RGN_WBWA = 1;
const TG0: Record<number, number> = { [SZ_4K]: 0, [SZ_64K]: 1, [SZ_16K]: 2 };
const TG1: Record<number, number> = { [SZ_16K]: 1, [SZ_4K]: 2, [SZ_64K]: 3 };
const PS_BY_OAS: Record<number, number> = { 32: 0, 36: 1, 40: 2, 42: 3, 44: 4, 48: 5, 52: 6 };

/** MAIR as the kernel reports it: 0xf4 << 24 is computed in `int` and sign-extends. */
export const LPAE_MAIR_KERNEL = 0xfffffffff404ff44n;
/** MAIR as intended: attributes 0..3, indices 4..7 unused (zero). Strict mode reports this. */
export const LPAE_MAIR = 0xf404ff44n;
/** Mali MEMATTR: IMP_DEF (0x88) for NC and device, WRITE_ALLOC (0x8D) for cacheable. */
export const MALI_MEMATTR = 0x888d88;
const MALI_TRANSTAB_ADRMODE_TABLE = 0x3;
const MALI_TRANSTAB_READ_INNER = 0x4;
const MALI_TRANSTAB_SHARE_OUTER = 0x10;


export interface LpaeCfgIn {
  fmt: FormatName;
  quirks: number;
  /** Requested page sizes; a bigint so that any u64 bitmap is accepted. */
  pgsizeBitmap: bigint;
  ias: number;
  oas: number;
  coherentWalk: boolean;
}

function lowestBit(v: bigint): bigint {
  return v & -v;
}

/** arm_lpae_restrict_pgsizes: granule choice by host page size, then the allowed set. */
function restrictPgsizes(bitmap: bigint, oas: number): { granule: number; bitmap: number; maxBits: number } {
  const page = BigInt(HOST_PAGE_SIZE);
  let granule = 0n;
  if (bitmap & page) granule = page;
  else if (bitmap & (page - 1n)) {
    // The largest offered size below the host page size.
    let below = bitmap & (page - 1n);
    while (below & (below - 1n)) below &= below - 1n;
    granule = below;
  } else if (bitmap & ~(page - 1n)) granule = lowestBit(bitmap & ~(page - 1n));
  let allowed = 0;
  let maxBits = 48;
  switch (Number(granule)) {
    case SZ_4K:
      allowed = SZ_4K + SZ_2M + SZ_1G;
      break;
    case SZ_16K:
      allowed = SZ_16K + SZ_32M;
      break;
    case SZ_64K:
      maxBits = 52;
      allowed = SZ_64K + SZ_512M + (oas > 48 ? SZ_4T : 0);
      break;
  }
  return { granule: Number(granule), bitmap: Number(bitmap & BigInt(allowed)), maxBits };
}

/** arm_lpae_concat_mandatory (Arm DDI0487 K.a R_DXBSH / R_SRKBC). */
function concatMandatory(granule: number, startLevel: number, ias: number, oas: number): boolean {
  if (granule === SZ_4K && startLevel === 0) return oas === 40 || oas === 42;
  if (granule === SZ_16K && startLevel === 0) return oas === 48 || ias === 48;
  if (granule === SZ_16K && startLevel === 1) return oas === 40;
  return false;
}

/**
 * The whole pre-allocation part of `alloc_io_pgtable_ops` for an LPAE format. Returns
 * the restricted bitmap, clamped ias/oas, geometry and registers, or the reason the
 * kernel would return NULL.
 */
export function configureLpae(cfg: LpaeCfgIn): SetupResult {
  const fail = (reason: string): SetupResult => ({ ok: false, reason });
  let { quirks, ias, oas } = cfg;
  const ops = LPAE_FORMATS[cfg.fmt];
  let bitmap = cfg.pgsizeBitmap;

  // Format-specific limits, as the 32-bit and Mali wrappers check them first.
  if (ops.quirks === 0 && quirks) return fail(`quirks are not accepted by ${ops.quirkScope}`);
  if (ias > ops.maxIas || oas > ops.maxOas) return fail(`${ops.name} needs ias <= ${ops.maxIas} and oas <= ${ops.maxOas} (got ${ias}/${oas})`);
  if (ops.forcedPgsizes !== null) bitmap &= BigInt(ops.forcedPgsizes);
  if (quirks & ~ops.quirks) return fail(`quirks 0x${(quirks & ~ops.quirks).toString(16)} are not accepted by ${ops.quirkScope}`);

  // arm_lpae_alloc_pgtable
  const r = restrictPgsizes(bitmap, oas);
  const pgsizeBitmap = r.bitmap;
  ias = Math.min(ias, r.maxBits);
  oas = Math.min(oas, r.maxBits);
  if (!(pgsizeBitmap & (SZ_4K | SZ_16K | SZ_64K))) return fail('no usable granule (4K, 16K or 64K) left in the page-size bitmap');
  const granule = pgsizeBitmap & SZ_4K ? SZ_4K : pgsizeBitmap & SZ_16K ? SZ_16K : SZ_64K;
  const pgShift = Math.log2(granule);
  const bpl = pgShift - 3;
  const vaBits = ias - pgShift;
  // The kernel computes this in unsigned arithmetic; an ias at or below the granule shift
  // yields no usable level. We refuse it rather than emulate the wrap-around.
  if (vaBits <= 0) return fail(`ias ${ias} leaves no index bits above the ${granule}-byte granule`);
  const levels = Math.ceil(vaBits / bpl);
  let startLevel = 4 - levels;
  let pgdBits = vaBits - bpl * (levels - 1);

  let regs: LpaeRegisters;
  if (ops.registers === 's1') {
    let sh: number, irgn: number, orgn: number;
    if (cfg.coherentWalk) {
      if (quirks & Quirk.ARM_OUTER_WBWA) return fail('ARM_OUTER_WBWA is only valid for non-coherent walks');
      sh = SH_IS;
      irgn = RGN_WBWA;
      orgn = RGN_WBWA;
    } else {
      sh = SH_OS;
      irgn = RGN_NC;
      orgn = quirks & Quirk.ARM_OUTER_WBWA ? RGN_WBWA : RGN_NC;
    }
    const tg = (quirks & Quirk.ARM_TTBR1 ? TG1 : TG0)[granule]!;
    const ips = PS_BY_OAS[oas];
    if (ips === undefined) return fail(`oas ${oas} has no IPS encoding (32, 36, 40, 42, 44, 48 or 52)`);
    regs = { kind: 's1', tcr: { ips, tg, sh, orgn, irgn, tsz: 64 - ias }, mair: LPAE_MAIR_KERNEL };
  } else if (ops.registers === 'mali') {
    // Mali needs a full 4-level walk whatever the ias: a one-entry level 0 when short.
    if (ops.forceLevel0 && startLevel > 0) {
      startLevel = 0;
      pgdBits = 0;
    }
    const flags = MALI_TRANSTAB_READ_INNER | MALI_TRANSTAB_ADRMODE_TABLE | (cfg.coherentWalk ? MALI_TRANSTAB_SHARE_OUTER : 0);
    regs = { kind: 'mali', memattr: MALI_MEMATTR, transtabFlags: flags };
  } else {
    if (ops.concatenates && concatMandatory(granule, startLevel, ias, oas)) {
      if (2 ** pgdBits > S2_MAX_CONCAT_PAGES) {
        return fail(`stage-2 concatenation needs ${2 ** pgdBits} tables, more than ${S2_MAX_CONCAT_PAGES}`);
      }
      pgdBits += bpl;
      startLevel += 1;
    }
    const sh = cfg.coherentWalk ? SH_IS : SH_OS;
    const rgn = cfg.coherentWalk ? RGN_WBWA : RGN_NC;
    // SL0 is encoded differently for the 4K granule.
    const sl = ~(startLevel + (granule === SZ_4K ? 1 : 0)) & 3;
    const ps = PS_BY_OAS[oas];
    if (ps === undefined) return fail(`oas ${oas} has no PS encoding (32, 36, 40, 42, 44, 48 or 52)`);
    regs = { kind: 's2', vtcr: { ps, tg: TG0[granule]!, sh, orgn: rgn, irgn: rgn, sl, tsz: 64 - ias } };
  }
  const geometry = makeGeometry({ granule, startLevel, pgdBits, ias, oas });
  return { ok: true, setup: { geometry, pgsizeBitmap, regs } };
}
