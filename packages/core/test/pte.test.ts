import { describe, expect, it } from 'vitest';
import { Prot, Quirk, createPageTable, createSystemAllocator, pte, type FormatName } from '../src/index.js';

const { protToPte, pteToBigInt, paddrToPteLo, paddrToPteHi, pteToPaddr, decodePte } = pte;
const RWNC = Prot.READ | Prot.WRITE | Prot.NOEXEC | Prot.CACHE;

/** The 64-bit leaf a 4K page at `pa` gets: template | type | address. */
function leaf(fmt: FormatName, quirks: number, prot: number, pa = 0x1000, type = 3): bigint {
  const t = protToPte(fmt, quirks, prot);
  return pteToBigInt((t.lo | type | paddrToPteLo(pa)) >>> 0, (t.hi | paddrToPteHi(pa)) >>> 0);
}
const bit = (n: number) => 1n << BigInt(n);

describe('leaf attributes (spec §3.4 worked values)', () => {
  it('S1 R|W|NOEXEC|CACHE at PA 0x1000 is 0x0060_0000_0000_1F47', () => {
    expect(leaf('ARM_64_LPAE_S1', 0, RWNC)).toBe(0x0060_0000_0000_1f47n);
  });
  it('S2 R|W|NOEXEC|CACHE at PA 0x1000 is 0x0060_0000_0000_17FF', () => {
    expect(leaf('ARM_64_LPAE_S2', 0, RWNC)).toBe(0x0060_0000_0000_17ffn);
  });
  // Literal values from spec §3.4's prot -> leaf rules (PA 0x1000, 4K page, type 0b11):
  // S1 = nG | AP[2] if R&&!W | AP[1] unless PRIV | AttrIndx | SH | AF; S2 = HAP | MemAttr | SH | AF.
  const LEAVES: Array<[string, number, bigint, bigint]> = [
    ['R|W|NOEXEC|CACHE', RWNC, 0x0060_0000_0000_1f47n, 0x0060_0000_0000_17ffn],
    ['READ', Prot.READ, 0x1ec3n, 0x1657n],
    ['WRITE|MMIO', Prot.WRITE | Prot.MMIO, 0x1e4bn, 0x1687n],
    ['READ|PRIV (S2 ignores PRIV)', Prot.READ | Prot.PRIV, 0x1e83n, 0x1657n],
  ];
  it.each(LEAVES)('%s at PA 0x1000: the literal S1 and S2 leaves, in the 32-bit and the 64-bit formats', (_name, prot, s1, s2) => {
    expect(leaf('ARM_32_LPAE_S1', 0, prot)).toBe(s1);
    expect(leaf('ARM_64_LPAE_S1', 0, prot)).toBe(s1);
    expect(leaf('ARM_32_LPAE_S2', 0, prot)).toBe(s2);
    expect(leaf('ARM_64_LPAE_S2', 0, prot)).toBe(s2);
  });
});

describe('stage-1 bits', () => {
  const s1 = (prot: number, quirks = 0) => leaf('ARM_64_LPAE_S1', quirks, prot, 0);
  it('sets nG (bit 11) and AF (bit 10) on every leaf', () => {
    expect(s1(Prot.READ) & bit(11)).toBe(bit(11));
    expect(s1(Prot.WRITE) & bit(10)).toBe(bit(10));
  });
  it('read-only sets AP[2] (bit 7); read-write and write-only do not', () => {
    expect(s1(Prot.READ) & bit(7)).toBe(bit(7));
    expect(s1(Prot.READ | Prot.WRITE) & bit(7)).toBe(0n);
    expect(s1(Prot.WRITE) & bit(7)).toBe(0n);
  });
  it('AP[1] (bit 6) is set unless PRIV', () => {
    expect(s1(Prot.READ) & bit(6)).toBe(bit(6));
    expect(s1(Prot.READ | Prot.PRIV) & bit(6)).toBe(0n);
  });
  it('AttrIndx (bits 4:2) is 2 for MMIO, 1 for CACHE, 0 otherwise; MMIO wins', () => {
    const idx = (v: bigint) => (v >> 2n) & 7n;
    expect(idx(s1(Prot.READ))).toBe(0n);
    expect(idx(s1(Prot.READ | Prot.CACHE))).toBe(1n);
    expect(idx(s1(Prot.READ | Prot.MMIO))).toBe(2n);
    expect(idx(s1(Prot.READ | Prot.MMIO | Prot.CACHE))).toBe(2n);
  });
  it('SH is inner-shareable with CACHE (even with MMIO), outer-shareable otherwise', () => {
    const sh = (v: bigint) => (v >> 8n) & 3n;
    expect(sh(s1(Prot.READ | Prot.CACHE))).toBe(3n);
    expect(sh(s1(Prot.READ | Prot.CACHE | Prot.MMIO))).toBe(3n);
    expect(sh(s1(Prot.READ))).toBe(2n);
  });
  it('XN (bits 54:53) is set with NOEXEC only', () => {
    expect(s1(Prot.READ | Prot.NOEXEC) & (3n << 53n)).toBe(3n << 53n);
    expect(s1(Prot.READ) & (3n << 53n)).toBe(0n);
  });
  it('ARM_NS sets NS (bit 5) on leaves', () => {
    expect(s1(Prot.READ, Quirk.ARM_NS) & bit(5)).toBe(bit(5));
    expect(s1(Prot.READ) & bit(5)).toBe(0n);
  });
  it('ARM_HD sets DBM (bit 51) on every writable leaf, including write-only, never on read-only', () => {
    expect(s1(Prot.READ | Prot.WRITE, Quirk.ARM_HD) & bit(51)).toBe(bit(51));
    expect(s1(Prot.WRITE, Quirk.ARM_HD) & bit(51)).toBe(bit(51));
    expect(s1(Prot.READ, Quirk.ARM_HD) & bit(51)).toBe(0n);
    expect(s1(Prot.READ | Prot.WRITE) & bit(51)).toBe(0n);
  });
  it('never sets the contiguous hint (bit 52)', () => {
    for (const p of [RWNC, Prot.READ, Prot.WRITE | Prot.MMIO]) expect(s1(p, Quirk.ARM_HD | Quirk.ARM_NS) & bit(52)).toBe(0n);
  });
});

