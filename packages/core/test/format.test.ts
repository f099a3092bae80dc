import { describe, expect, it } from 'vitest';
import { IoPgtableError, allocIoPgtableOps, createPageTable, type FormatName, type PgtableCfg } from '../src/index.js';

const B4K = 0x40201000;
const B16K = 0x2004000;
const B64K = 0x20010000;

function make(fmt: FormatName, cfg: PgtableCfg) {
  const r = allocIoPgtableOps(fmt, cfg);
  if (!r.ok) throw new Error(r.reason);
  return r.table;
}
function fails(fmt: string, cfg: PgtableCfg): string {
  const r = allocIoPgtableOps(fmt, cfg);
  expect(r.ok).toBe(false);
  return r.ok ? '' : r.reason;
}

describe('geometry of the selftest configs (spec §3.3 table)', () => {
  // [bitmap, ias, oas, S1 start level, S1 PGD bytes, S2 start level, S2 PGD bytes]
  const rows: Array<[number, number, number, number, number, number, number]> = [
    [B4K, 32, 48, 1, 32, 1, 32],
    [B4K, 36, 48, 1, 512, 1, 512],
    [B4K, 40, 48, 0, 16, 0, 16],
    [B4K, 40, 40, 0, 16, 1, 8192],
    [B4K, 40, 42, 0, 16, 1, 8192],
    [B4K, 42, 42, 0, 64, 1, 32768],
    [B4K, 42, 48, 0, 64, 0, 64],
    [B4K, 44, 48, 0, 256, 0, 256],
    [B4K, 48, 48, 0, 4096, 0, 4096],
    [B16K, 32, 48, 2, 1024, 2, 1024],
    [B16K, 36, 48, 2, 16384, 2, 16384],
    [B16K, 40, 48, 1, 128, 1, 128],
    [B16K, 40, 40, 1, 128, 2, 262144],
    [B16K, 42, 48, 1, 512, 1, 512],
    [B16K, 44, 48, 1, 2048, 1, 2048],
    [B16K, 48, 48, 0, 16, 1, 32768],
    [B64K, 32, 48, 2, 64, 2, 64],
    [B64K, 36, 48, 2, 1024, 2, 1024],
    [B64K, 40, 48, 2, 16384, 2, 16384],
    [B64K, 42, 48, 2, 65536, 2, 65536],
    [B64K, 44, 48, 1, 32, 1, 32],
    [B64K, 48, 48, 1, 512, 1, 512],
  ];
  it.each(rows)('bitmap %s ias %i oas %i', (bitmap, ias, oas, s1l, s1s, s2l, s2s) => {
    const s1 = make('ARM_64_LPAE_S1', { pgsizeBitmap: bitmap, ias, oas });
    expect([s1.geometry.startLevel, s1.geometry.pgdSize]).toEqual([s1l, s1s]);
    const s2 = make('ARM_64_LPAE_S2', { pgsizeBitmap: bitmap, ias, oas });
    expect([s2.geometry.startLevel, s2.geometry.pgdSize]).toEqual([s2l, s2s]);
  });
  it('S2 concatenation of more than 16 tables fails (4K, ias 48, oas 40)', () => {
    expect(fails('ARM_64_LPAE_S2', { pgsizeBitmap: B4K, ias: 48, oas: 40 })).toMatch(/concatenation needs 512 tables/);
  });
  it('Mali always starts at level 0, with a one-entry level 0 when ias <= 39', () => {
    const m = make('ARM_MALI_LPAE', { pgsizeBitmap: B4K, ias: 33, oas: 33 });
    expect([m.geometry.startLevel, m.geometry.pgdBits, m.geometry.pgdSize]).toEqual([0, 0, 8]);
    const m48 = make('ARM_MALI_LPAE', { pgsizeBitmap: B4K, ias: 48, oas: 40 });
    expect([m48.geometry.startLevel, m48.geometry.pgdSize]).toEqual([0, 4096]);
  });
});

