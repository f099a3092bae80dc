/**
 * The kernel's own LPAE selftest (io-pgtable-arm-selftests.c, spec §8), ported:
 * {4K|2M|1G, 16K|32M, 64K|512M} x oas in {32,36,40,42,44,48} x ias <= oas, each run as
 * ARM_64_LPAE_S1 then ARM_64_LPAE_S2, NO_WARN, coherent, cookie = the cfg itself.
 */
import { describe, expect, it } from 'vitest';
import { IotlbGather, Prot, Quirk, createPageTable, createSystemAllocator, type PgtableCfg } from '../src/index.js';

const SZ_1G = 0x4000_0000;
const BITMAPS = [0x4020_1000, 0x0200_4000, 0x2001_0000];
const OAS = [32, 36, 40, 42, 44, 48];

interface Config {
  bitmap: number;
  ias: number;
  oas: number;
}
const configs: Config[] = [];
for (const bitmap of BITMAPS) for (const oas of OAS) for (const ias of OAS) if (ias <= oas) configs.push({ bitmap, ias, oas });

function sizesOf(bitmap: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < 48; b++) if (Math.floor(bitmap / 2 ** b) % 2 === 1) out.push(2 ** b);
  return out;
}

function runSelftest(format: 'ARM_64_LPAE_S1' | 'ARM_64_LPAE_S2', c: Config): void {
  const cfg: PgtableCfg = { pgsizeBitmap: c.bitmap, ias: c.ias, oas: c.oas, quirks: Quirk.NO_WARN, coherentWalk: true };
  const calls = { all: 0, walk: 0, page: 0 };
  const allocator = createSystemAllocator();
  const pt = createPageTable(format, cfg, {
    allocator,
    cookie: cfg,
    tlb: {
      tlbFlushAll: (cookie) => {
        expect(cookie).toBe(cfg);
        calls.all++;
      },
      tlbFlushWalk: (_iova, size, _granule, cookie) => {
        expect(cookie).toBe(cfg);
        expect(sizesOf(pt.cfg.pgsizeBitmap)).toContain(size);
        calls.walk++;
      },
      tlbAddPage: (_g, _iova, granule, cookie) => {
        expect(cookie).toBe(cfg);
        expect(sizesOf(pt.cfg.pgsizeBitmap)).toContain(granule);
        calls.page++;
      },
    },
  });
  // 2. Empty table translates nothing.
  for (const iova of [42, SZ_1G + 42, 2 * SZ_1G + 42]) expect(pt.iovaToPhys(iova)).toBe(0);

  const rwnc = Prot.READ | Prot.WRITE | Prot.NOEXEC | Prot.CACHE;
  const sizes = sizesOf(pt.cfg.pgsizeBitmap);
  // 3. Map each size at 0, 1G, 2G, ...; a second map over it fails; translation is exact.
  let iova = 0;
  for (const size of sizes) {
    expect(pt.mapPages(iova, iova, size, 1, rwnc)).toEqual({ mapped: size });
    expect(pt.mapPages(iova, iova + size, size, 1, Prot.READ | Prot.NOEXEC).error).toBe('EEXIST');
    expect(pt.iovaToPhys(iova + 42)).toBe(iova + 42);
    iova += SZ_1G;
  }
  // 4. Unmap each, translation gone, remap write-only.
  iova = 0;
  for (const size of sizes) {
    expect(pt.unmapPages(iova, size, 1, null)).toEqual({ unmapped: size });
    expect(pt.iovaToPhys(iova + 42)).toBe(0);
    expect(pt.mapPages(iova, iova, size, 1, Prot.WRITE)).toEqual({ mapped: size });
    expect(pt.iovaToPhys(iova + 42)).toBe(iova + 42);
    iova += SZ_1G;
  }
  // 5. The largest size at the very top of the input address space (last PGD entry).
  const largest = sizes[sizes.length - 1]!;
  const top = 2 ** pt.cfg.ias - largest;
  expect(pt.mapPages(top, 0, largest, 1, rwnc)).toEqual({ mapped: largest });
  expect(pt.unmapPages(top, largest, 1, new IotlbGather())).toEqual({ unmapped: largest });
  // 6. Teardown returns every table.
  pt.free();
  expect(calls.all).toBe(1);
  expect(allocator.stats().liveTables).toBe(0);
  expect(allocator.stats().outstanding).toBe(0);
}

describe('kernel LPAE selftest (126 configurations)', () => {
  it('covers 63 configurations per stage', () => {
    expect(configs).toHaveLength(63);
  });
  for (const format of ['ARM_64_LPAE_S1', 'ARM_64_LPAE_S2'] as const) {
    it.each(configs.map((c) => [c.bitmap.toString(16), c.ias, c.oas, c] as const))(
      `${format} bitmap 0x%s ias %i oas %i`,
      (_b, _i, _o, c) => runSelftest(format, c),
    );
  }
});
