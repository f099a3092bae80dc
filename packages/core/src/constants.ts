/** IOMMU protection flags (include/linux/iommu.h). */
export const Prot = Object.freeze({
  READ: 1 << 0,
  WRITE: 1 << 1,
  CACHE: 1 << 2,
  NOEXEC: 1 << 3,
  MMIO: 1 << 4,
  PRIV: 1 << 5,
} as const);
export type ProtName = 'read' | 'write' | 'cache' | 'noexec' | 'mmio' | 'priv';
export const PROT_BY_NAME: Readonly<Record<ProtName, number>> = Object.freeze({
  read: Prot.READ,
  write: Prot.WRITE,
  cache: Prot.CACHE,
  noexec: Prot.NOEXEC,
  mmio: Prot.MMIO,
  priv: Prot.PRIV,
});

/** io-pgtable quirk bits (include/linux/io-pgtable.h, v6.17+). */
export const Quirk = Object.freeze({
  ARM_NS: 1 << 0,
  NO_PERMS: 1 << 1,
  ARM_MTK_EXT: 1 << 3,
  ARM_MTK_TTBR_EXT: 1 << 4,
  ARM_TTBR1: 1 << 5,
  ARM_OUTER_WBWA: 1 << 6,
  ARM_HD: 1 << 7,
  ARM_S2FWB: 1 << 8,
  NO_WARN: 1 << 9,
} as const);
export type QuirkName = keyof typeof Quirk;

/** Page-table formats in kernel enum order; only the LPAE family is modelled. */
export const FORMATS = ['ARM_32_LPAE_S1', 'ARM_32_LPAE_S2', 'ARM_64_LPAE_S1', 'ARM_64_LPAE_S2', 'ARM_MALI_LPAE'] as const;
export type FormatName = (typeof FORMATS)[number];

/** Formats that advertise IO_PGTABLE_CAP_CUSTOM_ALLOCATOR (all LPAE formats). */
export const CUSTOM_ALLOCATOR_FORMATS: ReadonlySet<string> = new Set<string>(FORMATS);
/** Kernel formats that exist but are not modelled; they lack the custom-allocator capability. */
export const UNMODELLED_FORMATS: ReadonlySet<string> = new Set(['ARM_V7S', 'APPLE_DART', 'APPLE_DART2']);


export const SZ_4K = 0x1000;
export const SZ_16K = 0x4000;
export const SZ_64K = 0x10000;
export const SZ_2M = 0x200000;
export const SZ_32M = 0x2000000;
export const SZ_512M = 0x20000000;
export const SZ_1G = 0x40000000;
export const SZ_4T = 2 ** 42;

/** Host CPU page size the kernel was built with; decides the granule when several are offered. */
export const HOST_PAGE_SIZE = SZ_4K;
/** Most granule-sized tables a stage-2 PGD may concatenate (ARM_LPAE_S2_MAX_CONCAT_PAGES). */
export const S2_MAX_CONCAT_PAGES = 16;
/** Levels are numbered 0..3; 3 is the last. */
export const MAX_LEVELS = 4;
