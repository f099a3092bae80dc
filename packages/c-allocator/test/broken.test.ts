import { runConformanceGroup, type ConformanceGroup } from '@io-pgtable/conformance';
import { describe, expect, test } from 'vitest';
import { cReservationAdapter, createCAllocator, type CAllocatorModule } from '../src/index.js';
import { moduleOf } from './helpers/compiler.js';

/** Rules of the failures the suite reports for `group` (sorted, unique). */
function rules(mod: CAllocatorModule, group: ConformanceGroup, withReservation = false): string[] {
  const failures = runConformanceGroup(group, ({ backing }) => createCAllocator(mod, { backing }), {
    numRuns: 10,
    seed: 1,
    ...(withReservation ? { reservation: cReservationAdapter() } : {}),
  });
  return [...new Set(failures.map((f) => f.rule))].sort();
}

// The deliberately broken C examples: each must be rejected, and by the rule it breaks.
describe('broken C examples are rejected with their rule', () => {
  test('pool-reuse-before-flush.c: flush-ordering fails with reuse-before-flush only', () => {
    expect(rules(moduleOf('c-page-pool/pool-reuse-before-flush.c'), 'flush-ordering')).toEqual(['reuse-before-flush']);
  });
  test('reservation-consumes-unreserved.c: reservation fails with run-phase-backing-call', () => {
    expect(rules(moduleOf('c-reservation/reservation-consumes-unreserved.c'), 'reservation', true)).toContain('run-phase-backing-call');
  });
  test('the correct variants pass the same groups with the same options', () => {
    expect(rules(moduleOf('c-page-pool/pool.c'), 'flush-ordering')).toEqual([]);
    expect(rules(moduleOf('c-reservation/reservation.c'), 'reservation', true)).toEqual([]);
  });
});
