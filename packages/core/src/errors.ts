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