describe('stage-2 bits', () => {
  const s2 = (prot: number, quirks = 0) => leaf('ARM_64_LPAE_S2', quirks, prot, 0);
  const memattr = (v: bigint) => (v >> 2n) & 0xfn;
  it('HAP: bit 6 for read, bit 7 for write; no nG', () => {
    expect(s2(Prot.READ) & (3n << 6n)).toBe(1n << 6n);
    expect(s2(Prot.WRITE) & (3n << 6n)).toBe(2n << 6n);
    expect(s2(Prot.READ) & bit(11)).toBe(0n);
  });
  it('MemAttr: 0x1 for MMIO, 0xF for CACHE, 0x6 with S2FWB, 0x5 otherwise', () => {
    expect(memattr(s2(Prot.READ | Prot.MMIO))).toBe(0x1n);
    expect(memattr(s2(Prot.READ | Prot.CACHE))).toBe(0xfn);
    expect(memattr(s2(Prot.READ | Prot.CACHE, Quirk.ARM_S2FWB))).toBe(0x6n);
    expect(memattr(s2(Prot.READ))).toBe(0x5n);
  });
});

describe('Mali bits', () => {
  it('no AF, SH always outer, HAP-style permissions, S1-style AttrIndx, block type at level 3', () => {
    const t = protToPte('ARM_MALI_LPAE', 0, RWNC);
    const v = pteToBigInt(t.lo, t.hi);
    expect(v & bit(10)).toBe(0n);
    expect((v >> 8n) & 3n).toBe(2n);
    expect((v >> 6n) & 3n).toBe(3n);
    expect((v >> 2n) & 7n).toBe(1n);
    expect(v & bit(11)).toBe(0n);
  });
  it('maps a level-3 page with descriptor type 1', () => {
    const pt = createPageTable('ARM_MALI_LPAE', { pgsizeBitmap: 0x40201000, ias: 48, oas: 40 });
    pt.mapPages(0x1000, 0x5000, 0x1000, 1, Prot.READ);
    expect(pt.lookup(0x1000)).toMatchObject({ kind: 'mapped', level: 3 });
    const r = pt.lookup(0x1000);
    expect(r.kind === 'mapped' && r.pte & 3n).toBe(1n);
  });
});

describe('output address encoding', () => {
  it('4K/16K: bits 47:12 in place', () => {
    expect(paddrToPteLo(0xabcd_e000)).toBe(0xabcd_e000);
    expect(paddrToPteHi(0x1234_abcd_e000)).toBe(0x1234);
    expect(pteToPaddr(0xabcd_e003, 0x1234, 0x1000)).toBe(0x1234_abcd_e000);
  });
  it('64K with a 52-bit PA folds PA[51:48] into bits 15:12 and unfolds them', () => {
    const pa = 0xf_0123_4567_0000; // bits 51:48 = 0xf
    const lo = paddrToPteLo(pa);
    expect(lo & 0xf000).toBe(0xf000);
    expect(lo >>> 16).toBe(0x4567);
    expect(paddrToPteHi(pa)).toBe(0x0123);
    expect(pteToPaddr(lo | 3, paddrToPteHi(pa), 0x10000)).toBe(pa);
  });
  it('decodePte names the fields', () => {
    const d = decodePte(0x0060_0000_0000_1f47n, 3, 0x1000, false);
    expect(d).toMatchObject({ kind: 'page', paddr: 0x1000, attrIndx: 1, sh: 3, af: true, nG: true, xn: true, ap: 1 });
    expect(decodePte(0x8000_1003n, 1, 0x1000, false)).toMatchObject({ kind: 'table', paddr: 0x8000_1000 });
    expect(decodePte(0n, 2, 0x1000, false).kind).toBe('invalid');
  });
});

describe('table descriptors', () => {
  it('carry only type 3 + address, plus NSTable (bit 63) with ARM_NS', () => {
    const allocator = createSystemAllocator();
    const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 48, oas: 48, quirks: ['ARM_NS'] }, { allocator });
    pt.mapPages(0x1000, 0x2000, 0x1000, 1, Prot.READ);
    const walk = pt.pgtableWalk(0x1000);
    expect(walk.ret).toBe(0);
    for (const level of [0, 1, 2]) {
      const d = walk.ptes[level]!;
      expect(d & 3n).toBe(3n);
      expect(d >> 63n).toBe(1n);
      // Nothing but type, address and NSTable.
      expect(d & ~((1n << 63n) | 0xffff_ffff_f000n | 3n)).toBe(0n);
    }
    expect(walk.ptes[3]! & bit(5)).toBe(bit(5));
  });
});
