/**
 * One unit of the matrix: a workload through a stack, repeated for timing. A task is plain
 * data (it crosses to a worker thread), so it names its workload and stack instead of
 * holding them; `runTask` rebuilds both, which is deterministic for the same names.
 */
import { CliError, EXIT_USAGE } from '../io.js';
import { resolveStack } from './plugins.js';
import { simulate, type SimResult } from './simulate.js';
import type { StackDef } from './stacks.js';
import { findWorkload, traceWorkload, type Workload, type WorkloadNeed } from './workloads.js';

/** A built-in workload by name, or a user's capture file. */
export type WorkloadRef =
  | { kind: 'builtin'; name: string; seed: number; scale: number }
  | { kind: 'trace'; name: string; file: string; needs: WorkloadNeed[] };

/** A stack by the `--stack` entry that produced it (a plugin entry may produce several). */
export interface StackRef {
  spec: string;
  name: string;
}

export interface Task {
  /** Position in the whole matrix (workload-major), the order results are reported in. */
  index: number;
  workload: WorkloadRef;
  stack: StackRef;
  /** Timed repetitions; the metrics of every repetition are the same, the time is not. */
  reps: number;
  samples?: number;
  /** Where plugin packages are resolved from. */
  cwd: string;
}

export interface TaskResult {
  index: number;
  result: SimResult;
}

export function buildWorkload(ref: WorkloadRef): Workload {
  if (ref.kind === 'trace') {
    try {
      return traceWorkload(ref.file, ref.name, ref.needs);
    } catch (e) {
      // A malformed capture: name the file and line, as replay and import-ftrace do.
      const err = e as { name?: string; line?: number; detail?: string; code?: string };
      if ((err.name === 'TraceError' || err.name === 'FtraceError') && err.line !== undefined) throw new CliError(err.detail ?? String(e), EXIT_USAGE, ref.file, err.line > 0 ? err.line : undefined);
      if (err.code !== undefined) throw new CliError(`cannot read: ${err.code}`, EXIT_USAGE, ref.file);
      throw e;
    }
  }
  const def = findWorkload(ref.name);
  if (!def) throw new CliError(`unknown workload ${JSON.stringify(ref.name)}`, EXIT_USAGE);
  return def.build({ seed: ref.seed, scale: ref.scale });
}

// Per thread: a worker runs many tasks of the same few workloads and stacks.
const workloadCache = new Map<string, Workload>();
const stackCache = new Map<string, Promise<StackDef[]>>();

function cachedWorkload(ref: WorkloadRef): Workload {
  const key = JSON.stringify(ref);
  let w = workloadCache.get(key);
  if (!w) {
    w = buildWorkload(ref);
    workloadCache.set(key, w);
  }
  return w;
}

async function cachedStack(ref: StackRef, cwd: string): Promise<StackDef> {
  const key = `${cwd}\0${ref.spec}`;
  let p = stackCache.get(key);
  if (!p) {
    p = resolveStack(ref.spec, cwd);
    stackCache.set(key, p);
  }
  const def = (await p).find((d) => d.name === ref.name);
  if (!def) throw new Error(`stack ${ref.name} is no longer provided by ${ref.spec}`);
  return def;
}

function median(sorted: number[]): number {
  const n = sorted.length;
  return n % 2 === 1 ? sorted[(n - 1) / 2]! : (sorted[n / 2 - 1]! + sorted[n / 2]!) / 2;
}

/** Run one task: the first repetition's metrics, and the median ns/op over all of them. */
export async function runTask(task: Task): Promise<TaskResult> {
  const w = cachedWorkload(task.workload);
  const def = await cachedStack(task.stack, task.cwd);
  const opts = task.samples !== undefined ? { samples: task.samples } : {};
  const first = simulate(w, def, opts);
  const ns = [first.nsPerOp];
  for (let i = 1; i < task.reps; i++) ns.push(simulate(w, def, opts).nsPerOp);
  ns.sort((a, b) => a - b);
  return { index: task.index, result: { ...first, nsPerOp: median(ns), nsPerOpMin: ns[0]!, nsPerOpMax: ns[ns.length - 1]!, nsPerOpRuns: ns.length } };
}
