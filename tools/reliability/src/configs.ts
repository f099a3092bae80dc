/**
 * The configurations every model-based and fault-injection run covers: each format, each
 * granule it allows, TTBR1, tiny PGDs, concatenated stage-2 PGDs, ARM_HD, non-coherent walks.
 */
import type { Fmt } from './ref-geometry.js';

export interface FuzzConfig {
  name: string;
  format: Fmt;
  pgsizeBitmap: number;
  ias: number;
  oas: number;
  quirks: string[];
  coherentWalk: boolean;
}

const B4K = 0x40201000;
const B16K = 0x2004000;
const B64K = 0x20010000;
const B64K_4T = 0x40020010000;

function c(name: string, format: Fmt, pgsizeBitmap: number, ias: number, oas: number, quirks: string[] = [], coherentWalk = true): FuzzConfig {
  return { name, format, pgsizeBitmap, ias, oas, quirks, coherentWalk };
}

/**
 * A 32-bit hash (FNV-1a) of a configuration's whole name: per-config seeds and choices
 * derive from it, so two configurations whose names have the same length still differ.
 */
export function nameHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

export const CONFIGS: readonly FuzzConfig[] = [
  c('s1-4k-48-48', 'ARM_64_LPAE_S1', B4K, 48, 48),
  c('s1-4k-48-48-hd', 'ARM_64_LPAE_S1', B4K, 48, 48, ['ARM_HD']),
  c('s1-4k-39-40-ttbr1', 'ARM_64_LPAE_S1', B4K, 39, 40, ['ARM_TTBR1']),
  c('s1-4k-40-44-pgd16', 'ARM_64_LPAE_S1', B4K, 40, 44, ['ARM_NS']),
  c('s1-4k-32-32-pgd32', 'ARM_64_LPAE_S1', B4K, 32, 32),
  c('s1-4k-44-44-noncoh', 'ARM_64_LPAE_S1', B4K, 44, 44, ['ARM_OUTER_WBWA'], false),
  c('s1-16k-48-48-pgd16', 'ARM_64_LPAE_S1', B16K, 48, 48, ['ARM_HD']),
  c('s1-16k-47-48-ttbr1', 'ARM_64_LPAE_S1', B16K, 47, 48, ['ARM_TTBR1']),
  c('s1-16k-36-40-noncoh', 'ARM_64_LPAE_S1', B16K, 36, 40, [], false),
  c('s1-64k-48-48', 'ARM_64_LPAE_S1', B64K, 48, 48, ['ARM_HD']),
  c('s1-64k-52-52-4t', 'ARM_64_LPAE_S1', B64K_4T, 52, 52),
  c('s1-64k-42-42-noncoh', 'ARM_64_LPAE_S1', B64K, 42, 42, [], false),
  c('s2-4k-40-40-concat2', 'ARM_64_LPAE_S2', B4K, 40, 40),
  c('s2-4k-42-42-concat8', 'ARM_64_LPAE_S2', B4K, 42, 42, ['ARM_S2FWB']),
  c('s2-4k-48-48', 'ARM_64_LPAE_S2', B4K, 48, 48),
  c('s2-16k-48-48-concat2', 'ARM_64_LPAE_S2', B16K, 48, 48),
  c('s2-16k-40-40-concat16', 'ARM_64_LPAE_S2', B16K, 40, 40),
  c('s2-64k-40-40', 'ARM_64_LPAE_S2', B64K, 40, 40),
  c('s2-64k-52-52', 'ARM_64_LPAE_S2', B64K, 52, 52, [], false),
  c('s1-32-4k-32-40', 'ARM_32_LPAE_S1', B4K, 32, 40),
  c('s1-32-4k-32-32-ns-noncoh', 'ARM_32_LPAE_S1', B4K, 32, 32, ['ARM_NS'], false),
  c('s2-32-4k-40-40-concat', 'ARM_32_LPAE_S2', B4K, 40, 40),
  c('s2-32-4k-32-36', 'ARM_32_LPAE_S2', B4K, 32, 36),
  c('mali-4k-48-40', 'ARM_MALI_LPAE', B4K, 48, 40),
  c('mali-4k-33-33-pgd8', 'ARM_MALI_LPAE', B4K, 33, 33),
  c('mali-4k-39-40-noncoh', 'ARM_MALI_LPAE', B4K, 39, 40, [], false),
];

export function configByName(name: string): FuzzConfig {
  const cfg = CONFIGS.find((x) => x.name === name);
  if (cfg === undefined) throw new Error(`unknown config ${name}; one of ${CONFIGS.map((x) => x.name).join(', ')}`);
  return cfg;
}
