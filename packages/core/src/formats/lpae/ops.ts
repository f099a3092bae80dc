/**
 * One record per LPAE format, as io-pgtable-arm.c has one init_fns entry per format:
 * everything that differs between formats lives here, and the rest of the core reads
 * these fields instead of comparing format names.
 */
import type { FormatName } from '../../constants.js';
import { Quirk, SZ_1G, SZ_2M, SZ_4K } from '../../constants.js';

/** How a leaf's permissions are encoded. */
export type PermissionBits = 'ap' | 'hap';
/** How a leaf's memory type is encoded: a MAIR index (stage 1, Mali) or a stage-2 MemAttr. */
export type MemoryTypeBits = 'attr-index' | 'mem-attr';
/** Which register set the format reports. */
export type RegisterSet = 's1' | 's2' | 'mali';

export interface LpaeFormatOps {
  readonly name: FormatName;
  /** Largest ias and oas the format's wrapper accepts (the 64-bit formats: 52, checked later). */
  readonly maxIas: number;
  readonly maxOas: number;
  /** Page sizes the wrapper forces before the common code (4K|2M|1G), or null. */
  readonly forcedPgsizes: number | null;
  /** Quirks the format accepts; any other bit fails creation. */
  readonly quirks: number;
  /** What the creation error says when a quirk is refused. */
  readonly quirkScope: string;
  /** Leaf permissions: AP bits (stage 1) or HAP bits (stage 2, Mali). */
  readonly permissions: PermissionBits;
  /** Leaf memory type field. */
  readonly memoryType: MemoryTypeBits;
  /** Stage-1 leaves are non-global (nG). */
  readonly nonGlobal: boolean;
  /** Cacheable leaves are inner-shareable; false for Mali, whose outer domain is outside the GPU. */
  readonly cacheInnerShareable: boolean;
  /** Leaves carry the access flag (not Mali). */
  readonly accessFlag: boolean;
  /** Descriptor type of a level-3 leaf: 3 (page), but Mali uses 1. */
  readonly pageType: number;
  /** Mali: a full 4-level walk whatever the ias (a one-entry level 0 when short). */
  readonly forceLevel0: boolean;
  /** Stage 2: mandatory start-level concatenation (Arm DDI0487 R_DXBSH / R_SRKBC). */
  readonly concatenates: boolean;
  readonly registers: RegisterSet;
  /** read_and_clear_dirty is implemented (ARM_64_LPAE_S1 only). */
  readonly dirtyTracking: boolean;
}

const FOUR_K_SIZES = SZ_4K + SZ_2M + SZ_1G;
const S1_QUIRKS = Quirk.ARM_NS | Quirk.ARM_TTBR1 | Quirk.ARM_OUTER_WBWA | Quirk.ARM_HD | Quirk.NO_WARN;
const S2_QUIRKS = Quirk.ARM_S2FWB | Quirk.NO_WARN;

const STAGE1 = {
  quirks: S1_QUIRKS,
  quirkScope: 'stage-1 formats',
  permissions: 'ap',
  memoryType: 'attr-index',
  nonGlobal: true,
  cacheInnerShareable: true,
  accessFlag: true,
  pageType: 3,
  forceLevel0: false,
  concatenates: false,
  registers: 's1',
} as const;

const STAGE2 = {
  quirks: S2_QUIRKS,
  quirkScope: 'stage-2 formats',
  permissions: 'hap',
  memoryType: 'mem-attr',
  nonGlobal: false,
  cacheInnerShareable: true,
  accessFlag: true,
  pageType: 3,
  forceLevel0: false,
  concatenates: true,
  registers: 's2',
  dirtyTracking: false,
} as const;

export const LPAE_FORMATS: Readonly<Record<FormatName, LpaeFormatOps>> = Object.freeze({
  ARM_32_LPAE_S1: { ...STAGE1, name: 'ARM_32_LPAE_S1', maxIas: 32, maxOas: 40, forcedPgsizes: FOUR_K_SIZES, dirtyTracking: false },
  ARM_32_LPAE_S2: { ...STAGE2, name: 'ARM_32_LPAE_S2', maxIas: 40, maxOas: 40, forcedPgsizes: FOUR_K_SIZES },
  ARM_64_LPAE_S1: { ...STAGE1, name: 'ARM_64_LPAE_S1', maxIas: 64, maxOas: 64, forcedPgsizes: null, dirtyTracking: true },
  ARM_64_LPAE_S2: { ...STAGE2, name: 'ARM_64_LPAE_S2', maxIas: 64, maxOas: 64, forcedPgsizes: null },
  ARM_MALI_LPAE: {
    name: 'ARM_MALI_LPAE',
    maxIas: 48,
    maxOas: 40,
    forcedPgsizes: FOUR_K_SIZES,
    quirks: 0,
    quirkScope: 'ARM_MALI_LPAE (it accepts no quirks)',
    permissions: 'hap',
    memoryType: 'attr-index',
    nonGlobal: false,
    cacheInnerShareable: false,
    accessFlag: false,
    pageType: 1,
    forceLevel0: true,
    concatenates: false,
    registers: 'mali',
    dirtyTracking: false,
  },
});

/** The record of a format name (own properties only: `toString` is not a format). */
export function formatOps(name: string): LpaeFormatOps | undefined {
  return Object.hasOwn(LPAE_FORMATS, name) ? LPAE_FORMATS[name as FormatName] : undefined;
}
