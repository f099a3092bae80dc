import { AllocatorMisuseError, BLOCKING_CTX, assertAccounting } from '@io-pgtable/allocator-api';
import { describe, expect, it } from 'vitest';
import { CHUNK_BYTES, PhysMemory, TableRegistry, createBumpAllocator, createSystemAllocator } from '../src/index.js';
import { storeOf } from '../src/phys/memory.js';

describe('PhysMemory', () => {
  it('is sparse: a 52-bit address costs one chunk only when written', () => {
    const m = new PhysMemory();
    expect(m.read64(2 ** 51 + 0x1000)).toBe(0n);
    expect(m.touchedChunks).toBe(0);
    m.write64(2 ** 51 + 0x1000, 0xdead_beef_cafe_f00dn);
    expect(m.read64(2 ** 51 + 0x1000)).toBe(0xdead_beef_cafe_f00dn);
    expect(m.touchedChunks).toBe(1);
  });
  it('stores exact 64-bit values and zeroes/checks ranges across chunk boundaries', () => {
    const m = new PhysMemory();
    const edge = CHUNK_BYTES - 8;
    m.write64(edge, 0xffff_ffff_ffff_ffffn);
    m.write64(CHUNK_BYTES, 1n);
    expect(m.isZero(edge, 16)).toBe(false);
    m.zero(edge, 16);
    expect(m.isZero(edge, 16)).toBe(true);
  });
  it('knows never-written frames are zero and sees writes made through chunk() and touch()', () => {
    const m = new PhysMemory();
    m.touch(0x10_0000, 0x4000);
    expect(m.isZero(0x10_0000, 0x4000)).toBe(true);
    storeOf(m).chunk(0x10_2000)[PhysMemory.wordIndex(0x10_2ff8)] = 7; // inside the frame asked for
    expect(m.isZero(0x10_0000, 0x4000)).toBe(false);
    expect(m.isZero(0x10_0000, 0x2000)).toBe(true);
    const c = storeOf(m).chunk(0x10_0000);
    c[PhysMemory.wordIndex(0x10_3000)] = 1; // a touched frame, written through another frame's array
    expect(m.isZero(0x10_3000, 0x1000)).toBe(false);
  });
  it('calls the access guard for writes, zeroing and cleaning with the accessor', () => {
    const m = new PhysMemory();
    const seen: string[] = [];
    m.guard = { check: (kind, p, size, who) => seen.push(`${kind} ${p.toString(16)} ${size} ${who}`) };
    m.write64(0x1000, 1n, 'pgtable');
    m.zero(0x2000, 4096);
    m.clean(0x2000, 4096);
    expect(seen).toEqual(['write 1000 8 pgtable', 'zero 2000 4096 allocator', 'clean 2000 4096 allocator']);
  });
});

describe('TableRegistry', () => {
  it('detects containment in both directions, at 64-byte granularity', () => {
    const r = new TableRegistry();
    r.add(0x1000, 64);
    expect(r.overlaps(0x1000, 4096)).toBe(true); // a page containing the small table
    expect(r.overlaps(0x1040, 64)).toBe(false);
    r.add(0x10_0000, 0x4_0000);
    expect(r.overlaps(0x12_0000, 64)).toBe(true); // inside a concatenated PGD
    r.remove(0x10_0000, 0x4_0000);
    expect(r.overlaps(0x12_0000, 64)).toBe(false);
  });
});

describe('system allocator', () => {
  it('hands out zeroed, naturally aligned blocks of at least one page, and accounts them', () => {
    const a = createSystemAllocator();
    const p64 = a.alloc(64, BLOCKING_CTX)!;
    const p8k = a.alloc(8192, BLOCKING_CTX)!;
    expect(p64 % 4096).toBe(0);
    expect(p8k % 8192).toBe(0);
    expect(a.stats()).toMatchObject({ outstanding: 4096 + 8192, live: 4096 + 8192, liveTables: 2 });
    assertAccounting(a);
  });
  it('recycles freed blocks zeroed', () => {
    const a = createSystemAllocator();
    const p = a.alloc(4096, BLOCKING_CTX)!;
    a.memory.fill(p, 4096, 0x5a);
    a.free(p, 4096);
    expect(a.alloc(4096, BLOCKING_CTX)).toBe(p);
    expect(a.memory.isZero(p, 4096)).toBe(true);
  });
  it('accepts the logical size of a small PGD (alloc 64, free 16)', () => {
    const a = createSystemAllocator();
    const p = a.alloc(64, BLOCKING_CTX)!;
    a.free(p, 16);
    expect(a.stats().outstanding).toBe(0);
  });
  it('rejects double, foreign and wrong-size frees with the rule named', () => {
    const a = createSystemAllocator();
    const p = a.alloc(4096, BLOCKING_CTX)!;
    expect(() => a.free(p, 8192)).toThrow(/free-size/);
    a.free(p, 4096);
    expect(() => a.free(p, 4096)).toThrow(AllocatorMisuseError);
    expect(() => a.free(p, 4096)).toThrow(/double-free/);
    expect(() => a.free(0x1234_5000, 4096)).toThrow(/foreign-free/);
  });
  it('rejects sizes that are not powers of two without shifting the fault-injection index', () => {
    const a = createSystemAllocator({ failWhen: (n) => n === 0 });
    expect(() => a.alloc(3000, BLOCKING_CTX)).toThrow(/size/);
    expect(a.allocCalls).toBe(0);
    expect(a.alloc(4096, BLOCKING_CTX)).toBeNull(); // call 0 is still the one that fails
  });
  it('keeps alignment gaps as free blocks instead of losing them', () => {
    const a = createSystemAllocator();
    a.alloc(4096, BLOCKING_CTX);
    const big = a.alloc(65536, BLOCKING_CTX)!;
    expect(big % 65536).toBe(0);
    const reused = a.alloc(4096, BLOCKING_CTX)!;
    expect(reused).toBeLessThan(big);
  });
  it('returns null when the region is exhausted or a fault is injected', () => {
    expect(createSystemAllocator({ limit: 4096 }).alloc(8192, BLOCKING_CTX)).toBeNull();
    const f = createSystemAllocator({ failWhen: (n) => n === 1 });
    expect(f.alloc(4096, BLOCKING_CTX)).not.toBeNull();
    expect(f.alloc(4096, BLOCKING_CTX)).toBeNull();
    expect(f.alloc(4096, BLOCKING_CTX)).not.toBeNull();
  });
});

describe('bump allocator (FORMAT.md)', () => {
  it('aligns each allocation to its size, never reuses, logs events, fails past the limit', () => {
    const ev: unknown[] = [];
    const b = createBumpAllocator({ base: 0x8000_0000, limit: 0x8000, onEvent: (e) => ev.push(e) });
    expect(b.alloc(64, BLOCKING_CTX)).toBe(0x8000_0000);
    expect(b.alloc(0x2000, BLOCKING_CTX)).toBe(0x8000_2000);
    b.free(0x8000_0000, 16);
    expect(b.alloc(64, BLOCKING_CTX)).toBe(0x8000_4000); // after the cursor: freed memory is never reused
    expect(b.alloc(0x4000, BLOCKING_CTX)).toBeNull(); // 0x8000_8000 + 0x4000 is past the limit
    expect(ev).toEqual([
      ['alloc', 64, 0x8000_0000],
      ['alloc', 0x2000, 0x8000_2000],
      ['free', 0x8000_0000, 16],
      ['alloc', 64, 0x8000_4000],
      ['alloc_fail', 0x4000],
    ]);
    expect(() => b.free(0x8000_0000, 16)).toThrow(/double-free/);
  });
});
