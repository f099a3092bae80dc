import { AllocatorFaultError, type TableAllocator } from '@io-pgtable/allocator-api';
import { describe, expect, it } from 'vitest';
import { FlushCallbackError, IotlbGather, PhysMemory, Prot, createPageTable, createSystemAllocator, type FlushOps } from '../src/index.js';

const RW = Prot.READ | Prot.WRITE;
const S1 = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
const SZ_4K = 0x1000;
const SZ_1G = 0x4000_0000;

type Callback = 'tlbFlushWalk' | 'tlbFlushAll' | 'tlbAddPage' | 'tlbSync';

/** A page table whose driver flush op `which` throws while armed; a page mapped at 0. */
function driver(which: Callback, deferred = false) {
  const system = createSystemAllocator({ memory: new PhysMemory() });
  const armed = { on: false, calls: 0 };
  const op = (name: Callback) => () => {
    if (armed.on && name === which) {
      armed.calls++;
      throw new Error(`driver: ${name} timed out`);
    }
  };
  const tlb: FlushOps<unknown> = { tlbFlushWalk: op('tlbFlushWalk'), tlbFlushAll: op('tlbFlushAll'), tlbAddPage: op('tlbAddPage'), tlbSync: op('tlbSync'), ...(deferred ? { deferred: true } : {}) };
  // Kernel mode: strict refuses an immediate-reuse allocator under deferred flush ops.
  const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator: system, tlb, mode: 'kernel' });
  expect(pt.mapPages(0, 0x4000_0000, SZ_4K, 3, RW)).toEqual({ mapped: 3 * SZ_4K });
  return { system, armed, pt };
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('a driver flush op that throws', () => {
  it('tlbFlushWalk during an unmap that removes tables: typed, the unmap completes and every table under it is freed', () => {
    const { system, armed, pt } = driver('tlbFlushWalk');
    const before = system.stats().liveTables;
    armed.on = true;
    const e = caught(() => pt.unmapPages(0, SZ_1G, 1));
    armed.on = false;
    expect(e).toBeInstanceOf(FlushCallbackError);
    expect((e as FlushCallbackError).failures.map((f) => f.callback)).toEqual(['tlbFlushWalk']);
    expect((e as FlushCallbackError).message).toMatch(/^\[iopgt\] \[core\] tlbFlushWalk threw: driver: tlbFlushWalk timed out/);
    // The level-2 and level-3 tables below the removed entry went back to the allocator.
    expect(system.stats().liveTables).toBe(before - 2);
    expect(pt.iovaToPhys(0x10)).toBe(0);
    pt.free();
    expect(system.stats().outstanding).toBe(0);
  });

  it('tlbAddPage: typed, every page is still added (the rest after a throw) and the unmap completes', () => {
    const { armed, pt } = driver('tlbAddPage');
    armed.on = true;
    const e = caught(() => pt.unmapPages(0, SZ_4K, 3, new IotlbGather()));
    armed.on = false;
    expect(e).toBeInstanceOf(FlushCallbackError);
    expect((e as FlushCallbackError).failures).toHaveLength(3);
    expect(armed.calls).toBe(3);
    for (let i = 0; i < 3; i++) expect(pt.iovaToPhys(i * SZ_4K)).toBe(0);
  });

  it('tlbFlushAll in free(): typed, and teardown still returns every table', () => {
    const { system, armed, pt } = driver('tlbFlushAll');
    armed.on = true;
    const e = caught(() => pt.free());
    armed.on = false;
    expect(e).toBeInstanceOf(FlushCallbackError);
    expect(pt.isFreed).toBe(true);
    expect(system.stats().outstanding).toBe(0);
  });

  it('tlbSync in iotlbSync: typed, nothing changes, and a retry completes the sync', () => {
    const { system, armed, pt } = driver('tlbSync', true);
    const gather = new IotlbGather();
    expect(pt.unmapPages(0, SZ_1G, 1, gather)).toEqual({ unmapped: SZ_1G });
    expect(pt.unsyncedGathers).toBe(1);
    armed.on = true;
    const e = caught(() => pt.iotlbSync(gather));
    armed.on = false;
    expect(e).toBeInstanceOf(FlushCallbackError);
    expect((e as Error).message).toMatch(/the sync did not happen/);
    expect(pt.unsyncedGathers).toBe(1);
    pt.iotlbSync(gather);
    expect(pt.unsyncedGathers).toBe(0);
    pt.free();
    pt.iotlbSync();
    expect(system.stats().outstanding).toBe(0);
  });

  it("the allocator stack's flushDone throwing raw in iotlbSync: typed (the sync itself completed)", () => {
    const system = createSystemAllocator({ memory: new PhysMemory() });
    let armed = false;
    const flaky: TableAllocator = {
      ...system,
      caps: { ...system.caps, name: 'flaky', defersFree: true, reuse: 'after-flush' },
      flushDone(t) {
        if (armed) throw new Error('flaky: release failed');
        system.flushDone(t);
      },
    };
    const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator: flaky, tlb: { deferred: true } });
    pt.mapPages(0, 0x4000_0000, SZ_4K, 1, RW);
    const gather = new IotlbGather();
    pt.unmapPages(0, SZ_1G, 1, gather);
    armed = true;
    const e = caught(() => pt.iotlbSync(gather));
    expect(e).toBeInstanceOf(FlushCallbackError);
    expect((e as FlushCallbackError).failures[0]!.callback).toBe('flushDone');
    expect(pt.unsyncedGathers).toBe(0);
  });

  it('a typed error from flushDone passes through unchanged', () => {
    const system = createSystemAllocator({ memory: new PhysMemory() });
    const typed = new AllocatorFaultError('flaky', 'no-throw', 'typed already');
    const flaky: TableAllocator = { ...system, caps: { ...system.caps, reuse: 'after-flush', defersFree: true }, flushDone: () => { throw typed; } };
    const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator: flaky, tlb: { deferred: true } });
    expect(caught(() => pt.iotlbSync())).toBe(typed);
  });

  it('a failure is reported by the operation it happened in, never by the next one', () => {
    const { armed, pt } = driver('tlbAddPage');
    armed.on = true;
    expect(caught(() => pt.unmapPages(0, SZ_4K, 1, new IotlbGather()))).toBeInstanceOf(FlushCallbackError);
    armed.on = false;
    expect(pt.unmapPages(SZ_4K, SZ_4K, 1, new IotlbGather())).toEqual({ unmapped: SZ_4K });
  });
});
