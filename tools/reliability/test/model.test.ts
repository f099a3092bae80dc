import { describe, expect, it } from 'vitest';
import { CONFIGS, nameHash } from '../src/configs.js';
import { formatFailure, fuzzConfig } from '../src/fuzz.js';

describe.each(CONFIGS.map((c) => [c.name, c] as const))('model-based: %s', (_name, cfg) => {
  for (const mode of ['strict', 'kernel'] as const) {
    it(`${mode}: random command sequences agree with the reference model`, () => {
      const r = fuzzConfig(cfg, { mode, numRuns: 20, seed: nameHash(`model:${cfg.name}:${mode}`), maxCommands: 40 });
      if (r.failure) expect.fail(formatFailure(r.failure));
      expect(r.runs).toBe(20);
    });
  }
});
