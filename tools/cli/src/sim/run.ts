/** Run a matrix of workloads x stacks on the worker pool, with progress; shared by simulate, bench and compare. */
import { CliError, EXIT_USAGE, Progress, type Io } from '../io.js';
import { fmtInt, fmtPct, renderTable } from '../table.js';
import { runTasks } from './pool.js';
import { shardSlice, type Shard } from './shard.js';
import type { SimResult } from './simulate.js';
import type { StackDef } from './stacks.js';
import { buildWorkload, type StackRef, type Task, type WorkloadRef } from './tasks.js';
import { WORKLOADS, findWorkload, type Workload, type WorkloadNeed } from './workloads.js';

export interface MatrixStack {
  ref: StackRef;
  def: StackDef;
}

export interface MatrixOptions {
  workloads: WorkloadRef[];
  stacks: MatrixStack[];
  /** Timed repetitions per pair (ns/op is their median). */
  reps: number;
  jobs: number;
  shard?: Shard;
  /** No progress at all. */
  quiet?: boolean;
  samples?: number;
}

export interface WorkloadInfo {
  name: string;
  description: string;
  needs: WorkloadNeed[];
  jobs: number;
  rangeOps: number;
  contexts: number;
  format: string;
}

export interface StackInfo {
  name: string;
  description: string;
  reservesBeforeRun: boolean;
  secureShare: boolean;
}

export interface MatrixResult {
  /** Workload-major, in the order of `workloads` then `stacks`; a shard holds its slice only. */
  results: SimResult[];
  workloads: WorkloadInfo[];
  stacks: StackInfo[];
  shard: Shard | null;
  /** Captures that could not be read (left out; the command exits 2 after the rest ran). */
  failed?: FailedTrace[];
}

export interface FailedTrace {
  file: string;
  /** `FILE:LINE: message`. */
  error: string;
}

/** `all` or a comma-separated list of built-in workload names, each checked against the registry. */
export function selectWorkloads(v: string | undefined, seed: number, scale: number): WorkloadRef[] {
  const names = v === undefined || v === 'all' ? WORKLOADS.map((w) => w.name) : v.split(',').map((n) => n.trim());
  return names.map((n) => {
    if (!findWorkload(n)) throw new CliError(`--workload: unknown workload ${JSON.stringify(n.slice(0, 80))}; known: ${WORKLOADS.map((x) => x.name).join(', ')}`, EXIT_USAGE);
    return { kind: 'builtin', name: n, seed, scale };
  });
}

export function stackInfo(d: StackDef): StackInfo {
  return { name: d.name, description: d.description, reservesBeforeRun: d.traits?.reservesBeforeRun === true, secureShare: d.traits?.secureShare === true };
}

export async function runMatrix(io: Io, label: string, o: MatrixOptions): Promise<MatrixResult> {
  // Built here first so that bad input (a malformed capture) fails before any work starts.
  // A bad capture among several is reported and left out; the others still run.
  const built: Array<{ ref: WorkloadRef; w: Workload }> = [];
  const failed: FailedTrace[] = [];
  for (const ref of o.workloads) {
    try {
      built.push({ ref, w: buildWorkload(ref) });
    } catch (e) {
      if (!(e instanceof CliError) || ref.kind !== 'trace' || o.workloads.length === 1) throw e;
      failed.push({ file: ref.file, error: e.located() });
    }
  }
  if (built.length === 0) throw new CliError(`every capture failed: ${failed.map((f) => f.error).join('; ')}`, EXIT_USAGE);
  const cwd = io.cwd;
  const all: Task[] = [];
  for (const { ref } of built) {
    for (const s of o.stacks) all.push({ index: all.length, workload: ref, stack: s.ref, reps: o.reps, cwd, ...(o.samples !== undefined ? { samples: o.samples } : {}) });
  }
  const tasks = shardSlice(all, o.shard);
  const progress = o.quiet ? undefined : new Progress(io, label, tasks.length);
  const done = await runTasks(tasks, o.jobs, (r) => progress?.tick(`${r.result.workload} x ${r.result.stack}`));
  progress?.end();
  return {
    results: done.map((d) => d.result),
    workloads: built.map(({ w }) => ({
      name: w.name,
      description: w.description,
      needs: w.needs,
      jobs: w.jobs.length,
      rangeOps: w.jobs.reduce((n, j) => n + j.ops.length, 0),
      contexts: w.contexts,
      format: `${w.pgtable.format} ${w.pgtable.ias}/${w.pgtable.oas}`,
    })),
    stacks: o.stacks.map((s) => stackInfo(s.def)),
    shard: o.shard ?? null,
    failed,
  };
}

export const TABLE_HEADERS = ['workload', 'stack', 'tables', 'backing calls', 'peak pages', 'over-prov', 'pool hits', 'secure calls', 'secure ms', 'ns/op (median)', 'spread'];

/** `min-max` of the repeated runs as a percentage of the median. */
export function spreadPct(r: SimResult): string {
  if (r.nsPerOpRuns <= 1 || r.nsPerOp === 0) return '-';
  return `±${(((r.nsPerOpMax - r.nsPerOpMin) / 2 / r.nsPerOp) * 100).toFixed(0)}%`;
}

export function comparisonTable(results: SimResult[]): string {
  return renderTable(
    TABLE_HEADERS,
    results.map((r) => [
      r.workload,
      r.stack,
      fmtInt(r.tablesAllocated),
      fmtInt(r.backingCalls),
      fmtInt(r.peakPages),
      fmtPct(r.overProvisioning),
      fmtPct(r.poolHitRate),
      fmtInt(r.secureCalls),
      (r.secureNs / 1e6).toFixed(1),
      fmtInt(r.nsPerOp),
      spreadPct(r),
    ]),
    [false, false, true, true, true, true, true, true, true, true, true],
  );
}
