import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import type { AllocCtx, FlushToken, FreeCtx, TableAllocator } from '@io-pgtable/allocator-api';
import { describe, expect, it } from 'vitest';
import {
  GatherFlushToken,
  IoPgtableError,
  IotlbGather,
  PhysMemory,
  Prot,
  allocIoPgtableOps,
  createBumpAllocator,
  createPageTable,
  createSystemAllocator,
  type FlushOps,
  type Mode,
} from '../src/index.js';

const RW = Prot.READ | Prot.WRITE;
const S1 = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
const SZ_4K = 0x1000;
const SZ_2M = 0x20_0000;

interface Seen {
  allocs: AllocCtx[];
  frees: Array<{ paddr: number; size: number; ctx: FreeCtx | undefined; doneAtFree: boolean | undefined }>;
  flushDone: Array<FlushToken | undefined>;
}

/** A system allocator that records what the core tells it, declaring `reuse`. */
function recording(reuse: 'after-flush' | 'immediate' = 'after-flush'): { allocator: TableAllocator; seen: Seen } {
  const sys = createSystemAllocator();
  const seen: Seen = { allocs: [], frees: [], flushDone: [] };
  const allocator: TableAllocator = {
    caps: { ...sys.caps, name: `recording-${reuse}`, reuse, defersFree: reuse === 'after-flush' },
    memory: sys.memory,
    alloc(size, ctx) {
      seen.allocs.push(ctx);
      return sys.alloc(size, ctx);
    },
    free(paddr, size, ctx) {
      seen.frees.push({ paddr, size, ctx, doneAtFree: ctx?.flush.done });
      sys.free(paddr, size);
    },
    flushDone(token) {
      seen.flushDone.push(token);
    },
    stats: () => sys.stats(),
  };
  return { allocator, seen };
}

function deferredTable(mode: Mode = 'strict', tlb: FlushOps = {}) {
  const { allocator, seen } = recording();
  const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator, mode, tlb: { deferred: true, ...tlb } });
  return { pt, seen, allocator };
}

describe('allocation context: kind and level on every alloc (contract v2)', () => {
  for (const mode of ['kernel', 'strict'] as const) {
    it(`${mode}: the PGD is kind 'pgd' at the start level, each lower table kind 'table' at its own level`, () => {
      const { allocator, seen } = recording();
      const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator, mode });
      expect(seen.allocs).toEqual([{ mayBlock: true, kind: 'pgd', level: 0 }]);
      pt.mapPages(0x1000, 0x8000_0000, SZ_4K, 1, RW, { mayBlock: false, phase: 'run' });
      expect(seen.allocs.slice(1)).toEqual([
        { mayBlock: false, phase: 'run', kind: 'table', level: 1 },
        { mayBlock: false, phase: 'run', kind: 'table', level: 2 },
        { mayBlock: false, phase: 'run', kind: 'table', level: 3 },
      ]);
    });
  }
  it("spreads the caller's context: its own fields pass through, but kind and level are the core's", () => {
    const { allocator, seen } = recording();
    const pt = createPageTable('ARM_64_LPAE_S1', { ...S1, ias: 39 }, { allocator });
    const ctx = { mayBlock: true, kind: 'pgd', level: 7, job: 42 } as unknown as AllocCtx;
    pt.mapPages(0, 0x8000_0000, SZ_2M, 1, RW, ctx);
    expect(seen.allocs[0]).toEqual({ mayBlock: true, kind: 'pgd', level: 1 });
    expect(seen.allocs[1]).toEqual({ mayBlock: true, kind: 'table', level: 2, job: 42 });
    expect(ctx.level).toBe(7); // the caller's object is not modified
  });
});

