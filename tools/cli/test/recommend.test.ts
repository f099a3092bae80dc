import { describe, expect, it } from 'vitest';
import { criteria, recommend } from '../src/sim/recommend';
import type { StackInfo, WorkloadInfo } from '../src/sim/run';
import type { SimResult } from '../src/sim/simulate';

const W = (needs: WorkloadInfo['needs'] = []): WorkloadInfo => ({ name: 'w', description: '', needs, jobs: 10, rangeOps: 10, contexts: 1, format: 'ARM_64_LPAE_S1 48/48' });
const S = (name: string, t: Partial<StackInfo> = {}): StackInfo => ({ name, description: '', reservesBeforeRun: false, secureShare: false, ...t });

/** A result with literal numbers; only what a case sets differs from the baseline. */
function R(stack: string, o: Partial<SimResult> = {}): SimResult {
  return {
    workload: 'w', stack, seed: 1, jobs: 10, rangeOps: 10, pgtableCalls: 10, tablesAllocated: 100, backingCalls: 100, pageAllocCalls: 100, pageFreeCalls: 100,
    peakPages: 100, peakLivePages: 100, overProvisioning: 0, poolHitRate: null, secureCalls: 0, secureNs: 0, mapFailures: 0, reservedTables: null, usedTables: null,
    refusedJobs: 0, runPhaseAllocs: 50, nsPerOp: 1000, nsPerOpMin: 990, nsPerOpMax: 1010, nsPerOpRuns: 3, leakedPages: 0, pagesOverTime: [], backingOverTime: [], secureOverTime: [],
    ...o,
  };
}

// few calls but many pages, against many calls but few pages; same time.
const fewCalls = R('few-calls', { backingCalls: 10, peakPages: 300 });
const fewPages = R('few-pages', { backingCalls: 200, peakPages: 100 });
const stacks = [S('few-calls'), S('few-pages')];

describe('recommend', { timeout: 300_000 }, () => {
  it('the goal changes the pick: balanced and latency weigh calls, memory weighs pages', () => {
    // balanced: 1*log2(201/11) = 4.2 for few-pages vs 1*log2(301/101) = 1.6 for few-calls.
    expect(recommend(W(), [fewCalls, fewPages], stacks, 'balanced')).toMatchObject({ stack: 'few-calls', runnerUp: 'few-pages' });
    // memory: 3*1.58 = 4.7 for few-calls vs 0.5*4.19 = 2.1 for few-pages.
    const mem = recommend(W(), [fewCalls, fewPages], stacks, 'memory');
    expect(mem).toMatchObject({ stack: 'few-pages', runnerUp: 'few-calls' });
    expect(mem.tradeOff).toBe('few-calls has 95% fewer backing calls, but 3.0x the peak pages');
    expect(mem.ranking.map((r) => r.stack)).toEqual(['few-pages', 'few-calls']);
  });

  it('latency weighs ns/op; a difference inside the runs\' spread is not a trade-off', () => {
    const fast = R('fast', { nsPerOp: 200, nsPerOpMin: 190, nsPerOpMax: 210, backingCalls: 400 });
    const slow = R('slow', { backingCalls: 100 });
    expect(recommend(W(), [slow, fast], [S('slow'), S('fast')], 'latency').stack).toBe('fast');
    expect(recommend(W(), [slow, fast], [S('slow'), S('fast')], 'memory').stack).toBe('slow');
    const overlap = R('overlap', { nsPerOp: 1005, nsPerOpMin: 900, nsPerOpMax: 1100, backingCalls: 300 });
    expect(recommend(W(), [slow, overlap], [S('slow'), S('overlap')]).tradeOff).toBe('overlap is no better on any measure (3.0x the backing calls)');
  });

  it('async VM_BIND: only reservation stacks with no run-phase allocation qualify, however cheap the others', () => {
    const cheap = R('cheap', { backingCalls: 1, peakPages: 1 });
    const res = R('reserve', { runPhaseAllocs: 0, backingCalls: 500 });
    const leaky = R('reserve-leaky', { runPhaseAllocs: 3 });
    const r = recommend(W(['async-vm-bind']), [cheap, res, leaky], [S('cheap'), S('reserve', { reservesBeforeRun: true }), S('reserve-leaky', { reservesBeforeRun: true })]);
    expect(r.stack).toBe('reserve');
    expect(r.runnerUp).toBeNull();
    expect(r.reason).toMatch(/^reserves before the run phase/);
    expect(r.excluded).toEqual([
      { stack: 'cheap', why: 'allocates in the VM_BIND run phase (no reservation)' },
      { stack: 'reserve-leaky', why: 'made 3 page allocations in the run phase' },
    ]);
  });

  it('shared VMIDs: only secure-share stacks; failures and leaks rule a stack out first', () => {
    const sec = R('secure', { secureCalls: 40 });
    const secLeak = R('secure-leak', { secureCalls: 2, leakedPages: 1 });
    const plain = R('plain');
    const r = recommend(W(['shared-vmid']), [plain, sec, secLeak], [S('plain'), S('secure', { secureShare: true }), S('secure-leak', { secureShare: true })]);
    expect(r.stack).toBe('secure');
    expect(r.excluded.map((e) => e.why)).toEqual(['does not share tables with the VMID through the secure monitor', 'leaked 1 pages']);
    const none = recommend(W(['shared-vmid']), [plain], [S('plain')]);
    expect(none).toMatchObject({ stack: null, runnerUp: null, reason: 'no measured stack meets the hard constraints (needs: shared-vmid)' });
  });

  it('ties go to the earlier stack in the list', () => {
    const a = R('a');
    const b = R('b');
    expect(recommend(W(), [b, a], [S('a'), S('b')]).stack).toBe('a');
    expect(recommend(W(), [a, b], [S('b'), S('a')]).stack).toBe('b');
  });

  it('prints the criteria with the goal\'s weights', () => {
    expect(criteria('secure-calls')[3]).toBe('4. lowest weighted cost, goal "secure-calls": 4 x secure calls + 0.5 x backing calls + 0.5 x peak pages + 0.25 x ns/op, each cost log2(value / best qualifying value); ties go to the earlier stack');
    expect(criteria('balanced')).toHaveLength(4);
  });
});