describe('page-size restriction and clamping (spec §3.2)', () => {
  it('picks the host page size and keeps its block sizes: 0xfffff000 -> 0x40201000', () => {
    expect(make('ARM_64_LPAE_S1', { pgsizeBitmap: 0xfffff000, ias: 48, oas: 48 }).cfg.pgsizeBitmap).toBe(B4K);
  });
  it('without 4K, the smallest size above it: 0x14000 -> 16K only', () => {
    expect(make('ARM_64_LPAE_S1', { pgsizeBitmap: 0x14000, ias: 40, oas: 40 }).cfg.pgsizeBitmap).toBe(0x4000);
  });
  it('a size below 4K wins over larger ones and leaves nothing usable', () => {
    expect(fails('ARM_64_LPAE_S1', { pgsizeBitmap: 0x800 + 0x10000, ias: 40, oas: 40 })).toMatch(/no usable granule/);
  });
  it('1G alone is not a granule', () => {
    fails('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40000000, ias: 48, oas: 48 });
  });
  it('clamps ias/oas to 48, or 52 with 64K', () => {
    const t = make('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 52, oas: 52 });
    expect([t.cfg.ias, t.cfg.oas]).toEqual([48, 48]);
    const t64 = make('ARM_64_LPAE_S1', { pgsizeBitmap: B64K, ias: 52, oas: 52 });
    expect([t64.cfg.ias, t64.cfg.oas]).toEqual([52, 52]);
  });
  it('keeps the 4 TiB size with 64K only when oas > 48', () => {
    const big = 2 ** 42 + B64K;
    expect(make('ARM_64_LPAE_S1', { pgsizeBitmap: big, ias: 52, oas: 52 }).cfg.pgsizeBitmap).toBe(big);
    expect(make('ARM_64_LPAE_S1', { pgsizeBitmap: big, ias: 48, oas: 48 }).cfg.pgsizeBitmap).toBe(B64K);
  });
  it('accepts a u64 bitmap as bigint', () => {
    expect(make('ARM_64_LPAE_S1', { pgsizeBitmap: 0xffff_ffff_ffff_f000n, ias: 48, oas: 48 }).cfg.pgsizeBitmap).toBe(B4K);
  });
});

describe('format limits and quirks (spec §3.1, §3.5)', () => {
  it('32-bit S1 needs ias <= 32 and oas <= 40', () => {
    fails('ARM_32_LPAE_S1', { pgsizeBitmap: B4K, ias: 33, oas: 40 });
    fails('ARM_32_LPAE_S1', { pgsizeBitmap: B4K, ias: 32, oas: 41 });
    make('ARM_32_LPAE_S1', { pgsizeBitmap: B4K, ias: 32, oas: 40 });
  });
  it('32-bit S2 needs ias <= 40 and oas <= 40', () => {
    fails('ARM_32_LPAE_S2', { pgsizeBitmap: B4K, ias: 41, oas: 40 });
    make('ARM_32_LPAE_S2', { pgsizeBitmap: B4K, ias: 40, oas: 40 });
  });
  it('Mali needs ias <= 48, oas <= 40 and no quirks', () => {
    fails('ARM_MALI_LPAE', { pgsizeBitmap: B4K, ias: 49, oas: 40 });
    fails('ARM_MALI_LPAE', { pgsizeBitmap: B4K, ias: 48, oas: 41 });
    fails('ARM_MALI_LPAE', { pgsizeBitmap: B4K, ias: 48, oas: 40, quirks: ['NO_WARN'] });
  });
  it('32-bit formats and Mali are 4K-only', () => {
    for (const f of ['ARM_32_LPAE_S1', 'ARM_32_LPAE_S2', 'ARM_MALI_LPAE']) fails(f, { pgsizeBitmap: B16K, ias: 32, oas: 32 });
  });
  it('S1 accepts NS, TTBR1, OUTER_WBWA (non-coherent), HD, NO_WARN', () => {
    make('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 48, oas: 48, quirks: ['ARM_NS', 'ARM_TTBR1', 'ARM_HD', 'NO_WARN'] });
    make('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 48, oas: 48, quirks: ['IO_PGTABLE_QUIRK_ARM_OUTER_WBWA'], coherentWalk: false });
  });
  it('S1 rejects S2FWB; S2 rejects NS, TTBR1, HD; both reject NO_PERMS and MTK_EXT', () => {
    fails('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 48, oas: 48, quirks: ['ARM_S2FWB'] });
    for (const q of ['ARM_NS', 'ARM_TTBR1', 'ARM_HD', 'ARM_OUTER_WBWA']) fails('ARM_64_LPAE_S2', { pgsizeBitmap: B4K, ias: 48, oas: 48, quirks: [q] });
    for (const f of ['ARM_64_LPAE_S1', 'ARM_64_LPAE_S2', 'ARM_32_LPAE_S1'])
      for (const q of ['NO_PERMS', 'ARM_MTK_EXT']) fails(f, { pgsizeBitmap: B4K, ias: 32, oas: 32, quirks: [q] });
    make('ARM_64_LPAE_S2', { pgsizeBitmap: B4K, ias: 48, oas: 48, quirks: ['ARM_S2FWB', 'NO_WARN'] });
  });
  it('OUTER_WBWA with a coherent walk fails', () => {
    expect(fails('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 48, oas: 48, quirks: ['ARM_OUTER_WBWA'] })).toMatch(/non-coherent/);
  });
  it('unknown quirk names, formats and unmodelled formats are rejected with a reason', () => {
    expect(fails('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 48, oas: 48, quirks: ['ARM_BOGUS'] })).toMatch(/unknown quirk/);
    expect(fails('ARM_V7S', { pgsizeBitmap: B4K, ias: 32, oas: 32 })).toMatch(/not modelled/);
    expect(fails('NOPE', { pgsizeBitmap: B4K, ias: 32, oas: 32 })).toMatch(/unknown format/);
  });
  it('createPageTable throws a typed IoPgtableError', () => {
    expect(() => createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 48, oas: 39 })).toThrow(IoPgtableError);
  });
});

describe('registers (spec §3.6)', () => {
  it('S1 coherent: IS/WBWA/WBWA, tsz = 64 - ias; MAIR sign-extended in kernel mode, as intended in strict mode', () => {
    const t = make('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 48, oas: 48 });
    expect(t.cfg.tcr).toEqual({ ips: 5, tg: 0, sh: 3, orgn: 1, irgn: 1, tsz: 16 });
    expect(t.cfg.mair).toBe(0xf404_ff44n);
    const k = allocIoPgtableOps('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 48, oas: 48 }, { mode: 'kernel' });
    expect(k.ok && k.table.cfg.mair).toBe(0xffff_ffff_f404_ff44n);
    expect(t.cfg.ttbr).toBe(t.pgd);
  });
  it('S1 non-coherent: OS/NC/NC, OUTER_WBWA keeps orgn WBWA', () => {
    expect(make('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 48, oas: 48, coherentWalk: false }).cfg.tcr).toMatchObject({ sh: 2, orgn: 0, irgn: 0 });
    expect(make('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 48, oas: 48, coherentWalk: false, quirks: ['ARM_OUTER_WBWA'] }).cfg.tcr).toMatchObject({ sh: 2, orgn: 1, irgn: 0 });
  });
  it('IPS/PS encode oas 32..52; any other oas fails', () => {
    const want: Record<number, number> = { 32: 0, 36: 1, 40: 2, 42: 3, 44: 4, 48: 5, 52: 6 };
    for (const [oas, ips] of Object.entries(want)) {
      const bm = Number(oas) === 52 ? B64K : B4K;
      expect(make('ARM_64_LPAE_S1', { pgsizeBitmap: bm, ias: 32, oas: Number(oas) }).cfg.tcr!.ips).toBe(ips);
      expect(make('ARM_64_LPAE_S2', { pgsizeBitmap: bm, ias: 32, oas: Number(oas) }).cfg.vtcr!.ps).toBe(ips);
    }
    for (const oas of [33, 39, 41, 47]) fails('ARM_64_LPAE_S1', { pgsizeBitmap: B4K, ias: 32, oas });
  });
  it('TG uses the TG0 encoding (4K 0, 64K 1, 16K 2), or TG1 with ARM_TTBR1 (16K 1, 4K 2, 64K 3)', () => {
    const tg = (bm: number, q: string[] = []) => make('ARM_64_LPAE_S1', { pgsizeBitmap: bm, ias: 40, oas: 40, quirks: q }).cfg.tcr!.tg;
    expect([tg(B4K), tg(B64K), tg(B16K)]).toEqual([0, 1, 2]);
    expect([tg(B16K, ['ARM_TTBR1']), tg(B4K, ['ARM_TTBR1']), tg(B64K, ['ARM_TTBR1'])]).toEqual([1, 2, 3]);
  });
  it('VTCR.SL0: 4K L0->2, L1->1, L2->0; 16K/64K L1->2, L2->1, L3->0', () => {
    const sl = (bm: number, ias: number, oas = 48) => {
      const t = make('ARM_64_LPAE_S2', { pgsizeBitmap: bm, ias, oas });
      return [t.geometry.startLevel, t.cfg.vtcr!.sl];
    };
    expect(sl(B4K, 48)).toEqual([0, 2]);
    expect(sl(B4K, 36)).toEqual([1, 1]);
    expect(sl(B4K, 30)).toEqual([2, 0]);
    expect(sl(B64K, 48)).toEqual([1, 2]);
    expect(sl(B64K, 40)).toEqual([2, 1]);
    expect(sl(B64K, 29)).toEqual([3, 0]);
    expect(sl(B16K, 40)).toEqual([1, 2]);
    expect(sl(B16K, 36)).toEqual([2, 1]);
  });
  it('S2 VTCR fields: coherent IS/WBWA/WBWA, non-coherent OS/NC/NC, tsz = 64 - ias', () => {
    expect(make('ARM_64_LPAE_S2', { pgsizeBitmap: B4K, ias: 40, oas: 40 }).cfg.vtcr).toEqual({ ps: 2, tg: 0, sh: 3, orgn: 1, irgn: 1, sl: 1, tsz: 24 });
    expect(make('ARM_64_LPAE_S2', { pgsizeBitmap: B4K, ias: 44, oas: 44, coherentWalk: false }).cfg.vtcr).toMatchObject({ sh: 2, orgn: 0, irgn: 0 });
  });
  it('Mali: TRANSTAB = PGD | 0x7 (| 0x10 coherent), MEMATTR 0x888D88', () => {
    const c = make('ARM_MALI_LPAE', { pgsizeBitmap: B4K, ias: 48, oas: 40 });
    expect(c.cfg.transtab).toBe(c.pgd + 0x17);
    expect(c.cfg.memattr).toBe(0x888d88);
    const n = make('ARM_MALI_LPAE', { pgsizeBitmap: B4K, ias: 48, oas: 40, coherentWalk: false });
    expect(n.cfg.transtab).toBe(n.pgd + 0x7);
  });
});