describe('free context and the synchronous regime', () => {
  it('every free carries kind, level and a token already done (the walk flush ran first)', () => {
    const { allocator, seen } = recording();
    const order: string[] = [];
    const pt = createPageTable('ARM_64_LPAE_S1', S1, {
      allocator,
      tlb: { tlbFlushWalk: () => order.push('walk'), tlbFlushAll: () => order.push('all') },
    });
    pt.mapPages(0, 0x8000_0000, SZ_4K, 1, RW);
    pt.unmapPages(0, 0x4000_0000, 1, new IotlbGather()); // removes the L1 entry: frees L2 and L3
    expect(seen.frees.map((f) => [f.ctx?.kind, f.ctx?.level, f.doneAtFree])).toEqual([
      ['table', 3, true],
      ['table', 2, true],
    ]);
    pt.free();
    expect(seen.frees.slice(2).map((f) => [f.ctx?.kind, f.ctx?.level, f.doneAtFree])).toEqual([
      ['table', 1, true],
      ['pgd', 0, true],
    ]);
    expect(order).toEqual(['walk', 'all']);
    expect(pt.unsyncedGathers).toBe(0);
  });
  it('raw cfg.free hooks receive the free context too', () => {
    const memory = new PhysMemory();
    const sys = createSystemAllocator({ memory });
    const frees: Array<FreeCtx> = [];
    const r = allocIoPgtableOps('ARM_64_LPAE_S1', {
      ...S1,
      alloc: (_c, size, ctx) => sys.alloc(size, ctx),
      free: (_c, p, size, ctx) => {
        frees.push(ctx);
        sys.free(p, size);
      },
    }, { memory });
    if (!r.ok) throw new Error(r.reason);
    r.table.free();
    expect(frees).toHaveLength(1);
    expect(frees[0]).toMatchObject({ kind: 'pgd', level: 0 });
    expect(frees[0]!.flush.done).toBe(true);
  });
  it('the system and bump allocators declare immediate reuse', () => {
    expect(createSystemAllocator().caps.reuse).toBe('immediate');
    expect(createBumpAllocator().caps.reuse).toBe('immediate');
  });
});

