/** Run a matrix of workloads x stacks, with progress; shared by simulate, bench and compare. */
import { CliError, EXIT_USAGE, Progress, type Io } from '../io.js';
import { fmtInt, fmtPct, renderTable } from '../table.js';
import { simulate, type SimResult } from './simulate.js';
import { STACKS, findStack, type StackDef } from './stacks.js';
import { WORKLOADS, findWorkload, type Workload, type WorkloadDef } from './workloads.js';

export interface MatrixOptions {
  workloads: WorkloadDef[];
  stacks: StackDef[];
  seed: number;
  scale: number;
  traceFile?: string;
  samples?: number;
}

export interface SkippedStack {
  stack: string;
  reason: string;
}

export interface MatrixResult {
  results: SimResult[];
  skipped: SkippedStack[];
  workloads: Array<{ name: string; description: string; jobs: number; rangeOps: number; contexts: number; format: string }>;
  stacks: Array<{ name: string; description: string }>;
}

/** `all` or a comma-separated list of names, each checked against the registry. */
export function selectWorkloads(v: string | undefined): WorkloadDef[] {
  if (v === undefined || v === 'all') return [...WORKLOADS];
  return v.split(',').map((n) => {
    const w = findWorkload(n.trim());
    if (!w) throw new CliError(`--workload: unknown workload ${JSON.stringify(n)}; known: ${WORKLOADS.map((x) => x.name).join(', ')}`, EXIT_USAGE);
    return w;
  });
}

export function selectStacks(v: string | undefined): StackDef[] {
  if (v === undefined || v === 'all') return [...STACKS];
  return v.split(',').map((n) => {
    const s = findStack(n.trim());
    if (!s) throw new CliError(`--stack: unknown stack ${JSON.stringify(n)}; known: ${STACKS.map((x) => x.name).join(', ')}`, EXIT_USAGE);
    return s;
  });
}

export function runMatrix(io: Io, label: string, o: MatrixOptions): MatrixResult {
  const usable = o.stacks.filter((s) => s.unavailable() === null);
  const skipped = o.stacks.filter((s) => s.unavailable() !== null).map((s) => ({ stack: s.name, reason: s.unavailable()! }));
  const built: Workload[] = o.workloads.map((d) => d.build({ seed: o.seed, scale: o.scale, ...(o.traceFile ? { traceFile: o.traceFile } : {}) }));
  const progress = new Progress(io, label, built.length * usable.length, { plain: true });
  const results: SimResult[] = [];
  for (const w of built) {
    for (const s of usable) {
      results.push(simulate(w, s, o.samples !== undefined ? { samples: o.samples } : {}));
      progress.tick(`${w.name} x ${s.name}`);
    }
  }
  progress.end();
  return {
    results,
    skipped,
    workloads: built.map((w) => ({
      name: w.name,
      description: w.description,
      jobs: w.jobs.length,
      rangeOps: w.jobs.reduce((n, j) => n + j.ops.length, 0),
      contexts: w.contexts,
      format: `${w.pgtable.format} ${w.pgtable.ias}/${w.pgtable.oas}`,
    })),
    stacks: usable.map((s) => ({ name: s.name, description: s.description })),
  };
}

export const TABLE_HEADERS = ['workload', 'stack', 'tables', 'backing calls', 'peak pages', 'over-prov', 'pool hits', 'secure calls', 'secure ms', 'ns/op'];

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
    ]),
    [false, false, true, true, true, true, true, true, true, true],
  );
}
