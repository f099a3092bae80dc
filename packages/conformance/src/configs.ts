import type { PgtableCfg } from '@io-pgtable/core';
import type { ConformanceFormat, ConformanceGranule, ConformanceOptions } from './options.js';
import { ALL_FORMATS, ALL_GRANULES } from './options.js';

/** One page-table configuration the suite drives. */
export interface TableConfig {
  readonly label: string;
  readonly format: ConformanceFormat;
  readonly granule: ConformanceGranule;
  readonly cfg: PgtableCfg;
}

const BITMAP: Readonly<Record<ConformanceGranule, number>> = { 4096: 0x40201000, 16384: 0x2004000, 65536: 0x20010000 };

function c(format: ConformanceFormat, granule: ConformanceGranule, ias: number, oas: number, note: string): TableConfig {
  return { label: `${format} ${granule / 1024}K ias${ias} oas${oas}${note}`, format, granule, cfg: { pgsizeBitmap: BITMAP[granule], ias, oas } };
}

/**
 * Every format and granule the kernel supports, including PGDs smaller than the 64-byte
 * minimum allocation (allocated as 64, freed with their logical size) and concatenated
 * stage-2 PGDs (several granules, allocated as one naturally aligned block).
 */
export const TABLE_CONFIGS: readonly TableConfig[] = Object.freeze([
  c('ARM_64_LPAE_S1', 4096, 48, 48, ''),
  c('ARM_64_LPAE_S1', 4096, 32, 40, ' (32-byte PGD)'),
  c('ARM_64_LPAE_S1', 16384, 47, 48, ''),
  c('ARM_64_LPAE_S1', 65536, 48, 48, ''),
  c('ARM_64_LPAE_S1', 65536, 44, 48, ' (32-byte PGD)'),
  c('ARM_64_LPAE_S2', 4096, 40, 40, ' (2 concatenated PGD pages)'),
  c('ARM_64_LPAE_S2', 16384, 40, 40, ' (16 concatenated PGD pages)'),
  c('ARM_64_LPAE_S2', 65536, 42, 48, ''),
  c('ARM_32_LPAE_S1', 4096, 32, 40, ' (32-byte PGD)'),
  c('ARM_32_LPAE_S2', 4096, 40, 40, ' (2 concatenated PGD pages)'),
  c('ARM_MALI_LPAE', 4096, 48, 40, ''),
  c('ARM_MALI_LPAE', 4096, 39, 40, ' (8-byte PGD)'),
]);

/** The configurations selected by `options.formats` / `options.granules`. */
export function selectConfigs(options: Pick<ConformanceOptions, 'formats' | 'granules'>): TableConfig[] {
  const formats = new Set(options.formats ?? ALL_FORMATS);
  const granules = new Set(options.granules ?? ALL_GRANULES);
  return TABLE_CONFIGS.filter((t) => formats.has(t.format) && granules.has(t.granule));
}
