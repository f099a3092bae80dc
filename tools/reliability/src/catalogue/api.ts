/** Public API calls on core (createPageTable, the page-table methods, the system allocator) with bad values. */
import { IotlbGather, createPageTable, type PageTable } from '@io-pgtable/core';
import { RW, S1 } from './fixture.js';
import type { ApiCase, Expect, Fixture } from './types.js';

const inval = (match: RegExp): Expect => ({ kind: 'errno', code: 'EINVAL', match });
const range = (match: RegExp): Expect => ({ kind: 'errno', code: 'ERANGE', match });
const throwsIo = (match: RegExp): Expect => ({ kind: 'throw', cls: 'IoPgtableError', code: 'EINVAL', match });
const misuse = (rule: string, match: RegExp): Expect => ({ kind: 'throw', cls: 'AllocatorMisuseError', code: rule, match });

function api(id: string, call: string, input: string, expect: Expect, act: (f: Fixture) => unknown, prepare?: (f: Fixture) => void): ApiCase {
  return { id, surface: 'api', call, input, expect, act, ...(prepare ? { prepare } : {}) };
}

const create = (format: string, cfg: Record<string, unknown>, env: Record<string, unknown> = {}) => (f: Fixture) =>
  createPageTable(format as 'ARM_64_LPAE_S1', cfg as never, { allocator: f.allocator, ...env });

