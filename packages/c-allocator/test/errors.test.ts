import { AllocatorFaultError, AllocatorMisuseError, type AllocCtx } from '@io-pgtable/allocator-api';
import { createSystemAllocator, PhysMemory } from '@io-pgtable/core';
import { describe, expect, test } from 'vitest';
import { CAllocatorError, CAllocatorLoadError, compileCAllocator, createCAllocator, loadCAllocator } from '../src/index.js';
import { FIXTURES, moduleOf, wasmOf } from './helpers/compiler.js';
import { thrown } from '@io-pgtable/conformance';

const CTX: AllocCtx = { mayBlock: true, kind: 'table', level: 2 };
const faulty = (name: string) => moduleOf(`${FIXTURES}/faulty.c`, [`-DFAULT_${name}`]);

function fresh(name: string) {
  const backing = createSystemAllocator();
  return { backing, alloc: createCAllocator(faulty(name), { backing }) };
}


describe('errors from the C side are typed, name the allocator and the rule, and never crash the runner', () => {
  test.each([
    ['TRAP', 'no-throw', 'trap'],
    ['OOB', 'no-throw', 'out-of-bounds'],
    ['ASSERT', 'no-throw', 'assert'],
    ['UNALIGNED', 'aligned', 'bad-return'],
    ['HIGH_PA', 'in-range', 'bad-return'],
    ['FOREIGN_PA', 'in-range', 'bad-return'],
    ['BAD_BACKING_SIZE', 'size', 'bad-call'],
    ['ZERO_OUTSIDE', 'access-violation', 'bad-call'],
  ] as const)('FAULT_%s in alloc -> rule %s, fault %s', (name, rule, fault) => {
    const { alloc } = fresh(name);
    const e = thrown(() => alloc.alloc(4096, CTX));
    expect(e).toBeInstanceOf(CAllocatorError);
    expect(e).toBeInstanceOf(AllocatorFaultError);
    const c = e as CAllocatorError;
    expect([c.rule, c.fault, c.call, c.allocator]).toEqual([rule, fault, 'alloc', 'faulty']);
    expect(c.message).toMatch(new RegExp(`^\\[iopgt\\] \\[faulty\\] ${rule}: `));
  });

  test('the assert message names the expression, file and line', () => {
    const e = thrown(() => fresh('ASSERT').alloc.alloc(4096, CTX)) as CAllocatorError;
    expect(e.message).toMatch(/IOPGT_ASSERT\(size == 12345\) failed at .*faulty\.c:\d+/);
  });

  test('after a trap the instance refuses every call (unusable), other instances are unaffected', () => {
    const { alloc, backing } = fresh('TRAP');
    thrown(() => alloc.alloc(4096, CTX));
    const again = thrown(() => alloc.stats()) as CAllocatorError;
    expect([again.fault, again.rule, again.call]).toEqual(['unusable', 'no-throw', 'stats']);
    expect(alloc.failure?.fault).toBe('trap');
    const healthy = createCAllocator(moduleOf(`${FIXTURES}/faulty.c`), { backing });
    const p = healthy.alloc(4096, CTX);
    expect(p).not.toBeNull();
    expect(healthy.stats()).toMatchObject({ live: 4096, liveTables: 1, outstanding: 4096, backingCalls: 1 });
  });

  test('an address returned unaligned is refused before anything is recorded as live', () => {
    const { alloc } = fresh('UNALIGNED');
    const e = thrown(() => alloc.alloc(4096, CTX)) as CAllocatorError;
    expect(e.paddr).toBe(0x8000_0008);
    expect(alloc.stats().liveTables).toBe(0);
  });

  test('caller misuse is refused before the C code sees it, and changes nothing', () => {
    const { alloc } = fresh('WRITE_INSIDE');
    const p = alloc.alloc(4096, CTX)!;
    const before = alloc.stats();
    const sizeErr = thrown(() => alloc.free(p, 8192));
    expect(sizeErr).toBeInstanceOf(AllocatorMisuseError);
    expect((sizeErr as AllocatorMisuseError).rule).toBe('free-size');
    expect((thrown(() => alloc.free(p + 0x1000_0000, 4096)) as AllocatorMisuseError).rule).toBe('foreign-free');
    expect((thrown(() => alloc.alloc(100, CTX)) as AllocatorMisuseError).rule).toBe('size');
    expect(alloc.stats()).toEqual(before);
    alloc.free(p, 4096);
    expect((thrown(() => alloc.free(p, 4096)) as AllocatorMisuseError).rule).toBe('double-free');
  });

  test('iopgt_write64/read64 reach the simulated memory inside a held page; iopgt_log is kept', () => {
    const memory = new PhysMemory();
    const writes: number[] = [];
    memory.guard = { check: (kind, paddr, _size, who) => void (kind === 'write' && who === 'allocator' && writes.push(paddr)) };
    const backing = createSystemAllocator({ memory });
    const lines: string[] = [];
    const alloc = createCAllocator(faulty('WRITE_INSIDE'), { backing, log: (l) => lines.push(l) });
    const p = alloc.alloc(4096, CTX)!;
    expect(writes).toEqual([p, p]);
    expect(memory.isZero(p, 4096)).toBe(true);
    expect(lines).toEqual(['wrote and read back a descriptor']);
    expect(alloc.logs).toEqual(lines);
  });

  test('a 64-bit address above 2^52 is reported in full', () => {
    const e = thrown(() => fresh('HIGH_PA').alloc.alloc(4096, CTX));
    expect(e.message).toContain('0x1000000080000000');
  });
});

describe('loading', () => {
  test('a module importing libc is refused at load, naming the import', () => {
    const path = wasmOf(`${FIXTURES}/libc.c`, ['-Wl,--allow-undefined']);
    const e = thrown(() => compileCAllocator(path));
    expect(e).toBeInstanceOf(CAllocatorLoadError);
    expect(e.message).toMatch(/imports env\.printf, which the host does not provide/);
  });

  test('bytes that are not wasm, and a missing file, are load errors naming the source', () => {
    expect(thrown(() => compileCAllocator(new Uint8Array([1, 2, 3])))).toBeInstanceOf(CAllocatorLoadError);
    const e = thrown(() => loadCAllocator('/nonexistent/alloc.wasm', { backing: createSystemAllocator() }));
    expect(e).toBeInstanceOf(CAllocatorLoadError);
    expect(e.message).toContain('/nonexistent/alloc.wasm');
  });

  test('caps come from the C struct; a name option overrides the C name', () => {
    const a = createCAllocator(moduleOf('c-page-pool/pool.c'), { backing: createSystemAllocator(), name: 'mine' });
    expect(a.caps).toMatchObject({ name: 'mine', minSize: 64, maxSize: 1 << 20, reuse: 'after-flush', defersFree: true, zeroes: 'on-alloc' });
    expect(a.supportsReservation).toBe(false);
    expect(createCAllocator(moduleOf('c-reservation/reservation.c'), { backing: createSystemAllocator() }).supportsReservation).toBe(true);
  });
});
