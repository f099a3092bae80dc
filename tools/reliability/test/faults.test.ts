import { describe, expect, it } from 'vitest';
import { configByName } from '../src/configs.js';
import { donateCampaign } from '../src/donate.js';
import { EXTRA_CAMPAIGN_STACKS, WORKLOADS, faultCampaign } from '../src/faults.js';
import { STACK_NAMES, isBindStack, type StackName } from '../src/stacks.js';

const CONFIGS = ['s1-4k-48-48-hd', 's2-4k-42-42-concat8', 's1-64k-52-52-4t', 'mali-4k-33-33-pgd8'].map(configByName);

describe.each([...STACK_NAMES, ...EXTRA_CAMPAIGN_STACKS].map((s) => [s] as const))('fault injection over %s', (stack) => {
  it.each(CONFIGS.map((c) => [c.name, c] as const))('%s: every k-th failure ends consistent, typed and leak-free', (_n, cfg) => {
    for (const w of WORKLOADS) {
      const r = faultCampaign(cfg, stack, w);
      expect(r.failures, `${w.name}: ${r.failures.slice(0, 3).join('\n')}`).toEqual([]);
      // The campaign really injected: each backing allocation (and secure call, and for
      // reservation stacks each job's reservation) was failed once.
      expect(r.runs).toBe(1 + r.backingCalls + r.secureCalls + r.jobs);
      expect(r.backingCalls).toBeGreaterThan(0);
      if (stack.includes('secure')) expect(r.secureCalls).toBeGreaterThan(0);
      // Failing a backing allocation is visible as ENOMEM (or a failed prepare) somewhere in most runs.
      expect(r.runsWithNomem).toBeGreaterThan(0);
      if (isBindStack(stack as StackName)) {
        expect(r.jobs).toBeGreaterThan(0);
        // A reservation one page short runs dry in at least one job (a BindError, not a throw).
        expect(r.runsWithExhaustion).toBeGreaterThan(0);
      }
    }
  });
});

describe('fault injection over secure-share in donate mode', () => {
  it.each(CONFIGS.map((c) => [c.name, c] as const))('%s: refused maps and every k-th failure strand no table and leak nothing', (_n, cfg) => {
    const r = donateCampaign(cfg);
    expect(r.failures, r.failures.slice(0, 3).join('\n')).toEqual([]);
    expect(r.runs).toBe(1 + r.backingCalls + r.secureCalls);
    // The clean run's maps were all refused (the PGD is donated); faults were injected.
    expect(r.refused).toBe(6);
    expect(r.backingCalls).toBeGreaterThan(0);
    expect(r.secureCalls).toBeGreaterThan(0);
    expect(r.runsWithNomem).toBeGreaterThan(0);
  });
});
