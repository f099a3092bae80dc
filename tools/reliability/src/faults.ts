/**
 * Fault injection across allocator stacks: for a standard workload, fail the k-th backing
 * allocation (and, over secure-share, the k-th secure-monitor call) for every k the
 * workload reaches. Every run must end with a tree that matches the model, only typed
 * errors, the accounting identity on every layer, and every page back at teardown.
 */
import fc from 'fast-check';
import { abstractCmd, concretize, type AbstractCmd } from './commands.js';
import type { FuzzConfig } from './configs.js';
import { Harness } from './harness.js';
import type { Mode } from './model.js';
import { cPoolStack } from './c-stack.js';
import { STACK_NAMES, SYSTEM_BASE, isBindStack, makeFaultOnlyStack, makeStack, type FaultOnlyStackName, type Stack, type StackName, type StackOptions } from './stacks.js';

/**
 * Stacks the model-based fault campaign drives: those of {@link STACK_NAMES}, and (as the
 * fuzzer's `--stack`) the RFC's per-table secure-share, reservation over a page pool
 * (per-op and merged counts), the CLI's partial batched allocator and the C pool. Donate mode refuses every map by design: src/donate.ts and src/matrix.ts.
 */
export type CampaignStack = StackName | Exclude<FaultOnlyStackName, 'secure-donate' | 'secure-donate-over-pool-over-batched'> | 'c-pool';
export const EXTRA_CAMPAIGN_STACKS: readonly CampaignStack[] = ['secure-per-table', 'reservation-over-pool', 'reservation-merged-over-pool', 'batched-partial', 'c-pool'];

function campaignStack(name: CampaignStack, opts: StackOptions): Stack {
  if ((STACK_NAMES as readonly string[]).includes(name)) return makeStack(name as StackName, opts);
  if (name === 'c-pool') return cPoolStack(opts);
  return makeFaultOnlyStack(name as FaultOnlyStackName, opts);
}

export interface Workload {
  name: string;
  seq: readonly AbstractCmd[];
}

/** Three fixed workloads: sampled once from fixed seeds, so every run sees the same commands. */
export const WORKLOADS: readonly Workload[] = [
  { name: 'mixed-a', seq: fc.sample(fc.array(abstractCmd, { minLength: 40, maxLength: 40 }), { numRuns: 1, seed: 101 })[0]! },
  { name: 'mixed-b', seq: fc.sample(fc.array(abstractCmd, { minLength: 40, maxLength: 40 }), { numRuns: 1, seed: 202 })[0]! },
  {
    name: 'table-churn',
    // Pages in many windows (each needs tables), then block-sized unmaps that free them.
    seq: [0, 1, 2, 3, 4].flatMap((anchor): AbstractCmd[] => [
      { k: 'map', size: 0, anchor, slot: anchor, count: 3, pa: 100 + anchor, prot: 3 },
      { k: 'map', size: 1, anchor, slot: 7 - anchor, count: 2, pa: 7 * anchor, prot: 1 },
      { k: 'access', pick: anchor, write: true },
      { k: 'unmap', useLeaf: true, pick: anchor, size: 2, anchor, slot: 0, count: 1 },
      { k: 'unmap', useLeaf: true, pick: 2 * anchor, size: 1, anchor, slot: 0, count: 1 },
      { k: 'map', size: 0, anchor, slot: anchor, count: 1, pa: 3, prot: 2 },
    ]),
  },
];

export interface FaultRun {
  error: Error | null;
  /** Map calls that returned ENOMEM. */
  nomem: number;
  /** Did page-table creation fail (ENOMEM on the PGD)? */
  createFailed: boolean;
  backingCalls: number;
  secureCalls: number;
  /** Reservation stacks: non-empty job prepares, jobs refused at prepare, runs that ran dry. */
  jobs: number;
  prepareFailures: number;
  exhaustions: number;
}

export interface FaultPlan {
  failBackingAt?: number;
  failSecureAt?: number;
  /** Reservation stacks: the k-th non-empty job reserves one page fewer than counted. */
  shortJobAt?: number;
}

