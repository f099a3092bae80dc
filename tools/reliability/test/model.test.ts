import { describe, expect, it } from 'vitest';
import { CONFIGS } from '../src/configs.js';
import { formatFailure, fuzzConfig } from '../src/fuzz.js';

describe.each(CONFIGS.map((c) => [c.name, c] as const))('model-based: %s', (_name, cfg) => {
  for (const mode of ['strict', 'kernel'] as const) {
    it(`${mode}: random command sequences agree with the reference model`, () => {
      const r = fuzzConfig(cfg, { mode, numRuns: 20, seed: 0x10c0 + cfg.name.length, maxCommands: 40 });
      if (r.failure) expect.fail(formatFailure(r.failure));
      expect(r.runs).toBe(20);
    });
  }
});
