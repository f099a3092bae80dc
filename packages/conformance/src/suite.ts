import type { TableAllocator } from '@io-pgtable/allocator-api';
import { describe } from 'vitest';
import { accountingChecks } from './groups/accounting.js';
import { contractChecks } from './groups/contract.js';
import { faultInjectionChecks } from './groups/fault-injection.js';
import { flushOrderingChecks } from './groups/flush-ordering.js';
import { longLivedChecks } from './groups/long-lived.js';
import { describeChecks, runChecks, skipped, type ConformanceCheck } from './groups/group.js';
import { misuseChecks } from './groups/misuse.js';
import { propertyChecks } from './groups/property.js';
import { reservationChecks } from './groups/reservation.js';
import { secureShareChecks } from './groups/secure-share.js';
import { tablesChecks } from './groups/tables.js';
import type { ConformanceFailure } from './failure.js';
import type { AllocatorFactory, ConformanceGroup, ConformanceOptions } from './options.js';

type Builder = <A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>) => ConformanceCheck[];

/** Every group, in the order the suite runs them. */
export const GROUPS: Readonly<Record<ConformanceGroup, Builder>> = Object.freeze({
  contract: contractChecks,
  tables: tablesChecks,
  property: propertyChecks,
  misuse: misuseChecks,
  'fault-injection': faultInjectionChecks,
  'flush-ordering': flushOrderingChecks,
  'long-lived': longLivedChecks,
  accounting: accountingChecks,
  reservation: reservationChecks,
  'secure-share': secureShareChecks,
});

/**
 * The checks of one group as plain functions, for running outside vitest. Each check
 * throws {@link ConformanceFailure} naming the broken rule.
 */
export function conformanceChecks<A extends TableAllocator>(group: ConformanceGroup, factory: AllocatorFactory<A>, options: ConformanceOptions<A> = {}): ConformanceCheck[] {
  return GROUPS[group](factory, options);
}

/** Run one group outside vitest; returns its failures (empty when the allocator conforms). */
export function runConformanceGroup<A extends TableAllocator>(group: ConformanceGroup, factory: AllocatorFactory<A>, options: ConformanceOptions<A> = {}): ConformanceFailure[] {
  return runChecks(conformanceChecks(group, factory, options));
}

function describer(group: ConformanceGroup) {
  return <A extends TableAllocator>(name: string, factory: AllocatorFactory<A>, options: ConformanceOptions<A> = {}): void => {
    if (skipped(options, group)) return;
    describeChecks(`${name}: ${group}`, GROUPS[group](factory, options));
  };
}

/** Direct alloc/free against the capability manifest (requirements 1-2). */
export const describeContract = describer('contract');
/** Real page tables of every format and granule (requirements 1, 2, 5, 27). */
export const describeTables = describer('tables');
/** >= 100,000 random map/unmap operations: no live table handed out twice (requirement 5). */
export const describeProperty = describer('property');
/** Double, foreign and oversized frees are rejected (requirement 2). */
export const describeMisuse = describer('misuse');
/** The k-th backing allocation fails, for every k (requirements 12, 20). */
export const describeFaultInjection = describer('fault-injection');
/** No write or reuse of a freed table before the covering flush, under both flush regimes (requirement 16). */
export const describeFlushOrdering = describer('flush-ordering');
/** One instance serving >= 10,000 allocations to several page tables of different formats at once. */
export const describeLongLived = describer('long-lived');
/** The accounting identity at every quiescent point and zero after teardown (requirements 21, 27). */
export const describeAccounting = describer('accounting');
/** Two-phase reservation (requirements 7-15, 18); runs only with `options.reservation`. */
export const describeReservation = describer('reservation');
/** Secure-share ownership (requirements 22-26); runs only with `options.secureShare`. */
export const describeSecureShare = describer('secure-share');

/**
 * Register the whole conformance suite for an allocator: one vitest `describe` per group,
 * one `it` per check, a fresh allocator (from `factory`) for every check.
 *
 * @example
 * import { describeAllocatorConformance } from '@io-pgtable/conformance';
 * import { withMyPool } from '../src/index.js';
 * describeAllocatorConformance('my-pool', ({ backing }) => withMyPool(backing));
 */
export function describeAllocatorConformance<A extends TableAllocator>(
  name: string,
  factory: AllocatorFactory<A>,
  options: ConformanceOptions<A> = {},
): void {
  describe(`${name} conformance`, () => {
    for (const group of Object.keys(GROUPS) as ConformanceGroup[]) describer(group)(name, factory, options);
  });
}
