// Our own traces (not kernel vectors) for issue 13: page tables the bump allocator places
// above the output address space (allocBase >= 2^oas), over several formats, granules, oas
// values, TTBR1, ARM_NS and a non-coherent walk. The kernel's LPAE code does not check a
// table's physical address against oas, so kernel mode (and replay) must accept them and
// encode them as the kernel does; strict mode must refuse them with its `in-range` rule.
// Expected tables are derived here from the encoding rules of the spec
// (shared/spec/kernel-io-pgtable.md §3.3-3.4, FORMAT.md's cheat-sheet), not from the core.
import { AllocatorFaultError } from '@io-pgtable/allocator-api';
import { describe, expect, it } from 'vitest';
import { createBumpAllocator, createPageTable, replayTrace, type FormatName } from '../src/index.js';

interface Config {
  name: string;
  format: FormatName;
  bitmap: bigint;
  granule: number;
  ias: number;
  oas: number;
  quirks?: string[];
  coherent?: boolean;
  allocBase: bigint;
  /** Two 1-granule maps in different top-level slots, and where they point. */
  a: bigint;
  b: bigint;
  pa: bigint;
  pb: bigint;
}

const T = (hi: number) => 0xffffn << 48n | BigInt(hi); // a TTBR1 address with 48-bit ias
const CONFIGS: Config[] = [
  { name: 's1-4k-32-32-at-2p32', format: 'ARM_64_LPAE_S1', bitmap: 0x40201000n, granule: 0x1000, ias: 32, oas: 32, allocBase: 1n << 32n, a: 0x1000n, b: 0x8000_0000n, pa: 0x1234_5000n, pb: 0x5000_0000n },
  { name: 's1-4k-48-40-ttbr1-at-2p40', format: 'ARM_64_LPAE_S1', bitmap: 0x40201000n, granule: 0x1000, ias: 48, oas: 40, quirks: ['ARM_TTBR1'], allocBase: 1n << 40n, a: T(0x1000), b: (0xffffn << 48n) | (1n << 47n), pa: 0x7f_0000_0000n, pb: 0x2000n },
  { name: 's2-4k-40-40-concat-at-2p44', format: 'ARM_64_LPAE_S2', bitmap: 0x40201000n, granule: 0x1000, ias: 40, oas: 40, allocBase: 1n << 44n, a: 0x1000n, b: 1n << 39n, pa: 0x3000n, pb: 0xff_ffff_f000n },
  { name: 's2-4k-48-44-at-2p46', format: 'ARM_64_LPAE_S2', bitmap: 0x40201000n, granule: 0x1000, ias: 48, oas: 44, allocBase: 1n << 46n, a: 0x20_0000n, b: 1n << 40n, pa: 0xabc_0000_0000n, pb: 0x1000n },
  { name: 's1-32-4k-32-40-at-2p41', format: 'ARM_32_LPAE_S1', bitmap: 0x40201000n, granule: 0x1000, ias: 32, oas: 40, allocBase: 1n << 41n, a: 0x4000n, b: 0xc000_0000n, pa: 0x80_0000_0000n - 0x1000n, pb: 0x4000n },
  { name: 'mali-4k-48-40-at-2p45', format: 'ARM_MALI_LPAE', bitmap: 0x40201000n, granule: 0x1000, ias: 48, oas: 40, allocBase: 1n << 45n, a: 0x1000n, b: 1n << 46n, pa: 0x1000_0000n, pb: 0x2000_0000n },
  { name: 's1-16k-47-36-at-2p46', format: 'ARM_64_LPAE_S1', bitmap: 0x2004000n, granule: 0x4000, ias: 47, oas: 36, allocBase: 1n << 46n, a: 0x4000n, b: 1n << 46n, pa: 0x8_0000_0000n, pb: 0xc000n },
  { name: 's1-64k-48-48-at-2p51', format: 'ARM_64_LPAE_S1', bitmap: 0x20010000n, granule: 0x10000, ias: 48, oas: 48, allocBase: 1n << 51n, a: 0x1_0000n, b: 1n << 47n, pa: 0x1_0000n, pb: 0xffff_0000_0000n },
  { name: 's1-4k-40-36-ns-noncoherent-at-2p40', format: 'ARM_64_LPAE_S1', bitmap: 0x40201000n, granule: 0x1000, ias: 40, oas: 36, quirks: ['ARM_NS'], coherent: false, allocBase: 1n << 40n, a: 0x1000n, b: 1n << 39n, pa: 0x9000n, pb: 0xf_ffff_f000n },
];

