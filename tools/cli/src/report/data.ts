/**
 * data.json: what `compare` writes and `report` reads back (and merges, for shards).
 * The schema is the contract for files that may come from anywhere; recommendations are
 * derived data, recomputed from the results whenever a report is rendered.
 */
import { CliError, EXIT_USAGE } from '../io.js';
import { GOALS, recommendAll, type Goal, type Recommendation } from '../sim/recommend.js';
import type { MatrixResult } from '../sim/run.js';
import { WORKLOAD_NEEDS } from '../sim/workloads.js';
import { check, type Schema } from './schema.js';

export const DATA_FORMAT = 'io-pgtable-compare/2';

export interface ReportConfig {
  seed: number;
  scale: number;
  /** Capture files given with --trace (as given). */
  traces: string[];
  goal: Goal;
  reps: number;
}

export interface ReportData extends MatrixResult {
  format: typeof DATA_FORMAT;
  tool: string;
  version: string;
  config: ReportConfig;
  /** Node version and platform the numbers were measured on. */
  machine: string;
  /** Worker threads used for this file's runs. */
  jobs: number;
  /** Per workload; null in a partial (sharded) file. */
  recommendations: Recommendation[] | null;
}

const str: Schema = { t: 'string' };
const num: Schema = { t: 'number' };
/**
 * A measured amount (ns/op may be fractional). At most 2^53-1: JSON.parse rounds a larger
 * value to a different number, so it cannot be what compare wrote.
 */
const count: Schema = { t: 'number', min: 0, max: Number.MAX_SAFE_INTEGER, int: false };
/** A count of things or events: an integer below 2^53. */
const intCount: Schema = { t: 'number', min: 0, max: Number.MAX_SAFE_INTEGER, int: true };
const seedSchema: Schema = { t: 'number', min: 0, max: Number.MAX_SAFE_INTEGER, int: true };
const nullableNum: Schema = { t: 'anyOf', of: [num, { t: 'null' }] };
const series: Schema = { t: 'array', of: count, max: 100_000 };
const name: Schema = { t: 'string', max: 256 };

const resultSchema: Schema = {
  t: 'object',
  props: {
    workload: name,
    stack: name,
    seed: seedSchema,
    jobs: intCount,
    rangeOps: intCount,
    pgtableCalls: intCount,
    tablesAllocated: intCount,
    backingCalls: intCount,
    pageAllocCalls: intCount,
    pageFreeCalls: intCount,
    peakPages: intCount,
    peakLivePages: intCount,
    overProvisioning: num,
    poolHitRate: nullableNum,
    secureCalls: intCount,
    secureNs: count,
    mapFailures: intCount,
    reservedTables: nullableNum,
    usedTables: nullableNum,
    refusedJobs: intCount,
    runPhaseAllocs: intCount,
    nsPerOp: count,
    nsPerOpMin: count,
    nsPerOpMax: count,
    nsPerOpRuns: { t: 'number', min: 1, max: 1000, int: true },
    leakedPages: intCount,
    pagesOverTime: series,
    backingOverTime: series,
    secureOverTime: series,
  },
};

const recommendationSchema: Schema = {
  t: 'object',
  props: {
    workload: name,
    goal: { t: 'enum', values: GOALS },
    stack: { t: 'anyOf', of: [name, { t: 'null' }] },
    reason: str,
    runnerUp: { t: 'anyOf', of: [name, { t: 'null' }] },
    tradeOff: { t: 'anyOf', of: [str, { t: 'null' }] },
    ranking: { t: 'array', max: 10_000, of: { t: 'object', props: { stack: name, cost: num } } },
    excluded: { t: 'array', max: 10_000, of: { t: 'object', props: { stack: name, why: str } } },
  },
};

export const DATA_SCHEMA: Schema = {
  t: 'object',
  props: {
    format: { t: 'enum', values: [DATA_FORMAT] },
    tool: str,
    version: str,
    config: {
      t: 'object',
      props: {
        seed: seedSchema,
        scale: num,
        traces: { t: 'array', of: str, max: 10_000 },
        goal: { t: 'enum', values: GOALS },
        reps: { t: 'number', min: 1, max: 1000, int: true },
      },
    },
    machine: str,
    jobs: { t: 'number', min: 1, max: 4096, int: true },
    shard: { t: 'anyOf', of: [{ t: 'null' }, { t: 'object', props: { index: { t: 'number', min: 1, max: 9999, int: true }, count: { t: 'number', min: 1, max: 9999, int: true } } }] },
    results: { t: 'array', of: resultSchema, max: 100_000 },
    workloads: {
      t: 'array',
      max: 10_000,
      of: {
        t: 'object',
        props: {
          name,
          description: str,
          needs: { t: 'array', of: { t: 'enum', values: WORKLOAD_NEEDS }, max: 8 },
          jobs: count,
          rangeOps: count,
          contexts: { t: 'number', min: 1, max: 4096, int: true },
          format: str,
        },
      },
    },
    stacks: {
      t: 'array',
      max: 10_000,
      of: { t: 'object', props: { name, description: str, reservesBeforeRun: { t: 'boolean' }, secureShare: { t: 'boolean' } } },
    },
    recommendations: { t: 'anyOf', of: [{ t: 'null' }, { t: 'array', of: recommendationSchema, max: 10_000 }] },
  },
};

