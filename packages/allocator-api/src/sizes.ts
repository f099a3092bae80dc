/**
 * The size assertions every allocator makes on `alloc(size, ...)`: written once so that
 * every plugin rejects the same requests with the same rule and wording.
 */
import { MIN_TABLE_ALLOC, isPowerOfTwo } from './allocator.js';
import { describeValue } from './checks.js';
import { AllocatorMisuseError } from './errors.js';

/** A bad value for a message: numbers as they are (always short), anything else capped. */
function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : describeValue(v);
}

/** True if `size` is a request the core can make of an allocator serving up to `maxSize`: a power of two in [64, maxSize]. */
export function isTableSize(size: number, maxSize: number): boolean {
  return isPowerOfTwo(size) && size >= MIN_TABLE_ALLOC && size <= maxSize;
}

/**
 * Throws {@link AllocatorMisuseError} with rule `size` unless `size` is a power of two in
 * `[64, maxSize]` (the core always asks for `max(tableSize, 64)`, at most 16 concatenated
 * granules). `what` names the request in the message (default `alloc size`).
 */
export function assertTableSize(allocator: string, size: number, maxSize: number, what = 'alloc size'): void {
  if (!isTableSize(size, maxSize)) {
    throw new AllocatorMisuseError(allocator, 'size', `${what} ${show(size)} is not a power of two in [${MIN_TABLE_ALLOC}, ${maxSize}]`);
  }
}
