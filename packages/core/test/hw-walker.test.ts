import { describe, expect, it } from 'vitest';
import { createPageTable, createSystemAllocator, hw, PhysMemory, xorshift32, type FormatName, type PgtableCfg } from '../src/index.js';

const { Iommu, walkConfigFromRegisters } = hw;

/** A page table over fresh memory with an IOMMU attached; descriptors are then written by hand. */
function bare(format: FormatName, cfg: PgtableCfg) {
  const memory = new PhysMemory();
  const pt = createPageTable(format, cfg, { allocator: createSystemAllocator({ memory }) });
  const iommu = new Iommu({ memory });
  iommu.attach(pt.cfg);
  return { memory, pt, iommu };
}

// Hand-placed lower tables, below the system allocator's region (which starts at 2 GiB).
const L1 = 0x1000_0000;
const L2 = 0x1001_0000;
const L3 = 0x1002_0000;
const TABLE = 3n;

describe('walker: registers', () => {
  it('derives start level, concatenation and ranges from TCR/VTCR/TRANSTAB alone', () => {
    const s1 = bare('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 39, oas: 40 }).pt.cfg;
    expect(walkConfigFromRegisters(s1)).toMatchObject({ regime: 's1', granule: 4096, startLevel: 1, startBits: 9, ias: 39, oas: 40 });
    // 4K, ias 40, oas 40 at stage 2: two concatenated level-1 tables (10 index bits at L1).
    const s2 = bare('ARM_64_LPAE_S2', { pgsizeBitmap: 0x40201000, ias: 40, oas: 40 }).pt.cfg;
    expect(walkConfigFromRegisters(s2)).toMatchObject({ regime: 's2', startLevel: 1, startBits: 10 });
    // 64K, ias 44: a 32-byte level-1 PGD (2 index bits).
    const tiny = bare('ARM_64_LPAE_S1', { pgsizeBitmap: 0x20010000, ias: 44, oas: 48 }).pt.cfg;
    expect(walkConfigFromRegisters(tiny)).toMatchObject({ granule: 65536, startLevel: 1, startBits: 2 });
    const mali = bare('ARM_MALI_LPAE', { pgsizeBitmap: 0x40201000, ias: 39, oas: 40 }).pt.cfg;
    expect(walkConfigFromRegisters(mali)).toMatchObject({ regime: 'mali', startLevel: 0, startBits: 9, ias: 39, checkAf: false });
    const ttbr1 = bare('ARM_64_LPAE_S1', { pgsizeBitmap: 0x4000, ias: 47, oas: 48, quirks: ['ARM_TTBR1'] }).pt.cfg;
    expect(walkConfigFromRegisters(ttbr1)).toMatchObject({ granule: 16384, ttbr1: true, startLevel: 1 });
  });
});

describe('walker: stage-1 descriptors', () => {
  // 4K granule, ias 39: level-1 PGD (the page table's), then hand-made L2 and L3 tables.
  function s1(leaf: bigint, level3 = true) {
    const env = bare('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 39, oas: 40 });
    env.memory.write64(env.pt.pgd, BigInt(L2) | TABLE);
    if (level3) {
      env.memory.write64(L2, BigInt(L3) | TABLE);
      env.memory.write64(L3 + 5 * 8, leaf);
    } else env.memory.write64(L2, leaf);
    return env;
  }

  it('translates the kernel worked value 0x0060000000001f47 (R|W|NOEXEC|CACHE) and enforces XN', () => {
    const { iommu } = s1(0x0060_0000_0000_1f47n);
    const r = iommu.read(5 * 4096 + 0x123);
    expect(r).toMatchObject({ ok: true, paddr: 0x1123, level: 3, source: 'walk' });
    expect(iommu.write(5 * 4096 + 4, 7)).toMatchObject({ ok: true, paddr: 0x1004 });
    expect(iommu.translate(5 * 4096, { exec: true })).toMatchObject({ ok: false, fault: 'permission-fault' });
    expect(iommu.findingsOf('permission-fault')).toHaveLength(1);
  });

  it('AP[2] makes a page read-only; AP[1] clear makes it privileged-only', () => {
    const ro = s1(0x0060_0000_0000_1fc7n).iommu;
    expect(ro.read(5 * 4096)).toMatchObject({ ok: true });
    expect(ro.write(5 * 4096, 1)).toMatchObject({ ok: false, fault: 'permission-fault' });
    const priv = s1(0x0060_0000_0000_1f07n).iommu;
    expect(priv.read(5 * 4096)).toMatchObject({ ok: false, fault: 'permission-fault' });
    expect(priv.read(5 * 4096, { priv: true })).toMatchObject({ ok: true, paddr: 0x1000 });
  });

  it('reports an access-flag fault for a leaf without AF', () => {
    expect(s1(0x0060_0000_0000_1b47n).iommu.read(5 * 4096)).toMatchObject({ ok: false, fault: 'access-flag-fault', level: 3 });
  });

  it('rejects the reserved level-3 type 0b01 and accepts a 2 MiB level-2 block', () => {
    expect(s1(0x0060_0000_0000_1f45n).iommu.read(5 * 4096)).toMatchObject({ ok: false, fault: 'bad-descriptor', level: 3 });
    const block = s1(0x0000_0000_0060_0f45n, false).iommu; // block at PA 0x600000, AF, SH IS, AP[1]
    expect(block.read(0x12_3454)).toMatchObject({ ok: true, paddr: 0x72_3454, level: 2 });
  });

  it('faults on block output bits below the block size, and outside the output range', () => {
    expect(s1(0x0000_0000_0060_1f45n, false).iommu.read(0)).toMatchObject({ ok: false, fault: 'bad-descriptor' });
    // oas 40: PA 2^40 is out of range.
    expect(s1(0x0000_0100_0000_0f47n).iommu.read(5 * 4096)).toMatchObject({ ok: false, fault: 'address-size-fault' });
  });

  it('reports unmapped addresses at the level of the invalid entry, and inputs beyond ias', () => {
    const { iommu } = s1(0x0060_0000_0000_1f47n);
    expect(iommu.read(6 * 4096)).toMatchObject({ ok: false, fault: 'unmapped', level: 3 });
    expect(iommu.read(0x4000_0000)).toMatchObject({ ok: false, fault: 'unmapped', level: 1 });
    expect(iommu.read(2 ** 39)).toMatchObject({ ok: false, fault: 'unmapped' });
    expect(iommu.read(-4096)).toMatchObject({ ok: false, fault: 'unmapped' });
    expect(iommu.findingsOf('unmapped')).toHaveLength(4);
  });
});

describe('walker: stage-2, Mali, 16K and 52-bit descriptors', () => {
  it('applies S2 HAP read and write bits to the kernel worked value 0x00600000000017ff', () => {
    for (const [leaf, read, write] of [
      [0x0060_0000_0000_17ffn, true, true],
      [0x0060_0000_0000_177fn, true, false],
      [0x0060_0000_0000_17bfn, false, true],
    ] as const) {
      const { memory, pt, iommu } = bare('ARM_64_LPAE_S2', { pgsizeBitmap: 0x40201000, ias: 39, oas: 40 });
      memory.write64(pt.pgd, BigInt(L2) | TABLE);
      memory.write64(L2, BigInt(L3) | TABLE);
      memory.write64(L3, leaf);
      expect(iommu.read(0x10).ok).toBe(read);
      expect(iommu.write(0x10, 1).ok).toBe(write);
    }
  });

  it("takes Mali's 0b01 level-3 page and refuses 0b11 there, with no AF requirement", () => {
    for (const [type, ok] of [
      [1n, true],
      [3n, false],
    ] as const) {
      const { memory, pt, iommu } = bare('ARM_MALI_LPAE', { pgsizeBitmap: 0x40201000, ias: 39, oas: 40 });
      memory.write64(pt.pgd, BigInt(L1) | TABLE);
      memory.write64(L1, BigInt(L2) | TABLE);
      memory.write64(L2, BigInt(L3) | TABLE);
      memory.write64(L3 + 8, 0x3000n | 0xc0n | type); // R/W in bits 6-7, AF clear
      expect(iommu.read(0x1000 + 8)).toMatchObject(ok ? { ok: true, paddr: 0x3008 } : { ok: false, fault: 'bad-descriptor' });
    }
  });

  it('allows no level-1 block with a 16K granule', () => {
    const { memory, pt, iommu } = bare('ARM_64_LPAE_S1', { pgsizeBitmap: 0x2004000, ias: 47, oas: 48 });
    memory.write64(pt.pgd, 0x0n | 0x741n); // block at level 1
    expect(iommu.read(0x10)).toMatchObject({ ok: false, fault: 'bad-descriptor', level: 1 });
  });

  it('decodes PA[51:48] from bits [15:12] with a 64K granule and a 52-bit output', () => {
    const { memory, pt, iommu } = bare('ARM_64_LPAE_S1', { pgsizeBitmap: 0x20010000, ias: 42, oas: 52 });
    expect(walkConfigFromRegisters(pt.cfg)).toMatchObject({ startLevel: 2, oas: 52 });
    memory.write64(pt.pgd, BigInt(L3) | TABLE);
    memory.write64(L3, 0x0000_0000_0002_3000n | 0x743n); // OA field 0x20000, PA[51:48] = 3
    expect(iommu.read(0x18)).toMatchObject({ ok: true, paddr: 3 * 2 ** 48 + 0x20018 });
  });
});

/** Tiny deterministic generator: the expected values come from the mapping list, not from the code under test. */
function rng(seed: number) {
  const next = xorshift32(seed);
  return (n: number) => next() % n;
}

interface Config {
  format: FormatName;
  cfg: PgtableCfg;
  label: string;
}
const CONFIGS: Config[] = [
  { label: '64 S1 4K ias48', format: 'ARM_64_LPAE_S1', cfg: { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 } },
  { label: '64 S1 4K ias32 (32-byte PGD)', format: 'ARM_64_LPAE_S1', cfg: { pgsizeBitmap: 0x40201000, ias: 32, oas: 40 } },
  { label: '64 S1 16K ias47 TTBR1', format: 'ARM_64_LPAE_S1', cfg: { pgsizeBitmap: 0x2004000, ias: 47, oas: 48, quirks: ['ARM_TTBR1'] } },
  { label: '64 S1 64K ias44 (32-byte PGD)', format: 'ARM_64_LPAE_S1', cfg: { pgsizeBitmap: 0x20010000, ias: 44, oas: 48 } },
  { label: '64 S2 4K ias40 oas40 (concatenated)', format: 'ARM_64_LPAE_S2', cfg: { pgsizeBitmap: 0x40201000, ias: 40, oas: 40 } },
  { label: '64 S2 16K ias40 oas40 (concatenated)', format: 'ARM_64_LPAE_S2', cfg: { pgsizeBitmap: 0x2004000, ias: 40, oas: 40 } },
  { label: '64 S2 64K ias48', format: 'ARM_64_LPAE_S2', cfg: { pgsizeBitmap: 0x20010000, ias: 48, oas: 48 } },
  { label: '32 S1 4K', format: 'ARM_32_LPAE_S1', cfg: { pgsizeBitmap: 0x40201000, ias: 32, oas: 40 } },
  { label: '32 S2 4K', format: 'ARM_32_LPAE_S2', cfg: { pgsizeBitmap: 0x40201000, ias: 40, oas: 40 } },
  { label: 'Mali 4K ias48', format: 'ARM_MALI_LPAE', cfg: { pgsizeBitmap: 0x40201000, ias: 48, oas: 40 } },
  { label: 'Mali 4K ias33 (8-byte PGD)', format: 'ARM_MALI_LPAE', cfg: { pgsizeBitmap: 0x40201000, ias: 33, oas: 40 } },
];

describe('walker cross-checks the software page table', () => {
  it.each(CONFIGS)('$label: every mapped byte translates to the address it was mapped to', ({ format, cfg }) => {
    const memory = new PhysMemory();
    const pt = createPageTable(format, cfg, { allocator: createSystemAllocator({ memory }) });
    const iommu = new Iommu({ memory, tlb: { entries: 8 }, walkCache: { entries: 4 } });
    iommu.attach(pt.cfg);
    const sizes = pgsizes(pt.cfg.pgsizeBitmap).filter((s) => s <= 2 ** (cfg.ias - 2));
    const rand = rng(cfg.ias * 7919 + format.length);
    const ttbr1 = Array.isArray(cfg.quirks) && cfg.quirks.includes('ARM_TTBR1');
    const maps: Array<{ iova: number; pa: number; size: number }> = [];
    // Non-overlapping slots: slot k of the largest size used holds one mapping.
    const slot = sizes[sizes.length - 1]!;
    const slots = Math.min(48, 2 ** cfg.ias / slot);
    for (let k = 0; k < slots; k++) {
      const size = sizes[rand(sizes.length)]!;
      const off = rand(slot / size) * size;
      const iova = (ttbr1 ? -(2 ** cfg.ias) : 0) + k * slot + off;
      const pa = (rand(2 ** 8) + 1) * Math.max(size, 2 ** 21) % 2 ** Math.min(cfg.oas, 40);
      const r = pt.mapPages(iova < 0 ? BigInt.asUintN(64, BigInt(iova)) : iova, pa, size, 1, ['read', 'write']);
      expect(r.error).toBeUndefined();
      maps.push({ iova, pa, size });
    }
    for (const m of maps) {
      for (const off of [0, m.size - 4, rand(m.size / 4) * 4]) {
        const r = iommu.read(m.iova + off);
        expect(r).toMatchObject({ ok: true, paddr: m.pa + off });
        expect(pt.iovaToPhys(m.iova < 0 ? BigInt.asUintN(64, BigInt(m.iova + off)) : m.iova + off)).toBe(m.pa + off);
      }
      // The byte just past a mapping inside its slot is unmapped unless the slot ends there.
      const after = m.iova + m.size;
      if ((after - (ttbr1 ? -(2 ** cfg.ias) : 0)) % slot !== 0) expect(iommu.read(after)).toMatchObject({ ok: false, fault: 'unmapped' });
    }
    // A device write lands in the mapped physical page.
    const m = maps[0]!;
    iommu.write(m.iova + 8, 0xdeadbeef);
    expect(memory.read64(m.pa + 8) & 0xffffffffn).toBe(0xdeadbeefn);
    expect(iommu.findingsOf('stale-tlb', 'stale-walk', 'bad-descriptor', 'access-flag-fault', 'permission-fault')).toEqual([]);
  });
});

function pgsizes(bitmap: number): number[] {
  const out: number[] = [];
  for (let s = 4096; s <= bitmap; s *= 2) if (Math.floor(bitmap / s) % 2 === 1) out.push(s);
  return out;
}
