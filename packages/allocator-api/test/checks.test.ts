import { describe, expect, it } from 'vitest';
import { ALLOCATION_RULES, MAX_VALUE_CHARS, checkAllocation, describeValue, isPaddr } from '../src/index.js';

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