describe('the deferred regime: frees under the gather token, completed by iotlbSync', () => {
  it('unmap frees tables under the pending gather token; iotlbSync runs tlbSync, completes, tells the allocator, renews', () => {
    const events: string[] = [];
    const cookie = { id: 'ctx' };
    const { allocator, seen } = recording();
    const pt = createPageTable('ARM_64_LPAE_S1', S1, {
      allocator,
      cookie,
      tlb: {
        deferred: true,
        tlbSync: (g, c) => events.push(`sync ${g.token.done} ${c === cookie}`),
      },
    });
    pt.mapPages(0, 0x8000_0000, SZ_4K, 1, RW);
    const gather = new IotlbGather();
    const token = gather.token;
    pt.unmapPages(0, 0x4000_0000, 1, gather);
    expect(seen.frees).toHaveLength(2);
    for (const f of seen.frees) {
      expect(f.ctx?.flush).toBe(token);
      expect(f.doneAtFree).toBe(false);
    }
    expect(pt.unsyncedGathers).toBe(1);
    expect(pt.stats().unsyncedGathers).toBe(1);
    expect(seen.flushDone).toEqual([]);

    pt.iotlbSync(gather);
    expect(events).toEqual(['sync false true']); // the driver's sync ran before the token completed
    expect(token.done).toBe(true);
    expect(seen.flushDone).toEqual([token]);
    expect(gather.token).not.toBe(token);
    expect(gather.token.id).toBeGreaterThan(token.id);
    expect(gather.token.done).toBe(false);
    expect(pt.unsyncedGathers).toBe(0);
  });
  it('a gather used twice before a sync is counted once; an unmap that frees nothing leaves nothing pending', () => {
    const { pt } = deferredTable();
    const gather = new IotlbGather();
    pt.mapPages(0, 0x8000_0000, SZ_4K, 1, RW);
    pt.unmapPages(0, SZ_4K, 1, gather); // a leaf: no table freed
    expect(pt.unsyncedGathers).toBe(0);
    pt.mapPages(0, 0x8000_0000, SZ_4K, 1, RW);
    pt.mapPages(0x4000_0000, 0x8000_0000, SZ_4K, 1, RW);
    pt.unmapPages(0, 0x4000_0000, 1, gather);
    pt.unmapPages(0x4000_0000, 0x4000_0000, 1, gather);
    expect(pt.unsyncedGathers).toBe(1);
    pt.iotlbSync(gather);
    expect(pt.unsyncedGathers).toBe(0);
  });
  it('frees without a gather (null-gather unmap, a block over a table) go under the page table own gather, synced by iotlbSync()', () => {
    const { pt, seen } = deferredTable('kernel');
    pt.mapPages(0, 0x8000_0000, SZ_4K, 1, RW);
    pt.mapPages(0, 0x8000_0000, SZ_2M, 1, RW); // kernel mode: the L3 table is dropped for the block
    expect(seen.frees).toHaveLength(1);
    expect(seen.frees[0]!.doneAtFree).toBe(false);
    pt.mapPages(0x4000_0000, 0x8000_0000, SZ_4K, 1, RW);
    pt.unmapPages(0x4000_0000, 0x4000_0000, 1, null);
    const own = seen.frees[0]!.ctx!.flush;
    expect(seen.frees.slice(1).every((f) => f.ctx!.flush === own)).toBe(true);
    expect(pt.unsyncedGathers).toBe(1);
    pt.iotlbSync();
    expect(own.done).toBe(true);
    expect(seen.flushDone).toEqual([own]);
    expect(pt.unsyncedGathers).toBe(0);
  });
  it('free(gather) tears down under that gather; the sync may follow free()', () => {
    const { pt, seen } = deferredTable();
    pt.mapPages(0, 0x8000_0000, SZ_4K, 1, RW);
    const gather = new IotlbGather();
    pt.free(gather);
    expect(seen.frees.map((f) => f.ctx?.kind)).toEqual(['table', 'table', 'table', 'pgd']);
    expect(seen.frees.every((f) => f.ctx?.flush === gather.token && !f.doneAtFree)).toBe(true);
    expect(pt.unsyncedGathers).toBe(1);
    const token = gather.token;
    pt.iotlbSync(gather);
    expect(token.done).toBe(true);
    expect(pt.unsyncedGathers).toBe(0);
  });
  it('free() without a gather uses the own gather', () => {
    const { pt, seen } = deferredTable();
    pt.free();
    expect(seen.frees[0]!.doneAtFree).toBe(false);
    expect(pt.unsyncedGathers).toBe(1);
    pt.iotlbSync();
    expect(seen.frees[0]!.ctx!.flush.done).toBe(true);
  });
  it('a gather holding frees of one page table is refused by another (EINVAL, nothing changed)', () => {
    const a = deferredTable();
    const b = deferredTable();
    a.pt.mapPages(0, 0x8000_0000, SZ_4K, 1, RW);
    b.pt.mapPages(0, 0x8000_0000, SZ_4K, 1, RW);
    const gather = new IotlbGather();
    a.pt.unmapPages(0, 0x4000_0000, 1, gather);
    const before = b.pt.tables();
    expect(b.pt.unmapPages(0, 0x4000_0000, 1, gather)).toMatchObject({ unmapped: 0, error: 'EINVAL' });
    expect(b.pt.tables()).toEqual(before);
    expect(() => b.pt.iotlbSync(gather)).toThrow(IoPgtableError);
    expect(() => b.pt.free(gather)).toThrow(IoPgtableError);
    expect(b.pt.isFreed).toBe(false);
    a.pt.iotlbSync(gather);
    expect(b.pt.unmapPages(0, 0x4000_0000, 1, gather)).toEqual({ unmapped: 0x4000_0000 });
    b.pt.iotlbSync(gather);
    expect(b.pt.unsyncedGathers).toBe(0);
  });
  it('tokens are read-only for allocators and their ids increase', () => {
    const t1 = new IotlbGather().token;
    const t2 = new IotlbGather().token;
    expect(t2.id).toBeGreaterThan(t1.id);
    expect(t1).toBeInstanceOf(GatherFlushToken);
    expect(() => {
      (t1 as { done: boolean }).done = true;
    }).toThrow(TypeError);
    expect(t1.done).toBe(false);
  });
  it('the synchronous regime syncs too: tlbSync, done, flushDone(token), fresh token', () => {
    const { allocator, seen } = recording();
    let syncs = 0;
    const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator, tlb: { tlbSync: () => syncs++ } });
    const gather = new IotlbGather();
    const token = gather.token;
    pt.iotlbSync(gather);
    expect(syncs).toBe(1);
    expect(token.done).toBe(true);
    expect(seen.flushDone).toEqual([token]);
    expect(gather.token.done).toBe(false);
  });
});

