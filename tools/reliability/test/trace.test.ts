import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import fc from 'fast-check';
import { parseTrace, replayTrace } from '@io-pgtable/core';
import { describe, expect, it } from 'vitest';
import { abstractCmd } from '../src/commands.js';
import { CONFIGS, configByName } from '../src/configs.js';
import { fuzzConfig, runCommands, runSequence } from '../src/fuzz.js';
import { scribblerStack } from '../src/mutants.js';
import { systemStack } from '../src/stacks.js';
import { fromTraceOps, toTrace } from '../src/trace.js';
import type { Observation } from '../src/harness.js';

const ERR: Record<string, string> = { EINVAL: '-EINVAL', ERANGE: '-ERANGE', EEXIST: '-EEXIST', ENOMEM: '-ENOMEM', ENOENT: '-ENOENT' };

/** What the reference-vector result line for an observation must say. */
function expectedLine(o: Observation): Record<string, unknown> | null {
  const r = o.result;
  switch (o.cmd.op) {
    case 'map':
      return { ret: r.ret === 0 ? 0 : ERR[r.ret as string], mapped: '0x' + (r.mapped as number).toString(16) };
    case 'unmap':
      return r.ret === 'ENOENT' ? { ret: '-ENOENT', unmapped: '0xfffffffffffffffe' } : { ret: 0, unmapped: '0x' + (r.unmapped as number).toString(16) };
    case 'iova_to_phys':
      return { ret: 0, phys: '0x' + (r.phys as number).toString(16) };
    case 'free':
      return { ret: 0 };
    default:
      return null;
  }
}

describe('traces in the reference-vector format', () => {
  it.each(CONFIGS.map((c) => [c.name, c] as const))('%s: a kernel-mode run replays through replayTrace with the same results', (_n, cfg) => {
    const seqs = fc.sample(fc.array(abstractCmd, { minLength: 5, maxLength: 40 }), { numRuns: 3, seed: 77 });
    for (const seq of seqs) {
      const run = runSequence(cfg, 'kernel', seq, systemStack());
      expect(run.error).toBeNull();
      const { text } = toTrace(cfg, run.cmds);
      const out = replayTrace(text);
      const results = out.slice(1, -1).map((l) => {
        const { events: _e, tables: _t, ...rest } = JSON.parse(l) as Record<string, unknown>;
        return rest;
      });
      // Re-run to get the observations (runSequence keeps only commands).
      const parsed = parseTrace(text);
      const cmds = fromTraceOps(cfg, parsed.ops);
      expect(cmds).toEqual(run.cmds.filter((c) => c.op !== 'dirty' && c.op !== 'access'));
      const rerun = runCommands(cfg, 'kernel', cmds, systemStack());
      expect(rerun.error).toBeNull();
      const want = rerun.harness!.log.map(expectedLine).filter((x) => x !== null);
      expect(results).toEqual(want);
    }
  });

  it('a defect is caught, shrunk, and printed as a trace that replays', () => {
    const cfg = configByName('s1-4k-48-48');
    const r = fuzzConfig(cfg, { mode: 'strict', numRuns: 200, seed: 42, maxCommands: 30, stackName: 'scribbler' });
    expect(r.failure).not.toBeNull();
    const f = r.failure!;
    expect(f.message).toMatch(/scribbler|tables|leaf|tree|unreachable/);
    // Shrinking keeps it small: a map that needs a table, something that frees a table.
    expect(f.commands.length).toBeLessThanOrEqual(6);
    const parsed = parseTrace(f.trace);
    expect(parsed.header.format).toBe('ARM_64_LPAE_S1');
    expect(fromTraceOps(cfg, parsed.ops)).toEqual(f.commands.filter((c) => c.op !== 'dirty' && c.op !== 'access'));
    const out = replayTrace(f.trace);
    expect(out.length).toBe(parsed.ops.length + 2);
    expect(out.every((l) => !l.includes('"error"'))).toBe(true);
    // Replayed through the checked harness, the trace reproduces the failure over the broken
    // stack and passes over a sound one.
    expect(runCommands(cfg, 'strict', fromTraceOps(cfg, parsed.ops), scribblerStack()).error?.message).toBe(f.message.replace(/^HarnessFailure: /, ''));
    expect(runCommands(cfg, 'strict', fromTraceOps(cfg, parsed.ops), systemStack()).error).toBeNull();
  });

  it('the fuzz script refuses an option it does not know instead of ignoring it', () => {
    const out = spawnSync('npm run fuzz -- --runs 1 --config s1-4k-48-48 --bogus 3', { cwd: resolve(__dirname, '..'), shell: true, encoding: 'utf8' });
    expect(out.status).toBe(2);
    expect(out.stderr).toMatch(/unknown option "--bogus"/);
  });
});
