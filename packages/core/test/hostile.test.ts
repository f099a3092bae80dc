// Issue 14, core items: hostile allocators and hostile names. Each case failed before its fix.
import { AllocatorFaultError, AllocatorMisuseError, type TableAllocator } from '@io-pgtable/allocator-api';
import { describe, expect, it } from 'vitest';
import {
  IoPgtableError,
  IotlbGather,
  PageTable,
  Prot,
  TableFreeError,
  allocIoPgtableOps,
  createPageTable,
  createSystemAllocator,
  parseProt,
  parseQuirks,
  type Mode,
} from '../src/index.js';

const RW = Prot.READ | Prot.WRITE;
const S1 = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
const SZ_4K = 0x1000;

/** A system allocator with hooks to misbehave in. */
function hooked(over: Partial<Pick<TableAllocator, 'alloc' | 'free'>> & { name?: string } = {}) {
  const sys = createSystemAllocator();
  const a: TableAllocator = {
    caps: { ...sys.caps, name: over.name ?? 'hostile' },
    memory: sys.memory,
    alloc: over.alloc ?? ((size, ctx) => sys.alloc(size, ctx)),
    free: over.free ?? ((p, size) => sys.free(p, size)),
    flushDone() {},
    stats: () => sys.stats(),
  };
  return { a, sys };
}

describe('re-entrancy: an allocator or flush callback calling back into the same page table', () => {
  for (const mode of ['kernel', 'strict'] as const) {
    it(`${mode}: mapPages from inside alloc fails with a typed error; the outer map and the state are intact`, () => {
      let pt!: PageTable;
      let inner: unknown = null;
      const { a, sys } = hooked({
        alloc(size, ctx) {
          if (ctx.kind === 'table' && inner === null) {
            try {
              pt.mapPages(0x4000_0000, 0x9000_0000, SZ_4K, 1, RW);
              inner = 'no error';
            } catch (e) {
              inner = e;
            }
          }
          return sys.alloc(size, ctx);
        },
      });
      pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator: a, mode });
      expect(pt.mapPages(0x1000, 0x8000_0000, SZ_4K, 4, RW)).toEqual({ mapped: 4 * SZ_4K });
      expect(inner).toBeInstanceOf(IoPgtableError);
      expect((inner as IoPgtableError).reason).toMatch(/re-entrant/);
      expect(pt.iovaToPhys(0x4000_0000)).toBe(0); // the inner map did nothing
      expect(pt.stats().liveTables).toBe(4);
      pt.free();
      expect(sys.stats().liveTables).toBe(0); // nothing left live after free()
    });
  }
  it('every operation is guarded, from free hooks and flush callbacks alike', () => {
    const attempts: Array<[string, unknown]> = [];
    let pt!: PageTable;
    const tryAll = () => {
      const ops: Array<[string, () => unknown]> = [
        ['mapPages', () => pt.mapPages(0x4000_0000, 0, SZ_4K, 1, RW)],
        ['unmapPages', () => pt.unmapPages(0x1000, SZ_4K, 1)],
        ['iovaToPhys', () => pt.iovaToPhys(0x1000)],
        ['lookup', () => pt.lookup(0x1000)],
        ['pgtableWalk', () => pt.pgtableWalk(0x1000)],
        ['readAndClearDirty', () => pt.readAndClearDirty(0, SZ_4K, 0, { record() {} })],
        ['iotlbSync', () => pt.iotlbSync()],
        ['free', () => pt.free()],
      ];
      for (const [name, op] of ops) {
        try {
          op();
          attempts.push([name, 'ok']);
        } catch (e) {
          attempts.push([name, e instanceof IoPgtableError && /re-entrant/.test(e.reason) ? 'refused' : e]);
        }
      }
    };
    pt = createPageTable('ARM_64_LPAE_S1', S1, { tlb: { tlbFlushWalk: () => tryAll() } });
    pt.mapPages(0x1000, 0x8000_0000, SZ_4K, 1, RW);
    pt.unmapPages(0, 0x4000_0000, 1, new IotlbGather()); // removes a table: tlbFlushWalk runs
    expect(attempts.map((x) => x[0])).toHaveLength(8);
    expect(attempts.every((x) => x[1] === 'refused')).toBe(true);
    expect(pt.isFreed).toBe(false);
    expect(pt.stats().liveTables).toBe(2); // PGD and L1: the unmap itself completed
    expect(pt.iovaToPhys(0x1000)).toBe(0);
  });
});

describe('an allocator that throws', () => {
  for (const mode of ['kernel', 'strict'] as const) {
    it(`${mode}: a raw error from alloc mid-map surfaces as AllocatorFaultError (no-throw) with the cause; the table stays consistent`, () => {
      let n = 0;
      const boom = new Error('backing store on fire');
      const { a, sys } = hooked({
        alloc(size, ctx) {
          if (ctx.kind === 'table' && ++n === 2) throw boom;
          return sys.alloc(size, ctx);
        },
      });
      const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator: a, mode });
      let err: unknown;
      try {
        pt.mapPages(0x1000, 0x8000_0000, SZ_4K, 1, RW);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AllocatorFaultError);
      expect(err).toMatchObject({ rule: 'no-throw', allocator: 'hostile' });
      expect((err as Error).cause).toBe(boom);
      // PGD + the level-1 table allocated before the throw: live, reachable, freed by free().
      expect(pt.stats().liveTables).toBe(2);
      expect(pt.tables().size).toBe(2);
      expect(pt.mapPages(0x1000, 0x8000_0000, SZ_4K, 1, RW)).toEqual({ mapped: SZ_4K });
      pt.free();
      expect(sys.stats().liveTables).toBe(0);
    });
  }
  it('typed allocator errors pass through unchanged', () => {
    const misuse = new AllocatorMisuseError('hostile', 'reservation-exhausted', 'no pages reserved');
    const { a } = hooked({ alloc: () => { throw misuse; } });
    expect(() => createPageTable('ARM_64_LPAE_S1', S1, { allocator: a })).toThrow(misuse);
  });
});

