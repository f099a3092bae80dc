import type { Errno } from '@io-pgtable/allocator-api';

/** Errors a map can report (style: one union per operation). */
export type MapErrno = 'EINVAL' | 'ERANGE' | 'EEXIST' | 'ENOMEM';
/** Errors an unmap can report. */
export type UnmapErrno = 'EINVAL' | 'ERANGE' | 'ENOENT';

/**
 * A failed page-table creation or a misuse of a page table (an operation after `free`).
 * `code` is the errno the kernel would use; `reason` says what was wrong.
 */
export class IoPgtableError extends Error {
  override readonly name = 'IoPgtableError';
  constructor(
    readonly code: Errno,
    readonly reason: string,
  ) {
    super(`[iopgt] [core] ${code}: ${reason}`);
  }
}

/**
 * Result of `mapPages`: partial progress is data, not an exception. Results are frozen,
 * and a page table hands out the same object for the same successful size (a map loop
 * allocates nothing per call).
 */
export interface MapResult {
  /** Bytes mapped by this call (the kernel's `*mapped` increment). */
  readonly mapped: number;
  readonly error?: MapErrno;
  readonly message?: string;
}

/** Result of `unmapPages`: frozen, and shared between calls that unmapped the same size, as {@link MapResult}. */
export interface UnmapResult {
  /** Bytes unmapped. */
  readonly unmapped: number;
  /**
   * Set when nothing (or less than asked) was unmapped for a reason: `ENOENT` for a hole
   * (in `kernel` mode the kernel's raw return is then `(size_t)-ENOENT`), `EINVAL` for a
   * bad size, count or a partial unmap of a block, `ERANGE` for an address outside ias.
   */
  readonly error?: UnmapErrno;
  readonly message?: string;
}

/** One table whose free hook threw during a teardown or an unmap. */
export interface TableFreeFailure {
  readonly paddr: number;
  /** The size passed to the free hook (the table's logical size). */
  readonly size: number;
  readonly level: number;
  /** What the hook threw. */
  readonly error: unknown;
}

/**
 * Freeing tables failed: the page table went on past every failing free hook (so every
 * other table went back to the allocator) and reports each failure here. Tables listed
 * stay counted in `pt.stats().liveTables`: the allocator never took them back.
 */
export class TableFreeError extends Error {
  override readonly name = 'TableFreeError';
  constructor(readonly failures: readonly TableFreeFailure[]) {
    const first = failures[0]?.error;
    const why = first instanceof Error ? first.message : String(first);
    super(`[iopgt] [core] the free hook threw for ${failures.length} table${failures.length === 1 ? '' : 's'} (first: ${why.length > 200 ? why.slice(0, 200) + '...' : why})`, {
      cause: first,
    });
  }
}

/** A flush callback that threw: one of the driver's flush ops, or the allocator stack's `flushDone`. */
export interface FlushCallbackFailure {
  readonly callback: 'tlbFlushAll' | 'tlbFlushWalk' | 'tlbAddPage' | 'tlbSync' | 'flushDone';
  /** What the callback threw. */
  readonly error: unknown;
}

/**
 * A flush callback threw. Linux's flush ops cannot fail, so during an unmap or a teardown
 * the page table carries on as if each had returned (every table it unlinked is freed,
 * every page is added to the gather, teardown completes) and reports each failure here,
 * with any free hooks that threw as well. A `tlbSync` that throws is different: the sync
 * did not happen, so `iotlbSync` changes nothing (the gather's frees stay pending; call it
 * again). A `flushDone` that throws comes after the sync completed.
 */
export class FlushCallbackError extends Error {
  override readonly name = 'FlushCallbackError';
  constructor(
    readonly failures: readonly FlushCallbackFailure[],
    readonly tableFreeFailures: readonly TableFreeFailure[] = [],
  ) {
    const first = failures[0];
    const why = first?.error instanceof Error ? first.error.message : String(first?.error);
    const n = failures.length;
    super(
      `[iopgt] [core] ${first?.callback ?? 'a flush callback'} threw${n > 1 ? ` (and ${n - 1} more callback failure${n > 2 ? 's' : ''})` : ''}: ${why.length > 200 ? why.slice(0, 200) + '...' : why}` +
        (first?.callback === 'tlbSync' ? '; the sync did not happen: the gather still holds its frees' : '') +
        (tableFreeFailures.length > 0 ? `; ${tableFreeFailures.length} free hook${tableFreeFailures.length === 1 ? '' : 's'} threw too` : ''),
      { cause: first?.error },
    );
  }
}
