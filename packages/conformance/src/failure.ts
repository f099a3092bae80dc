import {
  AccountingError,
  AllocatorFaultError,
  AllocatorMisuseError,
  type AllocatorRule,
} from '@io-pgtable/allocator-api';

/**
 * Rules the suite checks: every {@link AllocatorRule}, plus the plugin-specific rules of
 * the reservation and secure-share groups that have no misuse error of their own.
 */
export type ConformanceRule =
  | AllocatorRule
  /** The capability manifest is truthful (sizes served, may it fail). */
  | 'caps'
  /** Requirements 8-10: reserved counts are exact upper bounds (tight on empty trees). */
  | 'reservation-count'
  /** Requirements 12-13: unused reserved pages come back exactly once, on release. */
  | 'release-once'
  /** Requirement 14: a reservation is private to its job. */
  | 'reservation-private'
  /** Requirement 15: admission keeps reserved pages within limit + one job. */
  | 'admission'
  /** Requirements 22-24: ownership and the order of assign/zero/clean/unassign. */
  | 'ownership'
  /** Contract v2: every gather holding table frees is synced (`pt.iotlbSync`) before the test ends. */
  | 'unsynced-gather';

/**
 * A conformance check failed. The message starts with the rule, so a test report says
 * which rule the allocator broke: `[iopgt] [conformance] zeroed: ...`.
 */
export class ConformanceFailure extends Error {
  override readonly name = 'ConformanceFailure';
  constructor(
    readonly rule: ConformanceRule,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`[iopgt] [conformance] ${rule}: ${message}`, options);
  }
}

export function fail(rule: ConformanceRule, message: string, cause?: unknown): never {
  throw new ConformanceFailure(rule, message, cause === undefined ? undefined : { cause });
}

export function check(ok: boolean, rule: ConformanceRule, message: () => string): void {
  if (!ok) fail(rule, message());
}

/**
 * Turn an error escaping an allocator (or the core's verification of one) into a
 * failure naming its rule. Other errors pass through unchanged.
 */
export function asFailure(e: unknown, what: string): unknown {
  if (e instanceof ConformanceFailure) return e;
  if (e instanceof AllocatorFaultError || e instanceof AllocatorMisuseError) {
    return new ConformanceFailure(e.rule, `${what}: ${e.message}`, { cause: e });
  }
  if (e instanceof AccountingError) return new ConformanceFailure('accounting', `${what}: ${e.message}`, { cause: e });
  return e;
}
