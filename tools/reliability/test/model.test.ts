import { describe, expect, it } from 'vitest';
import { CONFIGS, configByName, nameHash } from '../src/configs.js';
import { EXTRA_FUZZ_STACKS, formatFailure, fuzzConfig } from '../src/fuzz.js';

describe.each(CONFIGS.map((c) => [c.name, c] as const))('model-based: %s', (_name, cfg) => {
  for (const mode of ['strict', 'kernel'] as const) {
    it(`${mode}: random command sequences agree with the reference model`, () => {
      const r = fuzzConfig(cfg, { mode, numRuns: 20, seed: nameHash(`model:${cfg.name}:${mode}`), maxCommands: 40 });
      if (r.failure) expect.fail(formatFailure(r.failure));
      expect(r.runs).toBe(20);
    });
  }
});

describe.each(EXTRA_FUZZ_STACKS.map((s) => [s] as const))('model-based over %s', (stack) => {
  it.each(['s1-4k-48-48-hd', 'mali-4k-33-33-pgd8'].map((n) => [n, configByName(n)] as const))('%s strict: random command sequences agree with the reference model', (_n, cfg) => {
    const r = fuzzConfig(cfg, { mode: 'strict', numRuns: 10, seed: nameHash(`model:${stack}:${cfg.name}`), maxCommands: 40, stackName: stack });
    if (r.failure) expect.fail(formatFailure(r.failure));
    expect(r.runs).toBe(10);
  });
});
