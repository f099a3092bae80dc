/**
 * Issue 14, the batching layer's part: a page still assigned away from the host is never
 * released to the layer below, and a throwing backing allocator never makes the layer
 * lose or double-count a page.
 */
import { AllocatorFaultError, AllocatorMisuseError, BLOCKING_CTX, assertAccounting } from '@io-pgtable/allocator-api';
import { throwingBacking, thrown } from '@io-pgtable/conformance';
import { PhysMemory, createSystemAllocator } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import { withBatching } from '../src/index.js';

const PAGE = 4096;
const FLUSHED = { kind: 'table' as const, level: 3, flush: { id: 1, done: true } };



describe('batched: the release access check', () => {
  it.each([['deferred', undefined], ['flushed', FLUSHED]] as const)('a %s free of a page still assigned away is refused, typed, nothing changed', (_what, ctx) => {
    const memory = new PhysMemory();
    const away = new Set<number>();
    memory.addGuard({
      check(kind, paddr) {
        if (kind === 'release' && away.has(paddr)) throw new AllocatorMisuseError('access-control', 'access-violation', 'release refused', paddr);
      },
    });
    const system = createSystemAllocator({ memory });
    const b = withBatching(system, { batch: 4 });
    const p = b.alloc(PAGE, BLOCKING_CTX)!;
    away.add(p);
    const before = JSON.stringify([b.stats(), b.counters(), system.stats()]);
    const e = thrown(() => b.free(p, PAGE, ctx));
    expect(e).toBeInstanceOf(AllocatorMisuseError);
    expect((e as AllocatorMisuseError).rule).toBe('access-violation');
    b.flushDone();
    expect(JSON.stringify([b.stats(), b.counters(), system.stats()])).toBe(before);
    // Still live: the same free is accepted once the host owns the page again.
    away.delete(p);
    b.free(p, PAGE, ctx);
    b.flushDone();
    expect(b.stats().live).toBe(0);
  });
});

describe('batched: a throwing inner free never loses a page', () => {
  it('flushDone continues past a throwing free, keeps that page (cached), reports it; the next flushDone returns it', () => {
    const f = throwingBacking(createSystemAllocator());
    const b = withBatching(f.allocator, { batch: 2 });
    const p = b.alloc(PAGE, BLOCKING_CTX)!;
    const q = b.alloc(PAGE, BLOCKING_CTX)!;
    b.free(p, PAGE);
    b.free(q, PAGE);
    f.freeThrows = 1;
    const e = thrown(() => b.flushDone());
    expect(e).toBeInstanceOf(AllocatorFaultError);
    expect((e as Error).message).toMatch(/^\[iopgt\] \[batched\] no-throw: inner free of 0x[0-9a-f]+ threw: injected: free failed$/);
    expect(b.stats()).toMatchObject({ outstanding: PAGE, cached: PAGE, pendingFlush: 0, live: 0 });
    expect(f.allocator.stats().outstanding).toBe(PAGE);
    assertAccounting(b);
    b.flushDone();
    expect(b.stats().outstanding).toBe(0);
    expect(f.allocator.stats().outstanding).toBe(0);
  });

  it('drain keeps a held page whose free threw and returns every other; a second drain returns it', () => {
    const f = throwingBacking(createSystemAllocator());
    const b = withBatching(f.allocator, { batch: 4 });
    expect(b.refill(PAGE, BLOCKING_CTX)).toBe(4);
    f.freeThrows = 1;
    expect(thrown(() => b.drain())).toBeInstanceOf(AllocatorFaultError);
    expect(b.heldPages(PAGE)).toBe(1);
    expect(b.stats()).toMatchObject({ outstanding: PAGE, cached: PAGE });
    expect(f.allocator.stats().outstanding).toBe(PAGE);
    b.drain();
    expect(b.stats().outstanding).toBe(0);
    expect(f.allocator.stats().outstanding).toBe(0);
  });

  it('a short all-or-nothing batch whose give-back throws keeps that page held and accounted', () => {
    let n = 0;
    const system = createSystemAllocator();
    const f = throwingBacking({ ...system, alloc: (size, ctx) => (n++ === 2 ? null : system.alloc(size, ctx)) });
    const b = withBatching(f.allocator, { batch: 4 });
    f.freeThrows = 1;
    expect(thrown(() => b.alloc(PAGE, BLOCKING_CTX))).toBeInstanceOf(AllocatorFaultError);
    expect(b.stats()).toMatchObject({ outstanding: PAGE, cached: PAGE });
    expect(system.stats().outstanding).toBe(PAGE);
    assertAccounting(b);
    b.drain();
    expect(system.stats().outstanding).toBe(0);
  });
});

describe('batched: a throwing inner alloc surfaces typed, with exact accounting', () => {
  it.each([
    ['all-or-nothing', 0],
    ['partial', 2],
  ] as const)('%s: a throw at the 3rd allocation of a batch is an AllocatorFaultError; the layer holds %i pages', (mode, kept) => {
    const f = throwingBacking(createSystemAllocator());
    f.allocThrowAt = 2;
    const b = withBatching(f.allocator, { batch: 4, mode });
    const e = thrown(() => b.alloc(PAGE, BLOCKING_CTX));
    expect(e).toBeInstanceOf(AllocatorFaultError);
    expect((e as AllocatorFaultError).rule).toBe('no-throw');
    expect(b.stats()).toMatchObject({ outstanding: kept * PAGE, cached: kept * PAGE, live: 0 });
    expect(f.allocator.stats().outstanding).toBe(kept * PAGE);
    assertAccounting(b);
    b.drain();
    expect(f.allocator.stats().outstanding).toBe(0);
  });
});

describe('batched: a synchronous free whose inner free throws changes nothing', () => {
  it('a flushed free whose inner free throws leaves the table live; the same free then succeeds', () => {
    const f = throwingBacking(createSystemAllocator());
    const b = withBatching(f.allocator, { batch: 1 });
    const p = b.alloc(PAGE, BLOCKING_CTX)!;
    const before = JSON.stringify(b.stats());
    f.freeThrows = 1;
    expect(thrown(() => b.free(p, PAGE, FLUSHED))).toBeInstanceOf(AllocatorFaultError);
    expect(JSON.stringify(b.stats())).toBe(before);
    b.free(p, PAGE, FLUSHED);
    expect(b.stats().outstanding).toBe(0);
  });
});

describe('batched: messages cap echoed values', () => {
  const huge = 'x'.repeat(1 << 20);
  it.each([
    ['batch', () => withBatching(createSystemAllocator(), { batch: huge as never })],
    ['mode', () => withBatching(createSystemAllocator(), { batch: 1, mode: huge as never })],
    ['free', () => withBatching(createSystemAllocator(), { batch: 1 }).free(huge as never, huge as never)],
    ['alloc', () => withBatching(createSystemAllocator(), { batch: 1 }).alloc(huge as never, BLOCKING_CTX)],
  ])('%s given a 1 MiB string: a typed error whose message stays under 300 characters', (_what, fn) => {
    const e = thrown(fn);
    expect(e instanceof RangeError || e instanceof AllocatorMisuseError).toBe(true);
    expect((e as Error).message.length).toBeLessThan(300);
  });
});
