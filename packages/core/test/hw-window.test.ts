// The free window of the IOMMU model: from the page table's free (before the allocator's
// free runs) until the flush covering it completes, a freed table must not be written,
// zeroed, handed out, given back or reassigned.
import { describe, expect, it } from 'vitest';
import { type FlushToken, type FreeCtx, type TableAllocator } from '@io-pgtable/allocator-api';
import { createSystemAllocator, hw, PhysMemory } from '../src/index.js';

const SZ_4K = 0x1000;

function token(id: number): FlushToken & { done: boolean } {
  return { id, done: false };
}
const freeCtx = (flush: FlushToken, level = 3): FreeCtx => ({ kind: 'table', level, flush });

/** A system allocator whose free() does `onFree` first (the bug under test). */
function rig(onFree: (memory: PhysMemory, p: number) => void = () => {}) {
  const memory = new PhysMemory();
  const system = createSystemAllocator({ memory });
  const buggy: TableAllocator = { ...system, free: (p, size, ctx) => (onFree(memory, p), system.free(p, size, ctx)) };
  const generations = new hw.TableGenerations();
  const unwatch = generations.watch(memory);
  const top = generations.observe(buggy);
  const p = top.alloc(SZ_4K, { mayBlock: true, kind: 'table', level: 3 })!;
  memory.write64(p, 0x4000_0003n, 'pgtable'); // a table descriptor the walker could follow
  return { memory, system, generations, top, p, unwatch };
}

describe('free window: writes', () => {
  it('a free-list pointer written inside free() under a pending token is write-before-flush', () => {
    const { generations, top, p } = rig((m, q) => m.write64(q, 0x8000_1000n, 'allocator'));
    top.free(p, SZ_4K, freeCtx(token(1)));
    expect(generations.findings).toHaveLength(1);
    expect(generations.findings[0]).toMatchObject({ kind: 'write-before-flush', rule: 'write-before-flush', paddr: p, level: 3 });
    expect(generations.findings[0]!.message).toContain('written by the allocator');
  });

  it('zeroing inside free() is write-before-flush', () => {
    const { generations, top, p } = rig((m, q) => m.zero(q, SZ_4K, 'allocator'));
    top.free(p, SZ_4K, freeCtx(token(2)));
    expect(generations.findings.map((f) => [f.kind, f.rule])).toEqual([['write-before-flush', 'write-before-flush']]);
    expect(generations.findings[0]!.message).toContain('zeroed');
  });

  it('the same writes under a token that is already done (synchronous flush first) are allowed', () => {
    const { generations, top, p } = rig((m, q) => m.zero(q, SZ_4K, 'allocator'));
    top.free(p, SZ_4K, freeCtx({ id: 3, done: true }));
    expect(generations.openWindows).toBe(0);
    expect(generations.findings).toEqual([]);
  });

  it('a write the guard does not see (the open guard slot cleared around it) is found when the window closes', () => {
    const { generations, top, p } = rig((m, q) => {
      const slot = m.guard;
      m.guard = null;
      m.write64(q, 0xdead_0003n, 'allocator');
      m.guard = slot;
    });
    const t = token(4);
    top.free(p, SZ_4K, freeCtx(t));
    expect(generations.findings).toEqual([]);
    t.done = true;
    top.flushDone(t);
    expect(generations.findings).toHaveLength(1);
    expect(generations.findings[0]).toMatchObject({ kind: 'write-before-flush', rule: 'write-before-flush', paddr: p });
    expect(generations.findings[0]!.message).toContain('changed at byte 0');
  });

  it('after the covering flush, writes are the allocator’s business', () => {
    const { generations, top, p, memory } = rig();
    const t = token(5);
    top.free(p, SZ_4K, freeCtx(t));
    expect(generations.openWindows).toBe(1);
    t.done = true;
    top.flushDone(t);
    memory.zero(p, SZ_4K, 'allocator');
    expect(generations.openWindows).toBe(0);
    expect(generations.findings).toEqual([]);
  });

  it('device writes never count (the walker sets access/dirty bits in live tables)', () => {
    const { generations, top, p, memory } = rig();
    top.free(p, SZ_4K, freeCtx(token(6)));
    memory.guard?.check('write', p, 8, 'device');
    expect(generations.findings).toEqual([]);
  });
});

describe('free window: reuse', () => {
  it('handing a table out again before its flush is reuse-before-flush, including the zeroing that goes with it', () => {
    const { generations, top, p } = rig();
    top.free(p, SZ_4K, freeCtx(token(7)));
    // The system allocator recycles at once: the same page comes back.
    expect(top.alloc(SZ_4K, { mayBlock: true, kind: 'table', level: 3 })).toBe(p);
    expect(generations.findings).toHaveLength(1);
    expect(generations.findings[0]).toMatchObject({ kind: 'reuse-before-flush', rule: 'reuse-before-flush', paddr: p });
  });

  it('flushDone for another token leaves the window open; flushDone() closes every window', () => {
    const { generations, top, p } = rig();
    const t = token(8);
    top.free(p, SZ_4K, freeCtx(t));
    const other = token(9);
    other.done = true;
    top.flushDone(other);
    expect(generations.openWindows).toBe(1);
    top.flushDone();
    expect(generations.openWindows).toBe(0);
    expect(top.alloc(SZ_4K, { mayBlock: true, kind: 'table', level: 3 })).toBe(p);
    expect(generations.findings).toEqual([]);
  });

  it('a page given back to the backing store or reassigned inside the window is reuse-before-flush', () => {
    for (const how of ['released', 'reassigned'] as const) {
      const { generations, top, p } = rig();
      top.free(p, SZ_4K, freeCtx(token(10)));
      if (how === 'released') generations.released('returned to the backing store', p, SZ_4K);
      else generations.reassigned(p, SZ_4K);
      expect(generations.findings.map((f) => f.rule)).toEqual(['reuse-before-flush']);
    }
  });

  it('a v1 free without a ctx opens no window (kernel-faithful path: only the walk cache decides)', () => {
    const { generations, top, p } = rig((m, q) => m.zero(q, SZ_4K, 'allocator'));
    top.free(p, SZ_4K);
    expect(generations.openWindows).toBe(0);
    expect(generations.findings).toEqual([]);
  });

  it('an Iommu over the tracker logs window findings too, and throws for throwOn kinds', () => {
    const memory = new PhysMemory();
    const system = createSystemAllocator({ memory });
    const iommu = new hw.Iommu({ memory, throwOn: ['write-before-flush'] });
    const top = iommu.observe({ ...system, free: (q, size, ctx) => (memory.zero(q, SZ_4K, 'allocator'), system.free(q, size, ctx)) });
    const p = top.alloc(SZ_4K, { mayBlock: true, kind: 'table', level: 3 })!;
    expect(() => top.free(p, SZ_4K, freeCtx(token(11)))).toThrow(hw.IommuFindingError);
    expect(iommu.findingsOf('write-before-flush')).toHaveLength(1);
    expect(iommu.generations.findings).toHaveLength(1);
    iommu.dispose();
  });
});