export function runWorkload(cfg: FuzzConfig, stackName: CampaignStack, w: Workload, plan: FaultPlan, mode: Mode = 'strict'): FaultRun {
  const stack = campaignStack(stackName, {
    ...(plan.failBackingAt !== undefined ? { failWhen: (n: number) => n === plan.failBackingAt } : {}),
    ...(plan.failSecureAt !== undefined ? { scmFailWhen: (n: number) => n === plan.failSecureAt } : {}),
  });
  // Only the bare system allocator maps allocations 1:1 to page-table requests, so only
  // there the model predicts exactly which map fails.
  const exact = stackName === 'system' && plan.failSecureAt === undefined;
  let h: Harness | null = null;
  const run = (): FaultRun => ({
    error: null,
    nomem: h?.nomemCount ?? 0,
    createFailed: h?.pt === null,
    backingCalls: stack.system.allocCalls,
    secureCalls: stack.secureCalls?.() ?? 0,
    jobs: h?.bind?.prepares() ?? 0,
    prepareFailures: h?.prepareFailures ?? 0,
    exhaustions: h?.exhaustions ?? 0,
  });
  try {
    h = new Harness(cfg, stack, {
      mode,
      ...(exact ? { failAt: plan.failBackingAt ?? -1 } : { lenientNomem: true }),
      ...(plan.shortJobAt !== undefined ? { shortJobAt: plan.shortJobAt } : {}),
    });
    const dirty = cfg.format === 'ARM_64_LPAE_S1' && cfg.quirks.includes('ARM_HD');
    for (const a of w.seq) h.run(concretize(h.shape, h.model, a, { dirty, access: true, noWrite: [SYSTEM_BASE, SYSTEM_BASE + 0x1000_0000] }));
    h.teardown();
    return run();
  } catch (e) {
    return { ...run(), error: e as Error };
  }
}

export interface CampaignResult {
  config: string;
  stack: CampaignStack;
  workload: string;
  /** Runs made (one clean + one per k). */
  runs: number;
  backingCalls: number;
  secureCalls: number;
  /** Runs in which at least one map returned ENOMEM, a job's prepare failed, or creation failed. */
  runsWithNomem: number;
  /** Reservation stacks: non-empty jobs of the clean run, and short-reservation runs that ran dry. */
  jobs: number;
  runsWithExhaustion: number;
  failures: string[];
}

/**
 * Clean run, then fail each backing allocation k in turn, then each secure call k in turn,
 * then (reservation stacks) short each job's reservation k in turn by one page.
 */
export function faultCampaign(cfg: FuzzConfig, stackName: CampaignStack, w: Workload, mode: Mode = 'strict'): CampaignResult {
  const res: CampaignResult = { config: cfg.name, stack: stackName, workload: w.name, runs: 1, backingCalls: 0, secureCalls: 0, runsWithNomem: 0, jobs: 0, runsWithExhaustion: 0, failures: [] };
  const clean = runWorkload(cfg, stackName, w, {}, mode);
  if (clean.error) {
    res.failures.push(`clean run: ${clean.error.message}`);
    return res;
  }
  res.backingCalls = clean.backingCalls;
  res.secureCalls = clean.secureCalls;
  res.jobs = clean.jobs;
  const record = (what: string, r: FaultRun): void => {
    res.runs++;
    if (r.nomem > 0 || r.prepareFailures > 0 || r.createFailed) res.runsWithNomem++;
    if (r.exhaustions > 0) res.runsWithExhaustion++;
    if (r.error) res.failures.push(`${what}: ${r.error.name}: ${r.error.message}`);
  };
  for (let k = 0; k < clean.backingCalls; k++) record(`backing alloc #${k} failed`, runWorkload(cfg, stackName, w, { failBackingAt: k }, mode));
  for (let k = 0; k < clean.secureCalls; k++) record(`secure call #${k} failed`, runWorkload(cfg, stackName, w, { failSecureAt: k }, mode));
  if (isBindStack(stackName as StackName)) for (let k = 0; k < clean.jobs; k++) record(`job #${k} reserved one page short`, runWorkload(cfg, stackName, w, { shortJobAt: k }, mode));
  return res;
}
