import { BLOCKING_CTX } from '@io-pgtable/allocator-api';
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import { PhysMemory, createSystemAllocator, type AccessGuard } from '../src/index.js';

const deny = (kinds: string[]): AccessGuard => ({
  check(kind) {
    if (kinds.includes(kind)) throw new Error(`denied ${kind}`);
  },
});

describe('PhysMemory guards', () => {
  it('a guard added with addGuard is removed only by the function it returned; the open slot cannot see or clear it', () => {
    const m = new PhysMemory();
    const remove = m.addGuard(deny(['write']));
    expect(m.guard).toBeNull();
    m.guard = null;
    expect(() => m.write64(0, 1n)).toThrow('denied write');
    m.guard = deny([]);
    expect(() => m.write64(0, 1n)).toThrow('denied write');
    remove();
    m.write64(0, 1n);
    expect(m.read64(0)).toBe(1n);
  });

  it('runs added guards before the open slot, so an observer never sees an access that was refused', () => {
    const m = new PhysMemory();
    const seen: string[] = [];
    m.guard = { check: (kind) => void seen.push(kind) };
    m.addGuard(deny(['zero']));
    expect(() => m.zero(0, 64)).toThrow('denied zero');
    m.clean(0, 64);
    expect(seen).toEqual(['clean']);
  });

  it('checks reads (read64, read32, readWords) and refuses a caller claiming to be the device', () => {
    const m = new PhysMemory();
    m.write64(0x40, 5n);
    m.addGuard(deny(['read']));
    expect(() => m.read64(0x40)).toThrow('denied read');
    expect(() => m.read32(0x40)).toThrow('denied read');
    expect(() => m.readWords(0x40, 8)).toThrow('denied read');
    expect(() => m.write64(0x40, 1n, 'device' as never)).toThrow(TypeError);
    expect(m.isZero(0x40, 8)).toBe(false); // not a data read: allocators check fresh pages with it
  });

  it('has no public live word array, and the package exports no way to reach one', () => {
    const m = new PhysMemory();
    for (const name of ['chunk', 'peek', 'peekKey']) expect(name in m).toBe(false);
    expect(Object.getOwnPropertyNames(m)).toEqual([]);
    expect(Object.keys(api).filter((k) => /store/i.test(k))).toEqual([]);
    m.write64(0, 3n);
    const copy = m.readWords(0, 8);
    copy[0] = 9;
    expect(m.read64(0)).toBe(3n);
  });

  it('the system allocator asks the guards before taking a page back, and a refused free changes nothing', () => {
    const a = createSystemAllocator();
    const p = a.alloc(4096, BLOCKING_CTX)!;
    const remove = a.memory.addGuard(deny(['release']));
    expect(() => a.free(p, 4096)).toThrow('denied release');
    expect(a.stats()).toMatchObject({ outstanding: 4096, liveTables: 1 });
    remove();
    a.free(p, 4096);
    expect(a.stats().outstanding).toBe(0);
  });
});
