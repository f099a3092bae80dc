import { describe, expect, it } from 'vitest';
import {
  AllocatorMisuseError,
  COMPLETED_FLUSH,
  PendingFrees,
  assertTableSize,
  flushedCtx,
  isFlushed,
  isTableSize,
  type FlushToken,
  type FreeCtx,
} from '../src/index.js';

function token(id: number): FlushToken & { done: boolean } {
  return { id, done: false };
}
const ctxOf = (flush: FlushToken, level = 3): FreeCtx => ({ kind: 'table', level, flush });

function released(pending: PendingFrees, t: FlushToken | undefined): number[] {
  const out: number[] = [];
  pending.release(t, (p) => out.push(p));
  return out;
}

describe('PendingFrees', () => {
  it('flushDone(token) releases only the frees made under that token', () => {
    const pending = new PendingFrees();
    const a = token(1);
    const b = token(2);
    pending.add(0x1000, 4096, ctxOf(a));
    pending.add(0x2000, 4096, ctxOf(b));
    pending.add(0x3000, 64, ctxOf(a));
    expect(pending.bytes).toBe(4096 + 4096 + 64);
    a.done = true;
    expect(released(pending, a)).toEqual([0x1000, 0x3000]);
    expect(pending.has(0x2000)).toBe(true);
    expect(pending.has(0x1000)).toBe(false);
    expect(pending.bytes).toBe(4096);
    expect(pending.count).toBe(1);
  });

  it('a release for one token also releases other tokens that are done by now', () => {
    const pending = new PendingFrees();
    const a = token(1);
    const b = token(2);
    const c = token(3);
    pending.add(0x1000, 4096, ctxOf(a));
    pending.add(0x2000, 4096, ctxOf(b));
    pending.add(0x3000, 4096, ctxOf(c));
    a.done = true;
    b.done = true;
    expect(released(pending, b)).toEqual([0x1000, 0x2000]);
    expect(pending.count).toBe(1);
  });

  it('flushDone() without a token releases everything, including v1 frees without a ctx', () => {
    const pending = new PendingFrees();
    pending.add(0x1000, 4096, ctxOf(token(7)));
    pending.add(0x2000, 128);
    expect(released(pending, token(99))).toEqual([]);
    expect(released(pending, undefined).sort()).toEqual([0x1000, 0x2000]);
    expect(pending.bytes).toBe(0);
    expect(pending.count).toBe(0);
  });

  it('a free without a ctx waits for flushDone() even when some token completes', () => {
    const pending = new PendingFrees();
    const t = token(1);
    pending.add(0x2000, 128);
    t.done = true;
    expect(released(pending, t)).toEqual([]);
    expect(pending.sizeOf(0x2000)).toBe(128);
  });

  it('hands each page back with its size and ctx, already removed (the visitor may re-add it)', () => {
    const pending = new PendingFrees();
    const t = token(4);
    const ctx = ctxOf(t, 2);
    pending.add(0x4000, 4096, ctx);
    t.done = true;
    const seen: unknown[] = [];
    const n = pending.release(t, (p, size, c) => {
      seen.push([p, size, c, pending.has(p)]);
      pending.add(p, size); // a visitor may queue it again elsewhere
    });
    expect(n).toBe(1);
    expect(seen).toEqual([[0x4000, 4096, ctx, false]]);
    expect(pending.has(0x4000)).toBe(true);
  });
});

describe('flush helpers', () => {
  it('isFlushed is true only for a ctx whose token is done', () => {
    const t = token(1);
    expect(isFlushed(undefined)).toBe(false);
    expect(isFlushed(ctxOf(t))).toBe(false);
    t.done = true;
    expect(isFlushed(ctxOf(t))).toBe(true);
    expect(COMPLETED_FLUSH.done).toBe(true);
  });

  it('flushedCtx keeps a done ctx and otherwise builds one under a completed flush', () => {
    const t = token(1);
    const pending = ctxOf(t, 2);
    expect(flushedCtx(pending)).toEqual({ kind: 'table', level: 2, flush: COMPLETED_FLUSH });
    t.done = true;
    expect(flushedCtx(pending)).toBe(pending);
    expect(flushedCtx(undefined)).toEqual({ kind: 'table', level: 3, flush: COMPLETED_FLUSH });
  });
});

describe('table size assertions', () => {
  it('accepts powers of two in [64, maxSize] and rejects the rest with rule size', () => {
    for (const s of [64, 128, 4096, 1 << 20]) expect(isTableSize(s, 1 << 20)).toBe(true);
    for (const s of [0, 32, 96, 4095, 2 << 20, NaN, -64]) {
      expect(isTableSize(s, 1 << 20)).toBe(false);
      expect(() => assertTableSize('pool', s, 1 << 20)).toThrow(AllocatorMisuseError);
    }
    expect(() => assertTableSize('pool', 96, 4096)).toThrow('[iopgt] [pool] size: alloc size 96 is not a power of two in [64, 4096]');
  });
});
