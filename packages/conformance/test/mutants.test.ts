import { describe, expect, it } from 'vitest';
import { ConformanceFailure, describeAllocatorConformance, runConformanceGroup, type ConformanceGroup } from '../src/index.js';
import { MUTANT_BUGS, MUTANT_RULE, createTestPool, type MutantBug } from '../src/mutants/index.js';

// Smaller property runs keep the self-test fast; the full size runs in the positive controls.
const QUICK = { numRuns: 20, propertyOps: 4000, seed: 4242, longLivedAllocations: 2000 } as const;

/** The group expected to catch each bug first (others may catch it too). */
const CATCHER: Readonly<Record<MutantBug, ConformanceGroup>> = {
  'dirty-memory': 'contract',
  misaligned: 'tables',
  'same-page-twice': 'property',
  'ignores-free': 'tables',
  'reuses-at-once': 'flush-ordering',
  'mixes-sizes': 'contract',
  'throws-on-failure': 'fault-injection',
  'slub-freelist': 'flush-ordering',
  'zeroes-in-free': 'flush-ordering',
  'debug-poison': 'flush-ordering',
  'raw-write': 'flush-ordering',
  'ignores-token': 'flush-ordering',
  'reuses-live-late': 'long-lived',
  'null-once': 'long-lived',
  'null-when-atomic': 'long-lived',
  'pending-as-cached': 'flush-ordering',
  'pending-as-live': 'flush-ordering',
  'backing-calls-lie': 'contract',
  'backing-calls-zero': 'tables',
};

describe('the suite rejects every mutant, naming the broken rule', () => {
  it.each(MUTANT_BUGS)('%s', (bug) => {
    const rule = MUTANT_RULE[bug];
    const failures = runConformanceGroup(CATCHER[bug], (env) => createTestPool(env, bug), QUICK);
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((f) => f instanceof ConformanceFailure)).toBe(true);
    expect(failures.map((f) => f.rule)).toContain(rule);
    const f = failures.find((x) => x.rule === rule)!;
    expect(f.message).toContain(`[iopgt] [conformance] ${rule}: `);
  });

  it('a failing property run names the rule and prints the fast-check seed', () => {
    const [f] = runConformanceGroup('property', (env) => createTestPool(env, 'same-page-twice'), QUICK);
    expect(f?.message).toMatch(/^\[iopgt\] \[conformance\] no-overlap: .*fast-check seed 4242/);
  });

  it('double and foreign frees accepted by a broken allocator fail the misuse group', () => {
    const failures = runConformanceGroup('misuse', (env) => createTestPool(env, 'ignores-free'), QUICK);
    expect(failures.map((f) => f.rule)).toEqual(['double-free', 'foreign-free', 'free-size']);
  });
});

// Positive control: the correct deferring pool (a decorator over the suite's backing store)
// passes the whole suite, including the no-op flush_walk path of the flush-ordering group.
describeAllocatorConformance('test-pool', (env) => createTestPool(env));