/** The error `fn` throws (undefined if none). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

const hx = (v: bigint) => '0x' + v.toString(16);
const ADDR_MASK = ((1n << 48n) - 1n) & ~0xfffn; // GENMASK(47, 12)
/** paddr_to_iopte: PA[51:48] fold into bits 15:12 (spec §3.4: table addresses use the same encoding). */
const addrField = (pa: bigint) => (pa | (pa >> 36n)) & ADDR_MASK;

/** Start level, index bits per level and PGD size from spec §3.3 (levels, S2 concatenation). */
function geometry(c: Config) {
  const pgShift = Math.log2(c.granule);
  const bpl = pgShift - 3;
  const levels = Math.ceil((c.ias - pgShift) / bpl);
  let start = 4 - levels;
  let pgdBits = c.ias - pgShift - bpl * (levels - 1);
  const s2 = c.format.endsWith('S2');
  const concat = s2 && ((c.granule === 0x4000 && start === 0 && (c.oas === 48 || c.ias === 48)) || (c.granule === 0x1000 && start === 0 && (c.oas === 40 || c.oas === 42)) || (c.granule === 0x4000 && start === 1 && c.oas === 40));
  if (concat) {
    start++;
    pgdBits += bpl;
  }
  return { pgShift, bpl, start, pgdBits, pgdSize: 8 * 2 ** pgdBits };
}

/** The tables after mapping a and b (one granule each, read+write), built from the rules alone. */
function expectedTables(c: Config): Record<string, Record<string, string>> {
  const g = geometry(c);
  const ns = c.quirks?.includes('ARM_NS') ?? false;
  const coherent = c.coherent ?? true;
  const mali = c.format === 'ARM_MALI_LPAE';
  const s2 = c.format.endsWith('S2');
  // The bump allocator: each allocation aligned to its own size, at least 64 bytes.
  let cursor = c.allocBase;
  const alloc = (size: bigint) => {
    const at = ((cursor + size - 1n) / size) * size;
    cursor = at + size;
    return at;
  };
  const tables = new Map<bigint, Map<number, bigint>>();
  const pgd = alloc(BigInt(Math.max(g.pgdSize, 64)));
  tables.set(pgd, new Map());
  const tableDesc = (pa: bigint) => addrField(pa) | 3n | (ns ? 1n << 63n : 0n) | (coherent ? 0n : 1n << 55n);
  // Leaf for prot read+write, no cache: SH outer (2), AF unless Mali, S1 nG + AP[1], S2/Mali HAP r+w, S2 MemAttr NC (5), NS.
  const leaf = (pa: bigint) =>
    addrField(pa) | (mali ? 1n : 3n) | (2n << 8n) | (mali ? 0n : 1n << 10n) | (s2 || mali ? (1n << 6n) | (1n << 7n) : (1n << 11n) | (1n << 6n)) | (s2 ? 5n << 2n : 0n) | (ns && !s2 ? 1n << 5n : 0n);
  for (const [iova, pa] of [[c.a, c.pa], [c.b, c.pb]] as const) {
    let table = pgd;
    for (let level = g.start; level <= 3; level++) {
      const bits = level === g.start ? g.pgdBits : g.bpl;
      const idx = Number((iova >> BigInt(g.pgShift + g.bpl * (3 - level))) & ((1n << BigInt(bits)) - 1n));
      const entries = tables.get(table)!;
      if (level === 3) {
        entries.set(idx, leaf(pa));
        break;
      }
      let next = entries.get(idx);
      if (next === undefined) {
        const t = alloc(BigInt(c.granule));
        tables.set(t, new Map());
        entries.set(idx, tableDesc(t));
        next = tableDesc(t);
      }
      // Walk to the table we allocated (the descriptor's address round-trips below 2^48 for 4K/16K, via the fold for 64K).
      table = [...tables.keys()].find((k) => tableDesc(k) === next)!;
    }
  }
  const out: Record<string, Record<string, string>> = {};
  for (const [addr, entries] of [...tables].sort((x, y) => (x[0] < y[0] ? -1 : 1))) {
    out[hx(addr)] = Object.fromEntries([...entries].sort((x, y) => x[0] - y[0]).map(([i, v]) => [String(i), hx(v)]));
  }
  return out;
}

