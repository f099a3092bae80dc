/**
 * Model-based fuzzing: fast-check generates abstract command sequences per configuration,
 * the harness runs them and checks everything after every command; a failure is shrunk
 * and reported with its seed and a trace in the reference-vector format.
 */
import fc from 'fast-check';
import { abstractCmd, concretize, type AbstractCmd, type Cmd } from './commands.js';
import type { FuzzConfig } from './configs.js';
import { Harness } from './harness.js';
import type { Mode } from './model.js';
import { SYSTEM_BASE, systemStack, type Stack } from './stacks.js';
import { toTrace } from './trace.js';

export interface FuzzOptions {
  mode: Mode;
  numRuns: number;
  seed: number;
  maxCommands: number;
  /** Stack factory (default: the system allocator alone). */
  stack?: () => Stack;
  /** Device accesses through core's IOMMU model (default true). */
  access?: boolean;
}

export interface FuzzFailure {
  config: string;
  mode: Mode;
  seed: number;
  path: string | undefined;
  message: string;
  commands: Cmd[];
  trace: string;
  /** Commands the trace format cannot express (dirty reads, device accesses). */
  omitted: Cmd[];
}

export interface FuzzReport {
  config: string;
  mode: Mode;
  runs: number;
  commands: number;
  failure: FuzzFailure | null;
}

/** Run one abstract sequence; returns the concrete commands that ran and the error, if any. */
export function runSequence(cfg: FuzzConfig, mode: Mode, seq: readonly AbstractCmd[], stack: Stack, access = true): { cmds: Cmd[]; error: Error | null } {
  const cmds: Cmd[] = [];
  let h: Harness;
  try {
    h = new Harness(cfg, stack, { mode });
  } catch (e) {
    return { cmds, error: e as Error };
  }
  const dirty = h.cfg.format === 'ARM_64_LPAE_S1' && h.cfg.quirks.includes('ARM_HD');
  try {
    for (const a of seq) {
      const c = concretize(h.shape, h.model, a, { dirty, access, noWrite: [SYSTEM_BASE, SYSTEM_BASE + 0x1000_0000] });
      cmds.push(c);
      h.run(c);
    }
    cmds.push({ op: 'free' });
    h.run({ op: 'free' });
  } catch (e) {
    return { cmds, error: e as Error };
  }
  return { cmds, error: null };
}

/** Run concrete commands (a replayed trace) through the checked harness. */
export function runCommands(cfg: FuzzConfig, mode: Mode, cmds: readonly Cmd[], stack: Stack): { harness: Harness | null; error: Error | null; ran: number } {
  let h: Harness | null = null;
  let ran = 0;
  try {
    h = new Harness(cfg, stack, { mode });
    for (const c of cmds) {
      h.run(c);
      ran++;
    }
    h.teardown();
  } catch (e) {
    return { harness: h, error: e as Error, ran };
  }
  return { harness: h, error: null, ran };
}

export function fuzzConfig(cfg: FuzzConfig, opts: FuzzOptions): FuzzReport {
  const makeStack = opts.stack ?? (() => systemStack({ minBlock: cfg.name.length % 2 === 0 ? 64 : 4096 }));
  let commands = 0;
  const prop = fc.property(fc.array(abstractCmd, { minLength: 1, maxLength: opts.maxCommands, size: 'max' }), (seq) => {
    commands += seq.length + 1;
    const r = runSequence(cfg, opts.mode, seq, makeStack(), opts.access);
    if (r.error) throw r.error;
  });
  const details = fc.check(prop, { numRuns: opts.numRuns, seed: opts.seed, endOnFailure: false });
  if (!details.failed || details.counterexample === null) return { config: cfg.name, mode: opts.mode, runs: details.numRuns, commands, failure: null };
  const [seq] = details.counterexample;
  const r = runSequence(cfg, opts.mode, seq, makeStack(), opts.access);
  const { text, omitted } = toTrace(cfg, r.cmds);
  return {
    config: cfg.name,
    mode: opts.mode,
    runs: details.numRuns,
    commands,
    failure: {
      config: cfg.name,
      mode: opts.mode,
      seed: details.seed,
      path: details.counterexample ? details.counterexamplePath ?? undefined : undefined,
      message: (r.error ?? details.errorInstance)?.toString() ?? 'unknown',
      commands: r.cmds,
      trace: text,
      omitted,
    },
  };
}

/** A failure as the text a developer needs: what failed, how to re-run it, the trace. */
export function formatFailure(f: FuzzFailure): string {
  return [
    `FAIL ${f.config} (${f.mode}): ${f.message}`,
    `  re-run: npm run fuzz -- --config ${f.config} --mode ${f.mode} --seed ${f.seed}${f.path ? ` --path ${f.path}` : ''} --runs 1`,
    `  shrunk to ${f.commands.length} commands; trace (FORMAT.md, replay with \`npm run fuzz -- --replay FILE --config ${f.config} --mode ${f.mode}\`):`,
    f.trace.trimEnd(),
    ...(f.omitted.length ? [`  not expressible in the trace format: ${JSON.stringify(f.omitted)}`] : []),
  ].join('\n');
}
