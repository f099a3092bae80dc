/**
 * The allocation checks: what the page-table code may verify about memory an allocator
 * hands out. One implementation, used by the core (strict mode) and by the conformance
 * harness, so that both name the same rule for the same fault.
 *
 * Linux's LPAE io-pgtable verifies none of these (it trusts `cfg->alloc`; only the DMA
 * mapping of a non-coherent walk is checked, by the core itself): every rule below is a
 * strict-mode check. `kernel` records that for tables and docs.
 */
import type { Paddr } from './allocator.js';
import type { AllocatorRule } from './errors.js';

/** The rules an allocation can break, in the order they are checked. */
export type AllocationRule = Extract<AllocatorRule, 'in-range' | 'aligned' | 'no-overlap' | 'zeroed'>;

/** Each allocation rule, whether the Linux kernel itself rejects a breach, and what it says. */
export const ALLOCATION_RULES: ReadonlyArray<{ readonly rule: AllocationRule; readonly kernel: boolean; readonly what: string }> = Object.freeze([
  { rule: 'in-range', kernel: false, what: 'a physical address, and the whole table inside the oas-bit output address space' },
  { rule: 'aligned', kernel: false, what: 'aligned to the allocated size' },
  { rule: 'no-overlap', kernel: false, what: 'not overlapping a live page table' },
  { rule: 'zeroed', kernel: false, what: 'every byte zero' },
]);

/** What the checks need to know about the page table's world. */
export interface AllocationProbe {
  /** Exclusive end of the output address space (2^oas). */
  readonly limit: number;
  /** Does `[paddr, paddr + size)` overlap a live table? Omit to skip the overlap check. */
  overlaps?(paddr: Paddr, size: number): boolean;
  /** Is every byte of `[paddr, paddr + size)` zero? Omit to skip the zero check. */
  isZero?(paddr: Paddr, size: number): boolean;
}

export interface AllocationViolation {
  readonly rule: AllocationRule;
  /** What is wrong, starting with the returned address (`0x... is not ...`). */
  readonly detail: string;
}

/** A physical address as the contract represents one: a non-negative safe integer. */
export function isPaddr(p: unknown): p is Paddr {
  return typeof p === 'number' && Number.isSafeInteger(p) && p >= 0;
}

/** Longest rendering of a bad value in a message; longer ones are cut (issue 14). */
export const MAX_VALUE_CHARS = 80;

/**
 * A value as an error message shows it: numbers in hex when they are addresses, strings
 * quoted, and anything longer than {@link MAX_VALUE_CHARS} cut with an ellipsis and its
 * length, so a hostile 200 MB value never makes a 200 MB message.
 */
export function describeValue(v: unknown): string {
  let s: string;
  let length: number;
  switch (typeof v) {
    case 'bigint':
      s = (v < 0n ? '-0x' + (-v).toString(16) : '0x' + v.toString(16)) + 'n';
      length = s.length;
      break;
    case 'number':
      s = Number.isSafeInteger(v) && v >= 0 ? '0x' + v.toString(16) : String(v);
      length = s.length;
      break;
    case 'string':
      // Never quote (or copy) more than the cap of a huge string.
      s = JSON.stringify(v.length > MAX_VALUE_CHARS ? v.slice(0, MAX_VALUE_CHARS) : v);
      length = v.length;
      if (length > MAX_VALUE_CHARS) return `${s.slice(0, MAX_VALUE_CHARS)}... (${length} chars)`;
      break;
    default:
      return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
  }
  return s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS)}... (${length} chars)` : s;
}

/**
 * Check an allocation of `size` bytes (a power of two) returned as `paddr`. Returns the
 * first rule broken, or null. Pure: it reads memory only through `probe`.
 */
export function checkAllocation(paddr: unknown, size: number, probe: AllocationProbe): AllocationViolation | null {
  if (!isPaddr(paddr)) return { rule: 'in-range', detail: `${describeValue(paddr)} is not a physical address` };
  // The address is formatted only for a violation (this runs on every allocation).
  if (paddr + size > probe.limit) {
    return { rule: 'in-range', detail: `${hexOf(paddr)} (+${size} bytes) is outside the output address space (0x${probe.limit.toString(16)})` };
  }
  if (paddr % size !== 0) return { rule: 'aligned', detail: `${hexOf(paddr)} is not aligned to its ${size}-byte size` };
  if (probe.overlaps?.(paddr, size)) return { rule: 'no-overlap', detail: `${hexOf(paddr)} (${size} bytes) overlaps a live page table` };
  if (probe.isZero !== undefined && !probe.isZero(paddr, size)) return { rule: 'zeroed', detail: `${hexOf(paddr)} (${size} bytes) is not zeroed` };
  return null;
}

function hexOf(v: number): string {
  return '0x' + v.toString(16);
}
