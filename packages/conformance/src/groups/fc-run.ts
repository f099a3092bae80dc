/**
 * Runs a fast-check property for the plugin-specific groups and turns a failing run
 * into a {@link ConformanceFailure} that keeps the broken rule and names the seed.
 */
import fc from 'fast-check';
import { ConformanceFailure } from '../failure.js';

const PREFIX = /^\[iopgt\] \[conformance\] [a-z-]+: /;

/** Check `prop` with `numRuns` runs; a failure throws, naming its rule and the seed to replay. */
export function assertRuns<T>(prop: fc.IProperty<T>, numRuns: number, seed: number | undefined): void {
  const details = fc.check(prop, { numRuns, seed, endOnFailure: true });
  if (!details.failed) return;
  const replay = `(fast-check seed ${details.seed}, path ${details.counterexamplePath}; replay with options.seed = ${details.seed})`;
  const e = details.errorInstance;
  if (e instanceof ConformanceFailure) throw new ConformanceFailure(e.rule, `${e.message.replace(PREFIX, '')} ${replay}`, { cause: e });
  throw new Error(`[iopgt] [conformance] property run failed ${replay}: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}