function trace(c: Config): string {
  const header = { format: c.format, pgsizeBitmap: hx(c.bitmap), ias: c.ias, oas: c.oas, quirks: c.quirks ?? [], coherentWalk: c.coherent ?? true, allocBase: hx(c.allocBase), dumpEvery: false };
  const map = (iova: bigint, pa: bigint) => ({ op: 'map', iova: hx(iova), paddr: hx(pa), pgsize: hx(BigInt(c.granule)), pgcount: 1, prot: ['read', 'write'] });
  const ops = [map(c.a, c.pa), map(c.b, c.pb), { op: 'iova_to_phys', iova: hx(c.a + 0x123n) }, { op: 'iova_to_phys', iova: hx(c.b + BigInt(c.granule) - 8n) }];
  return [header, ...ops].map((o) => JSON.stringify(o)).join('\n') + '\n';
}

describe('tables above the output address space (allocBase >= 2^oas)', () => {
  it.each(CONFIGS.map((c) => [c.name, c] as const))('%s: kernel mode (replay) accepts and encodes them as the kernel does', (_n, c) => {
    expect(c.allocBase >= 1n << BigInt(c.oas)).toBe(true);
    const out = replayTrace(trace(c), `${c.name}.trace.jsonl`).map((l) => JSON.parse(l));
    expect(out).toHaveLength(6);
    const g = geometry(c);
    expect(out[0].internal).toMatchObject({ startLevel: g.start, pgdSize: hx(BigInt(g.pgdSize)), pgd: hx(c.allocBase) });
    const base = out[0].cfg.ttbr ?? out[0].cfg.vttbr ?? out[0].cfg.transtab;
    expect(BigInt(base) & ~0xfffn).toBe(c.allocBase);
    for (const line of out.slice(1, 3)) expect(line).toMatchObject({ ret: 0, mapped: hx(BigInt(c.granule)) });
    expect(out[3]).toMatchObject({ ret: 0, phys: hx(c.pa + 0x123n) });
    expect(out[4]).toMatchObject({ ret: 0, phys: hx(c.pb + BigInt(c.granule) - 8n) });
    expect(out[5]).toEqual({ final: { tables: expectedTables(c) } });
  });

  it.each(CONFIGS.map((c) => [c.name, c] as const))('%s: strict mode refuses a table above oas (in-range)', (_n, c) => {
    const cfg = { pgsizeBitmap: Number(c.bitmap), ias: c.ias, oas: c.oas, quirks: c.quirks ?? [], coherentWalk: c.coherent ?? true };
    // The PGD itself above oas: creation fails.
    const atPgd = thrown(() => createPageTable(c.format, cfg, { allocator: createBumpAllocator({ base: c.allocBase, limit: 1 << 24 }), mode: 'strict' }));
    expect(atPgd).toBeInstanceOf(AllocatorFaultError);
    expect((atPgd as AllocatorFaultError).rule).toBe('in-range');
    // The PGD just below 2^oas, the next table at 2^oas: the map fails, nothing is mapped.
    const pgdAlloc = Math.max(geometry(c).pgdSize, 64);
    const pt = createPageTable(c.format, cfg, { allocator: createBumpAllocator({ base: 2 ** c.oas - pgdAlloc, limit: 1 << 24 }), mode: 'strict' });
    expect(pt.pgd).toBe(2 ** c.oas - pgdAlloc);
    const atTable = thrown(() => pt.mapPages(c.a, c.pa, c.granule, 1, ['read', 'write']));
    expect(atTable).toBeInstanceOf(AllocatorFaultError);
    expect((atTable as AllocatorFaultError).rule).toBe('in-range');
    expect(pt.iovaToPhys(c.a)).toBe(0);
  });
});
