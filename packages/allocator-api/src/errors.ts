/** Error numbers the page-table operations report, named as in the kernel. */
export type Errno = 'EINVAL' | 'ERANGE' | 'EEXIST' | 'ENOMEM' | 'ENOENT';

/** Kernel values of the error numbers, for output that must match the kernel's. */
export const ERRNO_VALUE: Readonly<Record<Errno, number>> = Object.freeze({
  EINVAL: 22,
  ERANGE: 34,
  EEXIST: 17,
  ENOMEM: 12,
  ENOENT: 2,
});

/**
 * The rules an allocator or its caller can break. Every misuse error and every
 * conformance failure names one of these, so a message says *which* rule failed.
 */
export type AllocatorRule =
  | 'zeroed'
  | 'aligned'
  | 'in-range'
  | 'no-overlap'
  | 'size'
  | 'double-free'
  | 'foreign-free'
  | 'free-size'
  | 'no-throw'
  | 'reuse-before-flush'
  | 'write-before-flush'
  | 'walk-after-free'
  | 'alloc-outside-op'
  | 'run-phase-backing-call'
  | 'reservation-exhausted'
  | 'vmid-mismatch'
  | 'access-violation'
  | 'accounting';

function prefix(source: string): string {
  return `[iopgt] [${source}]`;
}

/**
 * A caller broke the allocator contract: a double free, a free of a table this
 * allocator never handed out, a free with a size larger than the allocation, an
 * allocation outside any operation where the plugin requires one. Thrown (not returned)
 * because it is a bug in the caller, as `TargetAllocator` panics on a foreign free.
 */
export class AllocatorMisuseError extends Error {
  override readonly name = 'AllocatorMisuseError';
  constructor(
    readonly allocator: string,
    readonly rule: AllocatorRule,
    message: string,
    readonly paddr?: number,
  ) {
    super(`${prefix(allocator)} ${rule}: ${message}`);
  }
}

/**
 * An allocator handed the page-table code memory that breaks the contract: dirty,
 * misaligned, outside the output address space, or overlapping a live table. The core
 * checks every allocation and fails with this error naming the allocator's fault.
 */
export class AllocatorFaultError extends Error {
  override readonly name = 'AllocatorFaultError';
  constructor(
    readonly allocator: string,
    readonly rule: AllocatorRule,
    message: string,
    readonly paddr?: number,
  ) {
    super(`${prefix(allocator)} ${rule}: ${message}`);
  }
}

/** The accounting identity does not hold: pages were lost or counted twice. */
export class AccountingError extends Error {
  override readonly name = 'AccountingError';
  readonly rule = 'accounting' as const;
  constructor(
    readonly allocator: string,
    message: string,
  ) {
    super(`${prefix(allocator)} accounting: ${message}`);
  }
}

/**
 * An error thrown by the layer below, as the caller of `allocator` sees it: the project's
 * typed errors (every one starts `[iopgt] [source]`) pass through; anything else becomes an
 * {@link AllocatorFaultError} (`no-throw`) naming `allocator` and `call`, with the
 * original as `cause` and its message capped.
 */
export function asAllocatorError(e: unknown, allocator: string, call: string): Error {
  if (e instanceof AllocatorFaultError || e instanceof AllocatorMisuseError || e instanceof AccountingError) return e;
  if (e instanceof Error && typeof e.message === 'string' && e.message.startsWith('[iopgt] [')) return e;
  const why = e instanceof Error && typeof e.message === 'string' ? e.message : typeof e === 'string' ? e : typeof e;
  const err = new AllocatorFaultError(allocator, 'no-throw', `${call} threw: ${why.length > 200 ? `${why.slice(0, 200)}... (${why.length} chars)` : why}`);
  Object.defineProperty(err, 'cause', { value: e, configurable: true, writable: true });
  return err;
}
