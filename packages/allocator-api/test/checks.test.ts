import { describe, expect, it } from 'vitest';
import { ALLOCATION_RULES, AllocatorFaultError, AllocatorMisuseError, MAX_VALUE_CHARS, TableLedger, asAllocatorError, assertTableSize, checkAllocation, describeValue, freeSizeError, isPaddr, notLiveError } from '../src/index.js';

const open = { limit: 2 ** 40 };

describe('checkAllocation', () => {
  it('accepts a zeroed, aligned, in-range, non-overlapping allocation', () => {
    expect(checkAllocation(0x8000_0000, 4096, { ...open, overlaps: () => false, isZero: () => true })).toBeNull();
  });
  it('names the first rule broken, in order: in-range, aligned, no-overlap, zeroed', () => {
    const all = { limit: 2 ** 32, overlaps: () => true, isZero: () => false };
    expect(checkAllocation(-1, 4096, all)?.rule).toBe('in-range');
    expect(checkAllocation(2 ** 32, 4096, all)?.rule).toBe('in-range');
    expect(checkAllocation(2 ** 32 - 2048, 4096, all)?.rule).toBe('in-range'); // the end counts
    expect(checkAllocation(0x800, 4096, all)?.rule).toBe('aligned');
    expect(checkAllocation(0x1000, 4096, all)?.rule).toBe('no-overlap');
    expect(checkAllocation(0x1000, 4096, { ...all, overlaps: () => false })?.rule).toBe('zeroed');
  });
  it('skips the probes it is not given', () => {
    expect(checkAllocation(0x1000, 4096, open)).toBeNull();
  });
  it('passes the allocation to the probes', () => {
    const seen: Array<[number, number]> = [];
    checkAllocation(0x2000, 4096, { ...open, overlaps: (p, n) => (seen.push([p, n]), false), isZero: (p, n) => (seen.push([p, n]), true) });
    expect(seen).toEqual([[0x2000, 4096], [0x2000, 4096]]);
  });
  it('rejects what is not a physical address', () => {
    for (const v of [null, undefined, '0x1000', 1.5, NaN, Infinity, 2 ** 53, 4096n]) {
      expect(isPaddr(v)).toBe(false);
      expect(checkAllocation(v, 4096, open)?.rule).toBe('in-range');
    }
    expect(isPaddr(0)).toBe(true);
    expect(isPaddr(2 ** 53 - 1)).toBe(true);
  });
  it('lists every rule as one the kernel does not check (LPAE io-pgtable trusts cfg->alloc)', () => {
    expect(ALLOCATION_RULES.map((r) => r.rule)).toEqual(['in-range', 'aligned', 'no-overlap', 'zeroed']);
    expect(ALLOCATION_RULES.every((r) => r.kernel === false)).toBe(true);
  });
});

describe('describeValue', () => {
  it('renders addresses in hex, other values plainly', () => {
    expect(describeValue(0x1000)).toBe('0x1000');
    expect(describeValue(-1)).toBe('-1');
    expect(describeValue(1.5)).toBe('1.5');
    expect(describeValue(255n)).toBe('0xffn');
    expect(describeValue(-16n)).toBe('-0x10n');
    expect(describeValue('abc')).toBe('"abc"');
    expect(describeValue(null)).toBe('null');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue({})).toBe('object');
    expect(describeValue([])).toBe('an array');
  });
  it('caps huge values, saying how long they were', () => {
    const s = describeValue('9'.repeat(200_000_000 / 1000));
    expect(s.length).toBeLessThanOrEqual(MAX_VALUE_CHARS + 30);
    expect(s).toMatch(/\.\.\. \(200000 chars\)$/);
    const big = describeValue(1n << 4000n);
    expect(big.length).toBeLessThanOrEqual(MAX_VALUE_CHARS + 30);
    expect(big).toMatch(/\.\.\. \(\d+ chars\)$/);
  });
});

describe('messages cap echoed values (issue 14)', () => {
  const huge = 'x'.repeat(1 << 20);
  it.each([
    ['assertTableSize', () => assertTableSize('a', huge as never, 4096)],
    ['notLiveError', () => { throw notLiveError('a', huge as never, huge as never, false); }],
    ['freeSizeError', () => { throw freeSizeError('a', 0x1000, huge as never, 4096); }],
    ['TableLedger minBlock', () => new TableLedger('a', { minBlock: huge as never })],
    ['TableLedger.check', () => new TableLedger('a').check(huge as never, huge as never)],
  ])('%s with a 1 MiB string: the message stays under 300 characters', (_what, fn) => {
    let e: unknown;
    try {
      fn();
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message.length).toBeLessThan(300);
    expect((e as Error).message).toContain('chars)');
  });

  it('asAllocatorError passes typed errors through and wraps anything else, capped, with the cause', () => {
    const own = new AllocatorMisuseError('x', 'size', 'no');
    expect(asAllocatorError(own, 'a', 'alloc')).toBe(own);
    const raw = new Error('y'.repeat(10_000));
    const e = asAllocatorError(raw, 'a', 'inner alloc(4096)') as AllocatorFaultError & { cause: unknown };
    expect(e).toBeInstanceOf(AllocatorFaultError);
    expect(e.rule).toBe('no-throw');
    expect(e.cause).toBe(raw);
    expect(e.message.length).toBeLessThan(300);
    expect(asAllocatorError('a string', 'a', 'free').message).toBe('[iopgt] [a] no-throw: free threw: a string');
  });
});