export const CASES: readonly ApiCase[] = [
  api('api-format-unknown', 'createPageTable', "format 'ARM_V9'", throwsIo(/unknown format "ARM_V9"/), create('ARM_V9', S1)),
  api('api-format-unmodelled', 'createPageTable', "format 'ARM_V7S'", throwsIo(/ARM_V7S is not modelled/), create('ARM_V7S', S1)),
  api('api-quirk-unknown', 'createPageTable', "quirks ['ARM_FOO']", throwsIo(/unknown quirk "ARM_FOO"/), create('ARM_64_LPAE_S1', { ...S1, quirks: ['ARM_FOO'] })),
  api('api-quirk-noperms', 'createPageTable', "quirks ['NO_PERMS']", throwsIo(/NO_PERMS|quirk/i), create('ARM_64_LPAE_S1', { ...S1, quirks: ['NO_PERMS'] })),
  api('api-quirk-mask-nan', 'createPageTable', 'quirks NaN', throwsIo(/quirks must be a 32-bit mask/), create('ARM_64_LPAE_S1', { ...S1, quirks: NaN })),
  api('api-ias-nan', 'createPageTable', 'ias NaN', throwsIo(/ias must be an integer/), create('ARM_64_LPAE_S1', { ...S1, ias: NaN })),
  api('api-ias-string', 'createPageTable', "ias '48'", throwsIo(/ias must be an integer/), create('ARM_64_LPAE_S1', { ...S1, ias: '48' })),
  api('api-oas-invalid', 'createPageTable', 'oas 39', throwsIo(/oas|output/i), create('ARM_64_LPAE_S1', { ...S1, oas: 39 })),
  api('api-bitmap-negative', 'createPageTable', 'pgsizeBitmap -1', throwsIo(/pgsizeBitmap -1 is not an unsigned 64-bit integer/), create('ARM_64_LPAE_S1', { ...S1, pgsizeBitmap: -1 })),
  api('api-bitmap-2p64', 'createPageTable', 'pgsizeBitmap 2^64', throwsIo(/not an unsigned 64-bit integer/), create('ARM_64_LPAE_S1', { ...S1, pgsizeBitmap: 1n << 64n })),
  api('api-bitmap-unusable', 'createPageTable', 'pgsizeBitmap 0x40000000 (1G only)', throwsIo(/page size|bitmap|granule/i), create('ARM_64_LPAE_S1', { ...S1, pgsizeBitmap: 0x4000_0000 })),
  api('api-coherent-type', 'createPageTable', "coherentWalk 'yes'", throwsIo(/coherentWalk must be a boolean/), create('ARM_64_LPAE_S1', { ...S1, coherentWalk: 'yes' })),
  api('api-mode-unknown', 'createPageTable', "env.mode 'lenient'", throwsIo(/unknown mode "lenient"/), create('ARM_64_LPAE_S1', S1, { mode: 'lenient' })),
  api('api-mali-ns', 'createPageTable', "ARM_MALI_LPAE with quirks ['ARM_NS']", throwsIo(/quirk|NS/i), create('ARM_MALI_LPAE', { ...S1, oas: 40, quirks: ['ARM_NS'] })),
  api('api-hooks-half', 'createPageTable', 'cfg.alloc without cfg.free', throwsIo(/must be set together/), (f) =>
    createPageTable('ARM_64_LPAE_S1', { ...S1, alloc: () => null }, { memory: f.memory })),
  api('api-map-pgsize-zero', 'mapPages', 'pgsize 0', inval(/pgsize 0x0 is not in the page-size bitmap/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0, 1, [...RW])),
  api('api-map-pgsize-multibit', 'mapPages', 'pgsize 0x201000 (4K|2M)', inval(/more than one bit/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x20_1000, 1, [...RW])),
  api('api-map-pgsize-absent', 'mapPages', 'pgsize 0x800 (not in bitmap)', inval(/not in the page-size bitmap/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x800, 1, [...RW])),
  api('api-map-pgsize-nan', 'mapPages', 'pgsize NaN', inval(/pgsize NaN is not an unsigned 64-bit integer/), (f) => f.pt.mapPages(0x10_0000, 0x1000, NaN, 1, [...RW])),
  api('api-map-iova-unaligned', 'mapPages', 'iova 0x10800, pgsize 4K', inval(/unaligned: iova 0x10800/), (f) => f.pt.mapPages(0x1_0800, 0x1000, 0x1000, 1, [...RW])),
  api('api-map-paddr-unaligned', 'mapPages', 'paddr 0x1234, pgsize 4K', inval(/unaligned: .*pa 0x1234/), (f) => f.pt.mapPages(0x1_0000, 0x1234, 0x1000, 1, [...RW])),
  api('api-map-iova-negative', 'mapPages', 'iova -4096', inval(/iova -4096 is not an unsigned 64-bit integer/), (f) => f.pt.mapPages(-4096, 0x1000, 0x1000, 1, [...RW])),
  api('api-map-iova-2p64', 'mapPages', 'iova 2^64 (bigint)', inval(/iova 0x0n is not an unsigned|is not an unsigned 64-bit integer/), (f) => f.pt.mapPages(1n << 64n, 0x1000, 0x1000, 1, [...RW])),
  api('api-map-iova-string', 'mapPages', "iova '0x1000' (string)", inval(/iova string is not an unsigned 64-bit integer/), (f) => f.pt.mapPages('0x1000' as never, 0x1000, 0x1000, 1, [...RW])),
  api('api-map-iova-range', 'mapPages', 'iova 2^48 (ias 48)', range(/outside the 48-bit input address space/), (f) => f.pt.mapPages(2 ** 48, 0x1000, 0x1000, 1, [...RW])),
  api('api-map-run-past-end', 'mapPages', 'iova 2^48-4K, pgcount 2', range(/runs past the end of the input address space/), (f) => f.pt.mapPages(2 ** 48 - 0x1000, 0x1000, 0x1000, 2, [...RW])),
  api('api-map-paddr-range', 'mapPages', 'paddr 2^48 (oas 48)', range(/outside the 48-bit output address space/), (f) => f.pt.mapPages(0x10_0000, 2 ** 48, 0x1000, 1, [...RW])),
  api('api-map-pgcount-zero', 'mapPages', 'pgcount 0', inval(/pgcount must be at least 1/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, 0, [...RW])),
  api('api-map-pgcount-fraction', 'mapPages', 'pgcount 1.5', inval(/pgcount 1.5 is not a count/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, 1.5, [...RW])),
  api('api-map-pgcount-negative', 'mapPages', 'pgcount -1', inval(/pgcount -1 is not a count/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, -1, [...RW])),
  api('api-map-prot-unknown', 'mapPages', "prot ['read','exec']", inval(/unknown prot "exec"/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, 1, ['read', 'exec'] as never)),
  api('api-map-prot-none', 'mapPages', 'prot [] (neither read nor write)', inval(/neither read nor write/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, 1, [])),
  api('api-map-prot-mask', 'mapPages', 'prot 0x40 (unknown bit)', inval(/prot must be a mask of IOMMU_\* bits/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, 1, 0x40)),
  api('api-map-overlap-page', 'mapPages', 'map over the page at 0x1000', { kind: 'errno', code: 'EEXIST', match: /iova 0x1000 .*already mapped/ }, (f) => f.pt.mapPages(0x1000, 0x5000, 0x1000, 1, [...RW])),
  api('api-map-overlap-block', 'mapPages', 'page inside the 2M block at 0x40000000', { kind: 'errno', code: 'EEXIST', match: /iova 0x40001000 .*already mapped/ }, (f) => f.pt.mapPages(0x4000_1000, 0x5000, 0x1000, 1, [...RW])),
  api('api-map-block-over-pages', 'mapPages', '2M block over the table holding 0x1000', { kind: 'errno', code: 'EEXIST', match: /iova 0x0 .*already mapped/ }, (f) => f.pt.mapPages(0, 0x20_0000, 0x20_0000, 1, [...RW])),
  api('api-unmap-hole', 'unmapPages', 'iova 0x5000 (nothing mapped)', { kind: 'errno', code: 'ENOENT', match: /nothing is mapped at iova 0x5000/ }, (f) => f.pt.unmapPages(0x5000, 0x1000, 1)),
  api('api-unmap-partial-block', 'unmapPages', '4K inside the 2M block', inval(/iova 0x40001000 lies inside a larger block/), (f) => f.pt.unmapPages(0x4000_1000, 0x1000, 1)),
  api('api-unmap-pgcount-zero', 'unmapPages', 'pgcount 0', inval(/pgcount 0 must be at least 1/), (f) => f.pt.unmapPages(0x1000, 0x1000, 0)),
  api('api-unmap-unaligned', 'unmapPages', 'iova 0x1800', inval(/unaligned: iova 0x1800/), (f) => f.pt.unmapPages(0x1800, 0x1000, 1)),
  api('api-unmap-multibit', 'unmapPages', 'pgsize 0x201000', inval(/more than one bit/), (f) => f.pt.unmapPages(0x1000, 0x20_1000, 1)),
  api('api-unmap-range', 'unmapPages', 'iova 2^50', range(/outside the 48-bit input address space/), (f) => f.pt.unmapPages(2 ** 50, 0x1000, 1)),
  api('api-unmap-gather-type', 'unmapPages', 'gather {} (not an IotlbGather)', inval(/gather must be an IotlbGather/), (f) => f.pt.unmapPages(0x1000, 0x1000, 1, {} as IotlbGather)),
  api('api-dirty-size-zero', 'readAndClearDirty', 'size 0', { kind: 'ret', value: -22 }, (f) => f.pt.readAndClearDirty(0x1000, 0, 0, { record() {} })),
  api('api-dirty-past-ias', 'readAndClearDirty', 'range past 2^48', { kind: 'ret', value: -22 }, (f) => f.pt.readAndClearDirty(2 ** 48 - 0x1000, 0x2000, 0, { record() {} })),
  api('api-walk-bad-iova', 'pgtableWalk', "iova 'x'", throwsIo(/iova string is not an unsigned 64-bit integer/), (f) => f.pt.pgtableWalk('x' as never).ret),
  api('api-phys-nan', 'iovaToPhys', 'iova NaN', throwsIo(/iova NaN is not an unsigned 64-bit integer/), (f) => f.pt.iovaToPhys(NaN)),
  api('api-phys-negative', 'iovaToPhys', 'iova -1', throwsIo(/iova -1 is not an unsigned 64-bit integer/), (f) => f.pt.iovaToPhys(-1)),
  api('api-lookup-above-u64', 'lookup', 'iova 2^64 (bigint)', throwsIo(/not an unsigned 64-bit integer/), (f) => f.pt.lookup(1n << 64n)),
  api('api-free-foreign', 'allocator.free', 'free of 0x9000_0000 (never allocated)', misuse('foreign-free', /free of 0x90000000 .* not a live block/), (f) => f.allocator.free(0x9000_0000, 0x1000)),
  api('api-free-double', 'allocator.free', 'second free of a freed table', misuse('double-free', /not a live block/), (f) => f.allocator.free(f.extra.doubleFreed as number, 0x1000), (f) => {
    const p = f.allocator.alloc(0x1000, { mayBlock: true })!;
    f.allocator.free(p, 0x1000);
    f.extra.doubleFreed = p;
  }),
  api('api-free-size', 'allocator.free', 'free of the PGD with size 64K', misuse('free-size', /but the block is 4096 bytes/), (f) => f.allocator.free(f.pt.pgd, 0x1_0000)),
  api('api-alloc-size', 'allocator.alloc', 'alloc(100) (not a power of two)', misuse('size', /alloc size 100 is not a power of two/), (f) => f.allocator.alloc(100, { mayBlock: true })),
  api('api-use-after-free', 'mapPages', 'map on a freed page table', throwsIo(/used after free/), (f) => (f.extra.freedPt as PageTable).mapPages(0x1000, 0x1000, 0x1000, 1, [...RW]), (f) => {
    const other = createPageTable('ARM_64_LPAE_S1', S1, { allocator: f.allocator });
    other.free();
    f.extra.freedPt = other;
  }),
];

