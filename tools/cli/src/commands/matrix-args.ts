/** The options simulate, bench and compare share, and their parsing into a matrix run. */
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { flag, intOpt, str, type OptionSpec, type Parsed } from '../command.js';
import { CliError, EXIT_USAGE, type Io } from '../io.js';
import { defaultJobs } from '../sim/pool.js';
import { selectStacks } from '../sim/plugins.js';
import { GOALS, type Goal } from '../sim/recommend.js';
import { selectWorkloads, type MatrixOptions, type MatrixStack } from '../sim/run.js';
import { parseShard } from '../sim/shard.js';
import { STACKS } from '../sim/stacks.js';
import type { WorkloadRef } from '../sim/tasks.js';
import { WORKLOADS, WORKLOAD_NEEDS, type WorkloadNeed } from '../sim/workloads.js';

/** The embedded default configuration of the main job. */
export const DEFAULT_SEED = 20240601;
export const DEFAULT_SCALE = 1;

export function matrixOptions(defaultReps: number): Record<string, OptionSpec> {
  return {
    workload: { type: 'string', arg: 'NAMES', help: `comma-separated workloads or 'all' (${WORKLOADS.map((w) => w.name).join(', ')}); with --trace, only those named here run beside the captures`, default: 'all' },
    stack: {
      type: 'string',
      arg: 'NAMES',
      help: `comma-separated stacks or 'all' (${STACKS.map((s) => s.name).join(', ')}); also a plugin package name, a .js module or a C allocator .wasm (needs @io-pgtable/c-allocator); a leading + adds to all the built-ins`,
      default: 'all',
    },
    trace: { type: 'string', multiple: true, arg: 'FILE', help: 'a capture to run as a workload: our .trace.jsonl or ftrace text (imported on the fly); repeatable, and further FILE arguments count too' },
    constraint: { type: 'string', arg: 'NEEDS', help: `hard constraints of the --trace workloads (${WORKLOAD_NEEDS.join(', ')})` },
    seed: { type: 'string', arg: 'N', help: 'workload seed', default: String(DEFAULT_SEED) },
    scale: { type: 'string', arg: 'X', help: 'multiply the amount of work', default: String(DEFAULT_SCALE) },
    reps: { type: 'string', arg: 'N', help: 'timed runs per workload x stack; ns/op is their median, with the spread', default: String(defaultReps) },
    jobs: { type: 'string', short: 'j', arg: 'N', help: `worker threads (default: one per core, ${defaultJobs()} here)` },
    shard: { type: 'string', arg: 'I/N', help: 'run only the I-th of N equal parts of the matrix (CI matrices); merge with report --merge' },
    quiet: { type: 'boolean', short: 'q', help: 'no progress bar' },
  };
}

function scaleOpt(p: Parsed): number {
  const v = str(p, 'scale');
  if (v === undefined) return DEFAULT_SCALE;
  const n = Number(v);
  if (!(n > 0 && n <= 100)) throw new CliError(`--scale: ${JSON.stringify(v.slice(0, 40))} is not a number in (0, 100]`, EXIT_USAGE);
  return n;
}

export function goalOpt(p: Parsed): Goal {
  const g = str(p, 'goal') ?? 'balanced';
  if (!(GOALS as readonly string[]).includes(g)) throw new CliError(`--goal: ${JSON.stringify(g.slice(0, 40))} is not one of ${GOALS.join(', ')}`, EXIT_USAGE);
  return g as Goal;
}

function needsOpt(p: Parsed): WorkloadNeed[] {
  const v = str(p, 'constraint');
  if (v === undefined || v === '') return [];
  return v.split(',').map((n) => {
    const t = n.trim();
    if (!(WORKLOAD_NEEDS as readonly string[]).includes(t)) throw new CliError(`--constraint: ${JSON.stringify(t.slice(0, 40))} is not one of ${WORKLOAD_NEEDS.join(', ')}`, EXIT_USAGE);
    return t as WorkloadNeed;
  });
}

/** --trace values and FILE arguments: each a workload named after its file (unique). */
function traceRefs(p: Parsed, io: Io): WorkloadRef[] {
  const given = p.values.trace;
  const files = [...(Array.isArray(given) ? given : typeof given === 'string' ? [given] : []), ...p.positionals];
  const needs = needsOpt(p);
  if (files.length === 0 && needs.length) throw new CliError('--constraint applies to --trace workloads; none given', EXIT_USAGE);
  const used = new Set<string>(WORKLOADS.map((w) => w.name));
  return files.map((f) => {
    const abs = resolve(io.cwd, f);
    if (!existsSync(abs)) throw new CliError('cannot read: ENOENT', EXIT_USAGE, f);
    if (statSync(abs).isDirectory()) throw new CliError('is a directory, not a capture file', EXIT_USAGE, f);
    let name = basename(f);
    for (let i = 2; used.has(name); i++) name = `${basename(f)}#${i}`;
    used.add(name);
    return { kind: 'trace', name, file: abs, needs };
  });
}

export interface ParsedMatrix extends MatrixOptions {
  seed: number;
  scale: number;
  traces: string[];
}

export async function parseMatrix(p: Parsed, io: Io, defaultReps: number): Promise<ParsedMatrix> {
  const seed = intOpt(p, 'seed', DEFAULT_SEED);
  const scale = scaleOpt(p);
  const reps = intOpt(p, 'reps', defaultReps);
  if (reps < 1 || reps > 100) throw new CliError('--reps must be in 1..100', EXIT_USAGE);
  const jobsGiven = str(p, 'jobs');
  const jobs = jobsGiven === undefined ? defaultJobs() : intOpt(p, 'jobs', 1);
  if (jobs < 1 || jobs > 256) throw new CliError('--jobs must be in 1..256', EXIT_USAGE);
  const traces = traceRefs(p, io);
  const named = str(p, 'workload');
  const builtins = traces.length && named === undefined ? [] : selectWorkloads(named, seed, scale);
  // Each stack keeps the --stack entry it came from, so a worker resolves the same one.
  const stacks: MatrixStack[] = (await selectStacks(str(p, 'stack'), io.cwd)).map(({ def, spec }) => ({ def, ref: { spec, name: def.name } }));
  const shard = parseShard(str(p, 'shard'));
  return {
    workloads: [...builtins, ...traces],
    stacks,
    reps,
    jobs,
    ...(shard ? { shard } : {}),
    quiet: flag(p, 'quiet') || flag(p, 'json'),
    seed,
    scale,
    traces: traces.map((t) => (t.kind === 'trace' ? t.file : '')),
  };
}
