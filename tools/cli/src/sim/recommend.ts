/**
 * The answer to "which allocator stack for this workload": explicit criteria, applied in
 * order. First the hard constraints (a stack that breaks one is out, whatever it costs),
 * then a weighted cost over what a driver pays, with weights chosen by `--goal`.
 * `CRITERIA` below is the documentation: the CLI prints it and the report shows it.
 */
import type { StackInfo, WorkloadInfo } from './run.js';
import type { SimResult } from './simulate.js';

export const GOALS = ['balanced', 'latency', 'memory', 'secure-calls'] as const;
export type Goal = (typeof GOALS)[number];

type Metric = 'secureCalls' | 'backingCalls' | 'peakPages' | 'nsPerOp';

const METRIC_LABEL: Record<Metric, string> = {
  secureCalls: 'secure calls',
  backingCalls: 'backing calls',
  peakPages: 'peak pages',
  nsPerOp: 'ns/op',
};

/** Weight of each cost per goal (a cost is log2 of the value over the best qualifying value). */
export const WEIGHTS: Record<Goal, Record<Metric, number>> = {
  balanced: { secureCalls: 2, backingCalls: 1, peakPages: 1, nsPerOp: 0.5 },
  latency: { secureCalls: 1, backingCalls: 1, peakPages: 0.25, nsPerOp: 3 },
  memory: { secureCalls: 0.5, backingCalls: 0.5, peakPages: 3, nsPerOp: 0.25 },
  'secure-calls': { secureCalls: 4, backingCalls: 0.5, peakPages: 0.5, nsPerOp: 0.25 },
};

const METRICS: Metric[] = ['secureCalls', 'backingCalls', 'peakPages', 'nsPerOp'];

/** The criteria, in the order they are applied, as printed by `compare` and shown in the report. */
export function criteria(goal: Goal): string[] {
  const w = WEIGHTS[goal];
  return [
    '1. correct: no leaked page, no failed map, no refused job',
    '2. async VM_BIND workloads: the run phase must not allocate, so only stacks that reserve tables before the run (reservation) and made 0 page allocations while jobs ran',
    '3. tables shared with another VMID: only secure-share stacks (pages assigned through the secure monitor)',
    `4. lowest weighted cost, goal "${goal}": ${METRICS.map((m) => `${w[m]} x ${METRIC_LABEL[m]}`).join(' + ')}, each cost log2(value / best qualifying value); ties go to the earlier stack`,
  ];
}

export interface Recommendation {
  workload: string;
  goal: Goal;
  /** null when no stack meets the hard constraints. */
  stack: string | null;
  reason: string;
  runnerUp: string | null;
  tradeOff: string | null;
  /** Stacks that met the hard constraints, best first, with their weighted cost. */
  ranking: Array<{ stack: string; cost: number }>;
  /** Stacks ruled out, and which constraint ruled them out. */
  excluded: Array<{ stack: string; why: string }>;
}

