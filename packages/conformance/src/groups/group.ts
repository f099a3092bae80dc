import type { TableAllocator } from '@io-pgtable/allocator-api';
import { describe, it } from 'vitest';
import { ConformanceFailure } from '../failure.js';
import type { AllocatorFactory, ConformanceGroup, ConformanceOptions } from '../options.js';

/** One named check of a group; `run` throws {@link ConformanceFailure} naming the broken rule. */
export interface ConformanceCheck {
  readonly title: string;
  run(): void;
}

export type GroupChecks = <A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>) => ConformanceCheck[];

/** Register a group's checks as vitest tests (one `it` per check) under `describe(title)`. */
export function describeChecks(title: string, checks: readonly ConformanceCheck[]): void {
  if (checks.length === 0) return; // a group switched off by its options registers nothing
  describe(title, () => {
    for (const c of checks) it(c.title, () => c.run());
  });
}

/** Run checks outside vitest and collect the failures (used by the suite's own tests). */
export function runChecks(checks: readonly ConformanceCheck[]): ConformanceFailure[] {
  const failures: ConformanceFailure[] = [];
  for (const c of checks) {
    try {
      c.run();
    } catch (e) {
      if (e instanceof ConformanceFailure) failures.push(e);
      else throw e;
    }
  }
  return failures;
}

export function skipped(options: Pick<ConformanceOptions, 'skip'>, group: ConformanceGroup): boolean {
  return options.skip?.includes(group) ?? false;
}
