import { MIN_TABLE_ALLOC, allocSizeFor, type Paddr } from './allocator.js';
import { describeValue } from './checks.js';
import { AllocatorMisuseError } from './errors.js';

/** A bad value for a message: numbers as they are (always short), anything else capped. */
function show(v: unknown): string {
  return typeof v === 'number' ? String(v) : describeValue(v);
}

export interface TableLedgerOptions {
  /**
   * Tells a double free from a foreign one. Called only when a free names an address
   * that is not live, with that address. Return `true` if this allocator handed it out
   * and it has been freed since (or a few words saying where the page is now, such as
   * `'waiting for a flush'`, which go into the message); `false` if it was never ours.
   * The ledger keeps no history of its own, so the answer comes from state the caller
   * already has (its pending list, idle stacks): nothing grows with the number of frees.
   * Without it every free of a non-live address is a `foreign-free`.
   */
  wasFreed?: (paddr: Paddr) => boolean | string;
  /**
   * Smallest size this allocator records for a hand-out (default 64). A free of logical
   * size `s` must name a hand-out of exactly `max(allocSizeFor(s), minBlock)` bytes; an
   * allocator that never hands out less than a 4 KiB page passes 4096.
   */
  minBlock?: number;
  /** What the error messages call a hand-out: `table` (default) or `block`. */
  noun?: FreeNoun;
}

/** What error messages call a hand-out. */
export type FreeNoun = 'table' | 'block';

/**
 * Whether `free(paddr, logicalSize)` matches a hand-out recorded as `allocated` bytes:
 * `logicalSize` is a positive integer and `max(allocSizeFor(logicalSize), minBlock)` is
 * exactly `allocated`. For allocators that keep their own map (see {@link TableLedger}).
 */
export function isFreeSize(logicalSize: number, allocated: number, minBlock: number = MIN_TABLE_ALLOC): boolean {
  return Number.isSafeInteger(logicalSize) && logicalSize > 0 && Math.max(allocSizeFor(logicalSize), minBlock) === allocated;
}

/**
 * The error for a free of `paddr` that is not live: `double-free` if `freed` is true or
 * says where the page is now (`'waiting for a flush'`), else `foreign-free`.
 */
export function notLiveError(allocator: string, paddr: Paddr, logicalSize: number, freed: boolean | string, noun: FreeNoun = 'table'): AllocatorMisuseError {
  const what = `free of ${hex(paddr)} (size ${show(logicalSize)}), which is not a live ${noun}`;
  if (freed === false || freed === '') return new AllocatorMisuseError(allocator, 'foreign-free', `${what} of this allocator`, paddr);
  const where = freed === true ? '' : ` and is ${freed}`;
  return new AllocatorMisuseError(allocator, 'double-free', `${what}: it was already freed${where}`, paddr);
}

/** The `free-size` error for a free of a live hand-out of `allocated` bytes with the wrong size. */
export function freeSizeError(allocator: string, paddr: Paddr, logicalSize: number, allocated: number, noun: FreeNoun = 'table'): AllocatorMisuseError {
  return new AllocatorMisuseError(allocator, 'free-size', `free of ${hex(paddr)} with size ${show(logicalSize)}, but the ${noun} is ${allocated} bytes`, paddr);
}

/**
 * The live tables of one allocator, with the checks every `free(paddr, size)` makes:
 * the address must be live (else `double-free` or `foreign-free`) and the logical size
 * must match what was handed out (else `free-size`). Keeps the live count and bytes, so
 * an allocator's `stats().live` and `liveTables` come from here.
 *
 * Contract: {@link TableLedger.add} does not check that the address is not live
 * already: the core checks every allocation for overlap with its live tables, and a
 * broken allocator must reach that check. A failed check throws and changes nothing.
 *
 * @example
 * const idle = new Set<Paddr>();
 * const live = new TableLedger('my-pool', { wasFreed: (p) => idle.has(p) });
 * live.add(p, 4096);                 // in alloc(), after choosing p
 * const bytes = live.remove(p, 16);  // in free(): throws AllocatorMisuseError on misuse
 * idle.add(p);
 */
export class TableLedger {
  readonly #sizes = new Map<Paddr, number>();
  readonly #wasFreed: ((paddr: Paddr) => boolean | string) | undefined;
  readonly #minBlock: number;
  readonly #noun: FreeNoun;
  #bytes = 0;

  /** @param allocator the name that prefixes every error (the allocator's `caps.name`). */
  constructor(
    readonly allocator: string,
    opts: TableLedgerOptions = {},
  ) {
    const minBlock = opts.minBlock ?? MIN_TABLE_ALLOC;
    if (!Number.isSafeInteger(minBlock) || minBlock < MIN_TABLE_ALLOC) {
      throw new RangeError(`[iopgt] [${allocator}] ledger minBlock must be an integer >= ${MIN_TABLE_ALLOC}, got ${show(minBlock)}`);
    }
    this.#wasFreed = opts.wasFreed;
    this.#minBlock = minBlock;
    this.#noun = opts.noun ?? 'table';
  }

  /** Live tables. */
  get count(): number {
    return this.#sizes.size;
  }

  /** Bytes handed out and not freed: the sum of the recorded sizes. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Record a hand-out of `size` bytes at `paddr` (the allocated size, not the logical one). */
  add(paddr: Paddr, size: number): void {
    this.#sizes.set(paddr, size);
    this.#bytes += size;
  }

  /** Whether `paddr` is a live table of this allocator. */
  has(paddr: Paddr): boolean {
    return this.#sizes.has(paddr);
  }

  /** The size recorded for a live table, or undefined. */
  sizeOf(paddr: Paddr): number | undefined {
    return this.#sizes.get(paddr);
  }

  /**
   * The checks of `free(paddr, logicalSize)`, without removing anything: returns the
   * recorded size. For a caller that must do something that can fail (a backing call)
   * before the table stops being live.
   *
   * @throws AllocatorMisuseError `double-free` / `foreign-free` if `paddr` is not live,
   *   `free-size` if `logicalSize` is not the size it was allocated with.
   */
  check(paddr: Paddr, logicalSize: number): number {
    const allocated = this.#sizes.get(paddr);
    if (allocated === undefined) {
      throw notLiveError(this.allocator, paddr, logicalSize, this.#wasFreed?.(paddr) ?? false, this.#noun);
    }
    if (!isFreeSize(logicalSize, allocated, this.#minBlock)) throw freeSizeError(this.allocator, paddr, logicalSize, allocated, this.#noun);
    return allocated;
  }

  /**
   * {@link TableLedger.check}, then forget the table: returns the recorded size, which
   * the caller moves to its pending, idle or free list.
   *
   * @throws AllocatorMisuseError as {@link TableLedger.check}; nothing changes then.
   */
  remove(paddr: Paddr, logicalSize: number): number {
    const allocated = this.check(paddr, logicalSize);
    this.#sizes.delete(paddr);
    this.#bytes -= allocated;
    return allocated;
  }
}

function hex(p: Paddr): string {
  return typeof p === 'number' && Number.isSafeInteger(p) && p >= 0 ? `0x${p.toString(16)}` : show(p);
}