function fmtN(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Pages as pages and bytes (4 KiB pages). */
export function fmtPages(pages: number): string {
  const kib = pages * 4;
  const size = kib >= 1024 ? `${+(kib / 1024).toFixed(1)} MiB` : `${kib} KiB`;
  return `${fmtN(pages)} pages (${size})`;
}

function fmtNs(ns: number): string {
  return ns >= 1000 ? `${+(ns / 1000).toFixed(1)} µs/op` : `${Math.round(ns)} ns/op`;
}

function value(r: SimResult, m: Metric): number {
  return r[m];
}

function whyExcluded(r: SimResult, s: StackInfo | undefined, w: WorkloadInfo): string | null {
  if (r.leakedPages !== 0) return `leaked ${fmtN(r.leakedPages)} pages`;
  if (r.mapFailures !== 0) return `${fmtN(r.mapFailures)} failed maps`;
  if (r.refusedJobs !== 0) return `refused ${fmtN(r.refusedJobs)} jobs`;
  if (w.needs.includes('async-vm-bind')) {
    if (!s?.reservesBeforeRun) return 'allocates in the VM_BIND run phase (no reservation)';
    if (r.runPhaseAllocs !== 0) return `made ${fmtN(r.runPhaseAllocs)} page allocations in the run phase`;
  }
  if (w.needs.includes('shared-vmid')) {
    if (!s?.secureShare) return 'does not share tables with the VMID through the secure monitor';
    if (r.secureCalls === 0) return 'made no secure call';
  }
  return null;
}

/** A ratio as `1.04x` near 1 and `2.4x` further away. */
function times(r: number): string {
  return `${r < 1.1 ? r.toFixed(2) : r.toFixed(1)}x`;
}

function compareText(a: SimResult, b: SimResult): { better: string[]; worse: string[] } {
  // How `b` compares with `a`, metric by metric; 2% either way is the same.
  const better: string[] = [];
  const worse: string[] = [];
  for (const m of METRICS) {
    const va = value(a, m);
    const vb = value(b, m);
    if (m === 'nsPerOp' && b.nsPerOpMin <= a.nsPerOpMax && a.nsPerOpMin <= b.nsPerOpMax) continue; // within the runs' spread
    if (va === vb || Math.abs(vb - va) <= 0.02 * Math.max(va, vb)) continue;
    const label = m === 'nsPerOp' ? 'time per op' : METRIC_LABEL[m];
    if (vb < va) better.push(va === 0 ? `no ${label}` : m === 'nsPerOp' ? `${times(va / vb)} faster` : `${Math.round((1 - vb / va) * 100)}% fewer ${label}`);
    else worse.push(va === 0 ? `${fmtN(vb)} ${label} (none for the pick)` : m === 'nsPerOp' ? `${times(vb / va)} slower` : `${times(vb / va)} the ${label}`);
  }
  return { better, worse };
}

/** Recommend a stack for one workload from its results (one per stack). */
export function recommend(w: WorkloadInfo, results: SimResult[], stacks: StackInfo[], goal: Goal = 'balanced'): Recommendation {
  const order = new Map(stacks.map((s, i) => [s.name, i]));
  const info = new Map(stacks.map((s) => [s.name, s]));
  const rs = results.filter((r) => r.workload === w.name).sort((a, b) => (order.get(a.stack) ?? 0) - (order.get(b.stack) ?? 0));
  const excluded: Recommendation['excluded'] = [];
  const ok: SimResult[] = [];
  for (const r of rs) {
    const why = whyExcluded(r, info.get(r.stack), w);
    if (why) excluded.push({ stack: r.stack, why });
    else ok.push(r);
  }
  const needs = w.needs.length ? ` (needs: ${w.needs.join(', ')})` : '';
  if (ok.length === 0) {
    return { workload: w.name, goal, stack: null, reason: `no measured stack meets the hard constraints${needs}`, runnerUp: null, tradeOff: null, ranking: [], excluded };
  }
  const best = Object.fromEntries(METRICS.map((m) => [m, Math.min(...ok.map((r) => value(r, m)))])) as Record<Metric, number>;
  const weights = WEIGHTS[goal];
  const cost = (r: SimResult) => METRICS.reduce((c, m) => c + weights[m] * Math.log2((value(r, m) + 1) / (best[m] + 1)), 0);
  const ranking = ok.map((r) => ({ r, cost: cost(r) })).sort((a, b) => a.cost - b.cost || (order.get(a.r.stack) ?? 0) - (order.get(b.r.stack) ?? 0));
  const win = ranking[0]!.r;
  const second = ranking[1]?.r;
  const constraint = w.needs.includes('async-vm-bind')
    ? 'reserves before the run phase (0 page allocations while jobs ran); '
    : w.needs.includes('shared-vmid')
      ? 'shares tables with each VMID through the secure monitor; '
      : '';
  const metrics = `${fmtN(win.backingCalls)} backing calls, ${fmtN(win.secureCalls)} secure calls, peak ${fmtPages(win.peakPages)} (+${(win.overProvisioning * 100).toFixed(1)}% over need), ${fmtNs(win.nsPerOp)}`;
  let reason = `${constraint}lowest ${goal} cost of ${ok.length} qualifying stack${ok.length > 1 ? 's' : ''}: ${metrics}`;
  let tradeOff: string | null = null;
  if (second) {
    const { better, worse } = compareText(win, second);
    tradeOff = better.length
      ? `${second.stack} has ${better.join(', ')}, but ${worse.length ? worse.join(', ') : 'a higher weighted cost'}`
      : `${second.stack} is no better on any measure${worse.length ? ` (${worse.join(', ')})` : ''}`;
  } else reason += `; the only one qualifying${needs}`;
  return {
    workload: w.name,
    goal,
    stack: win.stack,
    reason,
    runnerUp: second?.stack ?? null,
    tradeOff,
    ranking: ranking.map((x) => ({ stack: x.r.stack, cost: Math.round(x.cost * 1000) / 1000 })),
    excluded,
  };
}

export function recommendAll(workloads: WorkloadInfo[], results: SimResult[], stacks: StackInfo[], goal: Goal): Recommendation[] {
  return workloads.map((w) => recommend(w, results, stacks, goal));
}

/** The terminal's answer block: one line per workload, then its runner-up. */
export function recommendationText(recs: Recommendation[]): string {
  const w = Math.max(...recs.map((r) => r.workload.length));
  const lines: string[] = [];
  for (const r of recs) {
    lines.push(`${r.workload.padEnd(w)}  -> ${r.stack ?? 'none'}: ${r.reason}`);
    if (r.runnerUp) lines.push(`${' '.repeat(w)}     runner-up ${r.runnerUp}: ${r.tradeOff}`);
  }
  return lines.join('\n') + '\n';
}
