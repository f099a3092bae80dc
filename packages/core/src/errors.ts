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

/** Result of `mapPages`: partial progress is data, not an exception. */
export interface MapResult {
  /** Bytes mapped by this call (the kernel's `*mapped` increment). */
  mapped: number;
  error?: MapErrno;
  message?: string;
}

/** Result of `unmapPages`. */
export interface UnmapResult {
  /** Bytes unmapped. */
  unmapped: number;
  /**
   * Set when nothing (or less than asked) was unmapped for a reason: `ENOENT` for a hole
   * (in `kernel` mode the kernel's raw return is then `(size_t)-ENOENT`), `EINVAL` for a
   * bad size, count or a partial unmap of a block, `ERANGE` for an address outside ias.
   */
  error?: UnmapErrno;
  message?: string;
}