describe('reuse policy against the flush regime', () => {
  it('strict: deferred flush ops over an immediate-reuse allocator fail with EINVAL naming it', () => {
    const r = allocIoPgtableOps('ARM_64_LPAE_S1', S1, { allocator: createSystemAllocator({ name: 'sys-a' }), tlb: { deferred: true } });
    expect(r).toMatchObject({ ok: false, code: 'EINVAL' });
    expect(!r.ok && r.reason).toContain('sys-a');
    // The default allocator is the system allocator: refused as well.
    expect(allocIoPgtableOps('ARM_64_LPAE_S1', S1, { tlb: { deferred: true } })).toMatchObject({ ok: false, code: 'EINVAL' });
  });
  it('kernel mode keeps the kernel path; after-flush allocators and synchronous ops are accepted', () => {
    expect(allocIoPgtableOps('ARM_64_LPAE_S1', S1, { allocator: createSystemAllocator(), mode: 'kernel', tlb: { deferred: true } }).ok).toBe(true);
    expect(allocIoPgtableOps('ARM_64_LPAE_S1', S1, { allocator: recording('after-flush').allocator, tlb: { deferred: true } }).ok).toBe(true);
    expect(allocIoPgtableOps('ARM_64_LPAE_S1', S1, { allocator: createSystemAllocator(), tlb: { deferred: false } }).ok).toBe(true);
  });
  it('a v1 allocator without caps.reuse is judged by defersFree', () => {
    const sys = createSystemAllocator();
    const v1 = { ...sys, caps: { ...sys.caps, reuse: undefined } };
    expect(allocIoPgtableOps('ARM_64_LPAE_S1', S1, { allocator: v1, tlb: { deferred: true } }).ok).toBe(false);
    const v1Deferring = { ...sys, caps: { ...sys.caps, reuse: undefined, defersFree: true } };
    expect(allocIoPgtableOps('ARM_64_LPAE_S1', S1, { allocator: v1Deferring, tlb: { deferred: true } }).ok).toBe(true);
  });
  it('tlb.deferred must be a boolean', () => {
    const r = allocIoPgtableOps('ARM_64_LPAE_S1', S1, { tlb: { deferred: 'yes' as unknown as boolean } });
    expect(r).toMatchObject({ ok: false, code: 'EINVAL' });
  });
});

describe('dev-mode detection of a gather dropped unsynced', () => {
  it('emits a process warning when a gather with pending frees is garbage-collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => {
      if (w.code === 'IOPGT_UNSYNCED_GATHER') warnings.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      const { pt } = deferredTable();
      const ids = (() => {
        const dropped = new IotlbGather();
        pt.mapPages(0, 0x8000_0000, SZ_4K, 1, RW);
        pt.unmapPages(0, 0x4000_0000, 1, dropped); // dropped without iotlbSync
        const synced = new IotlbGather();
        const syncedId = synced.token.id;
        pt.mapPages(0, 0x8000_0000, SZ_4K, 1, RW);
        pt.unmapPages(0, 0x4000_0000, 1, synced);
        pt.iotlbSync(synced); // dropped after a sync: no warning
        return { dropped: dropped.token.id, synced: syncedId };
      })();
      const about = (id: number) => warnings.filter((w) => w.includes(`flush token ${id} `));
      for (let i = 0; i < 50 && about(ids.dropped).length === 0; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(about(ids.dropped)).toHaveLength(1);
      expect(about(ids.dropped)[0]).toContain('without pt.iotlbSync(gather)');
      expect(about(ids.synced)).toEqual([]);
      expect(pt.unsyncedGathers).toBe(1);
    } finally {
      process.off('warning', onWarning);
    }
  });
});