/** Parse-checked data: the schema, then the cross-field rules (results name known workloads and stacks, once each). */
export function validateData(v: unknown, file: string): ReportData {
  const e = check(v, DATA_SCHEMA);
  if (e) throw new CliError(`not a compare data file (${DATA_FORMAT}): ${e}`, EXIT_USAGE, file);
  const d = v as ReportData;
  const wl = new Set(d.workloads.map((w) => w.name));
  const st = new Set(d.stacks.map((s) => s.name));
  if (wl.size !== d.workloads.length) throw new CliError('not a compare data file: a workload name appears twice in $.workloads', EXIT_USAGE, file);
  if (st.size !== d.stacks.length) throw new CliError('not a compare data file: a stack name appears twice in $.stacks', EXIT_USAGE, file);
  const seen = new Set<string>();
  for (const [i, r] of d.results.entries()) {
    if (!wl.has(r.workload)) throw new CliError(`not a compare data file: $.results[${i}].workload is not in $.workloads`, EXIT_USAGE, file);
    if (!st.has(r.stack)) throw new CliError(`not a compare data file: $.results[${i}].stack is not in $.stacks`, EXIT_USAGE, file);
    const k = `${r.workload}\0${r.stack}`;
    if (seen.has(k)) throw new CliError(`not a compare data file: $.results[${i}] repeats a workload x stack pair`, EXIT_USAGE, file);
    seen.add(k);
  }
  if (d.shard === null && d.results.length !== d.workloads.length * d.stacks.length) {
    throw new CliError(`not a compare data file: ${d.results.length} results for ${d.workloads.length} workloads x ${d.stacks.length} stacks (a shard's file needs report --merge with the others)`, EXIT_USAGE, file);
  }
  return d;
}

/** Results in matrix order (workload-major, as listed). */
function sortResults(d: Pick<ReportData, 'results' | 'workloads' | 'stacks'>): ReportData['results'] {
  const wi = new Map(d.workloads.map((w, i) => [w.name, i]));
  const si = new Map(d.stacks.map((s, i) => [s.name, i]));
  return [...d.results].sort((a, b) => wi.get(a.workload)! - wi.get(b.workload)! || si.get(a.stack)! - si.get(b.stack)!);
}

/** The recommendations for complete data, under `goal` (default: the one it was run with). */
export function withRecommendations(d: ReportData, goal: Goal = d.config.goal): ReportData {
  const config = { ...d.config, goal };
  return { ...d, config, recommendations: d.shard === null ? recommendAll(d.workloads, d.results, d.stacks, goal) : null };
}

/**
 * Combine the data.json files of `--shard 1/n` ... `--shard n/n` runs into one complete
 * file: same configuration, workloads and stacks in each, every shard exactly once.
 */
export function mergeShards(files: Array<{ file: string; data: ReportData }>): ReportData {
  if (files.length === 0) throw new CliError('--merge: no data files given', EXIT_USAGE);
  const first = files[0]!;
  const sameAs = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const n = first.data.shard?.count;
  const seen = new Map<number, string>();
  for (const { file, data } of files) {
    if (data.shard === null) throw new CliError('--merge: not a shard (this file has every result already)', EXIT_USAGE, file);
    if (data.shard.count !== n) throw new CliError(`--merge: shard ${data.shard.index}/${data.shard.count} does not belong with ${first.file} (of ${n} shards)`, EXIT_USAGE, file);
    if (!sameAs(data.config, first.data.config)) throw new CliError(`--merge: run with a different configuration than ${first.file}`, EXIT_USAGE, file);
    if (!sameAs(data.workloads, first.data.workloads) || !sameAs(data.stacks, first.data.stacks)) throw new CliError(`--merge: different workloads or stacks than ${first.file}`, EXIT_USAGE, file);
    const dup = seen.get(data.shard.index);
    if (dup !== undefined) throw new CliError(`--merge: shard ${data.shard.index}/${n} given twice (also ${dup})`, EXIT_USAGE, file);
    seen.set(data.shard.index, file);
  }
  const missing = Array.from({ length: n! }, (_, i) => i + 1).filter((i) => !seen.has(i));
  if (missing.length) throw new CliError(`--merge: missing shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')}`, EXIT_USAGE);
  const merged: ReportData = {
    ...first.data,
    shard: null,
    jobs: Math.max(...files.map((f) => f.data.jobs)),
    results: files.flatMap((f) => f.data.results),
    recommendations: null,
  };
  merged.results = sortResults(merged);
  const expect = merged.workloads.length * merged.stacks.length;
  if (merged.results.length !== expect || new Set(merged.results.map((r) => `${r.workload}\0${r.stack}`)).size !== expect) {
    throw new CliError(`--merge: the shards hold ${merged.results.length} results, not the ${expect} pairs of ${merged.workloads.length} workloads x ${merged.stacks.length} stacks once each`, EXIT_USAGE);
  }
  return withRecommendations(merged);
}