describe('teardown with a free hook that throws', () => {
  for (const mode of ['kernel', 'strict'] as const) {
    it(`${mode}: free() continues past every failure, reports them all in one error, and the account is accurate`, () => {
      const failOn = new Set<number>();
      const leaves: number[] = [];
      const { a, sys } = hooked({
        alloc(size, ctx) {
          const p = sys.alloc(size, ctx);
          if (ctx.level === 3) leaves.push(p!);
          return p;
        },
        free(p, size) {
          if (failOn.has(p)) throw new Error(`refusing ${p.toString(16)}`);
          sys.free(p, size);
        },
      });
      const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator: a, mode });
      for (let i = 0; i < 4; i++) pt.mapPages(i * 0x4000_0000, 0x8000_0000, SZ_4K, 1, RW);
      const tables = [...pt.tables().keys()];
      expect(tables).toHaveLength(1 + 1 + 4 + 4);
      // Two leaf tables refuse to be freed.
      const leafTables = [leaves[1]!, leaves[3]!];
      for (const t of leafTables) failOn.add(t);
      let err: unknown;
      try {
        pt.free();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TableFreeError);
      const tfe = err as TableFreeError;
      expect(tfe.failures.map((f) => f.paddr).sort()).toEqual([...leafTables].sort());
      expect(tfe.failures.every((f) => f.error instanceof Error && f.size === SZ_4K && f.level === 3)).toBe(true);
      expect(tfe.message).toContain('2 tables');
      // Every other table went back; the two that did not are still counted.
      expect(sys.stats().liveTables).toBe(2);
      expect(pt.stats()).toMatchObject({ liveTables: 2, liveBytes: 2 * SZ_4K });
      expect(pt.isFreed).toBe(true);
    });
  }
  it('unmap that frees sub-tables also continues, then reports', () => {
    let refuse = true;
    const { a, sys } = hooked({
      free(p, size) {
        if (refuse) {
          refuse = false;
          throw new Error('first free fails');
        }
        sys.free(p, size);
      },
    });
    const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator: a });
    pt.mapPages(0x1000, 0x8000_0000, SZ_4K, 1, RW);
    expect(() => pt.unmapPages(0, 0x4000_0000, 1, new IotlbGather())).toThrow(TableFreeError);
    expect(pt.iovaToPhys(0x1000)).toBe(0); // the unmap itself completed
    expect(sys.stats().liveTables).toBe(3); // PGD, L1, and the L3 table whose free failed; L2 went back
    expect(pt.stats().liveTables).toBe(3);
  });
});

describe('names inherited from Object.prototype are not names', () => {
  const inherited = ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf'];
  it.each(inherited)('prot %s is rejected', (name) => {
    expect(parseProt([name as 'read'])).toEqual({ error: expect.stringContaining('unknown prot') });
    const pt = createPageTable('ARM_64_LPAE_S1', S1);
    expect(pt.mapPages(0, 0x8000_0000, SZ_4K, 1, ['read', name as 'read'])).toMatchObject({ mapped: 0, error: 'EINVAL' });
    expect(pt.stats().liveTables).toBe(1);
  });
  it.each(inherited)('quirk %s (with or without the prefix) is rejected', (name) => {
    expect(parseQuirks([name])).toEqual({ error: expect.stringContaining('unknown quirk') });
    expect(parseQuirks([`IO_PGTABLE_QUIRK_${name}`])).toEqual({ error: expect.stringContaining('unknown quirk') });
    expect(allocIoPgtableOps('ARM_64_LPAE_S1', { ...S1, quirks: [name] })).toMatchObject({ ok: false, code: 'EINVAL' });
  });
  it.each(inherited)('format %s is rejected', (name) => {
    expect(allocIoPgtableOps(name, S1)).toMatchObject({ ok: false, code: 'EINVAL', reason: expect.stringContaining('unknown format') });
  });
  it.each(inherited)('mode %s is rejected', (name) => {
    expect(allocIoPgtableOps('ARM_64_LPAE_S1', S1, { mode: name as Mode })).toMatchObject({ ok: false, code: 'EINVAL' });
  });
});

describe('messages never echo a huge bad value', () => {
  const huge = 'q'.repeat(5_000_000);
  const short = (m: string) => {
    expect(m.length).toBeLessThan(400);
    expect(m).toContain('5000000 chars');
  };
  it('format, mode, quirk and prot names', () => {
    const f = allocIoPgtableOps(huge, S1);
    short(!f.ok ? f.reason : '');
    const m = allocIoPgtableOps('ARM_64_LPAE_S1', S1, { mode: huge as Mode });
    short(!m.ok ? m.reason : '');
    const q = parseQuirks([huge]);
    short('error' in q ? q.error : '');
    const p = parseProt([huge as 'read']);
    short('error' in p ? p.error : '');
  });
  it('a huge bigint iova or pgsize', () => {
    const pt = createPageTable('ARM_64_LPAE_S1', S1);
    const big = 1n << 20_000n;
    for (const r of [pt.mapPages(big, 0, SZ_4K, 1, RW), pt.mapPages(0, 0, big, 1, RW), pt.unmapPages(big, SZ_4K, 1)]) {
      expect(r.error).toBe('EINVAL');
      expect(r.message!.length).toBeLessThan(400);
    }
    expect(() => pt.iovaToPhys(big)).toThrow(IoPgtableError);
    try {
      pt.iovaToPhys(big);
    } catch (e) {
      expect((e as Error).message.length).toBeLessThan(400);
    }
  });
});
