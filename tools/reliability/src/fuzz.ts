/**
 * Model-based fuzzing: fast-check generates abstract command sequences per configuration,
 * the harness runs them and checks everything after every command; a failure is shrunk
 * and reported with its seed and a trace in the reference-vector format.
 */
import fc from 'fast-check';
import { abstractCmd, concretize, type AbstractCmd, type Cmd } from './commands.js';
import { nameHash, type FuzzConfig } from './configs.js';
import { Harness } from './harness.js';
import type { Mode } from './model.js';
import { MUTANT_STACKS } from './mutants.js';
import { cPoolStack } from './c-stack.js';
import { FAULT_ONLY_STACK_NAMES, STACK_NAMES, SYSTEM_BASE, makeFaultOnlyStack, makeStack, systemStack, type FaultOnlyStackName, type Stack, type StackName } from './stacks.js';
import { toTrace } from './trace.js';

export interface FuzzOptions {
  mode: Mode;
  numRuns: number;
  seed: number;
  maxCommands: number;
  /**
   * The stack, by the name `npm run fuzz -- --stack` takes (default `system`): the
   * printed re-run command names it, so it must build the same stack.
   */
  stackName?: string;
  /** Fast-check's path of a counterexample: replays exactly that case (a printed re-run). */
  path?: string;
  /** Device accesses through core's IOMMU model (default true). */
  access?: boolean;
}

/**
 * Stacks beyond {@link STACK_NAMES} the model-based harness can drive: the fault matrix's
 * other stacks except donate mode (whose maps are refused by design), and the C pool.
 */
export const EXTRA_FUZZ_STACKS: readonly string[] = [...FAULT_ONLY_STACK_NAMES.filter((n) => !n.includes('donate')), 'c-pool'];

/** Every name `--stack` accepts: the stacks of stacks.ts, the C pool, and the deliberately broken ones. */
export const FUZZ_STACKS: readonly string[] = [...STACK_NAMES, ...EXTRA_FUZZ_STACKS, ...Object.keys(MUTANT_STACKS)];

/**
 * The stack factory for a name. The bare system allocator's smallest block (64 or 4096)
 * is chosen per configuration from a hash of its whole name, so both are covered.
 */
export function stackFactory(name: string, cfg: FuzzConfig): () => Stack {
  if (name === 'system') return () => systemStack({ minBlock: nameHash(cfg.name) % 2 === 0 ? 64 : 4096 });
  const mutant = Object.hasOwn(MUTANT_STACKS, name) ? MUTANT_STACKS[name] : undefined;
  if (mutant !== undefined) return mutant;
  if ((STACK_NAMES as readonly string[]).includes(name)) return () => makeStack(name as StackName);
  if (name === 'c-pool') return () => cPoolStack();
  if (EXTRA_FUZZ_STACKS.includes(name)) return () => makeFaultOnlyStack(name as FaultOnlyStackName);
  throw new RangeError(`unknown stack ${JSON.stringify(name)}; one of ${FUZZ_STACKS.join(', ')}`);
}

export interface FuzzFailure {
  config: string;
  mode: Mode;
  stack: string;
  maxCommands: number;
  access: boolean;
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
  const stack = opts.stackName ?? 'system';
  const makeStack = stackFactory(stack, cfg);
  let commands = 0;
  const prop = fc.property(fc.array(abstractCmd, { minLength: 1, maxLength: opts.maxCommands, size: 'max' }), (seq) => {
    commands += seq.length + 1;
    const r = runSequence(cfg, opts.mode, seq, makeStack(), opts.access);
    if (r.error) throw r.error;
  });
  const details = fc.check(prop, { numRuns: opts.numRuns, seed: opts.seed, endOnFailure: false, ...(opts.path !== undefined ? { path: opts.path } : {}) });
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
      stack,
      maxCommands: opts.maxCommands,
      access: opts.access ?? true,
      seed: details.seed,
      path: details.counterexample ? details.counterexamplePath ?? undefined : undefined,
      message: (r.error ?? details.errorInstance)?.toString() ?? 'unknown',
      commands: r.cmds,
      trace: text,
      omitted,
    },
  };
}

/**
 * The command that reproduces a failure as printed, run in tools/reliability: every
 * option that shapes the generated case (configuration, mode, stack, command count,
 * device accesses, seed and the counterexample's path).
 */
export function rerunCommand(f: FuzzFailure): string {
  const path = f.path ? ` --path ${f.path}` : '';
  return `npm run fuzz -- --config ${f.config} --mode ${f.mode} --stack ${f.stack} --commands ${f.maxCommands}${f.access ? '' : ' --no-access'} --seed ${f.seed}${path}`;
}

/** A failure as the text a developer needs: what failed, how to re-run it, the trace. */
export function formatFailure(f: FuzzFailure): string {
  return [
    `FAIL ${f.config} (${f.mode}): ${f.message}`,
    `  re-run: ${rerunCommand(f)}`,
    `  shrunk to ${f.commands.length} commands; trace (FORMAT.md, replay with \`npm run fuzz -- --replay FILE --config ${f.config} --mode ${f.mode} --stack ${f.stack}\`):`,
    f.trace.trimEnd(),
    ...(f.omitted.length ? [`  not expressible in the trace format: ${JSON.stringify(f.omitted)}`] : []),
  ].join('\n');
}
