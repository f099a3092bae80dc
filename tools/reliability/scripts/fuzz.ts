/**
 * Long fuzz campaigns: `npm run fuzz -- --runs N --seed S [--config NAME] [--mode strict|kernel]
 * [--commands M] [--stack NAME] [--no-access] [--path P]` (`--path`, printed with a
 * failure, replays exactly that counterexample), or re-run a printed trace through the
 * checked harness: `npm run fuzz -- --replay FILE --config NAME --mode strict [--stack NAME]`.
 * Every option given must be one of these: an ignored option would make a printed re-run
 * run something else.
 */
import { readFileSync } from 'node:fs';
import { parseTrace } from '@io-pgtable/core';
import { CONFIGS, configByName } from '../src/configs.js';
import { FUZZ_STACKS, formatFailure, fuzzConfig, runCommands, stackFactory } from '../src/fuzz.js';
import type { Mode } from '../src/model.js';
import { isBindStack, type StackName } from '../src/stacks.js';
import { fromTraceOps } from '../src/trace.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
function num(name: string, dflt: number): number {
  const v = arg(name);
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a non-negative integer, got ${v}`);
    process.exit(2);
  }
  return n;
}

const VALUED = ['runs', 'seed', 'config', 'mode', 'commands', 'stack', 'path', 'replay'];
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]!;
  if (a === '--no-access') continue;
  if (!a.startsWith('--') || !VALUED.includes(a.slice(2))) (console.error(`unknown option ${JSON.stringify(a)}; options: ${VALUED.map((v) => '--' + v).join(' ')} --no-access`), process.exit(2));
  if (process.argv[i + 1] === undefined) (console.error(`${a} needs a value`), process.exit(2));
  i++;
}
const stackName = arg('stack') ?? 'system';
if (!FUZZ_STACKS.includes(stackName)) (console.error(`--stack must be one of ${FUZZ_STACKS.join(', ')}`), process.exit(2));
const access = !process.argv.includes('--no-access');
const path = arg('path');
// VM_BIND stacks: the Vm builds a strict-mode table and takes TTBR0 addresses only.
const bind = isBindStack(stackName as StackName);
const modes: Mode[] = arg('mode') ? [arg('mode') as Mode] : bind ? ['strict'] : ['strict', 'kernel'];
for (const m of modes) if (m !== 'strict' && m !== 'kernel') (console.error(`--mode must be strict or kernel`), process.exit(2));
if (bind && modes[0] !== 'strict') (console.error(`--stack ${stackName} runs VM_BIND jobs: strict mode only`), process.exit(2));

const replay = arg('replay');
if (replay !== undefined) {
  const cfg = configByName(arg('config') ?? 's1-4k-48-48');
  const trace = parseTrace(readFileSync(replay, 'utf8'), replay);
  const r = runCommands(cfg, modes[0]!, fromTraceOps(cfg, trace.ops), stackFactory(stackName, cfg)());
  if (r.error) {
    console.log(`FAIL after ${r.ran} of ${trace.ops.length} ops: ${r.error.message}`);
    process.exit(1);
  }
  console.log(`ok: ${trace.ops.length} ops replayed through the checked harness (${cfg.name}, ${modes[0]}, ${stackName})`);
  process.exit(0);
}

const runs = num('runs', 200);
const seed = num('seed', Date.now() % 2 ** 31);
const maxCommands = num('commands', 60);
const configs = arg('config') ? [configByName(arg('config')!)] : CONFIGS.filter((c) => !bind || !c.quirks.includes('ARM_TTBR1'));
const t0 = performance.now();
let total = 0;
let failures = 0;
console.log(`fuzz: ${configs.length} configs x ${modes.join('+')} x ${runs} runs of <= ${maxCommands} commands, seed ${seed}, stack ${stackName}`);
for (const cfg of configs) {
  for (const mode of modes) {
    const t = performance.now();
    const r = fuzzConfig(cfg, { mode, numRuns: runs, seed, maxCommands, stackName, access, ...(path !== undefined ? { path } : {}) });
    total += r.commands;
    const ms = performance.now() - t;
    if (r.failure) {
      failures++;
      console.log(formatFailure(r.failure));
    } else console.log(`ok   ${cfg.name.padEnd(28)} ${mode.padEnd(6)} ${r.runs} runs, ${r.commands} commands, ${ms.toFixed(0)} ms`);
  }
}
const s = (performance.now() - t0) / 1000;
console.log(`total: ${total} commands in ${s.toFixed(1)} s (${Math.round(total / s)} commands/s), ${failures} failing config/mode pairs`);
process.exit(failures ? 1 : 0);
