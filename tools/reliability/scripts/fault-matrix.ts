/**
 * The exhaustive fault matrix: `npm run fault-matrix -- [--config NAME] [--stack NAME]
 * [--seed S] [--sample N] [--verbose]`. Every configuration (default all) x every stack
 * x every fault kind x every call index k the seeded workload reaches (or N of them per
 * kind with --sample). Prints what it covered (runs per stack and fault kind, and the
 * runs that broke a rule), the first failures, and exits 1 when any run broke a rule.
 */
import { CONFIGS, configByName } from '../src/configs.js';
import { FAULT_KINDS, MATRIX_STACKS, cellApplies, matrixCell, type CellResult, type FaultKind, type MatrixStackName } from '../src/matrix.js';

const VALUED = ['config', 'stack', 'seed', 'sample'];
const args = process.argv.slice(2);
const opt = new Map<string, string>();
let verbose = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--verbose') {
    verbose = true;
    continue;
  }
  if (!a.startsWith('--') || !VALUED.includes(a.slice(2)) || args[i + 1] === undefined) {
    console.error(`unknown option or missing value: ${JSON.stringify(a)}; options: ${VALUED.map((v) => `--${v} V`).join(' ')} --verbose`);
    process.exit(2);
  }
  opt.set(a.slice(2), args[++i]!);
}
const int = (name: string): number | undefined => {
  const v = opt.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) (console.error(`--${name} must be a non-negative integer, got ${v.slice(0, 40)}`), process.exit(2));
  return n;
};
const stackOpt = opt.get('stack');
if (stackOpt !== undefined && !(MATRIX_STACKS as readonly string[]).includes(stackOpt)) (console.error(`--stack must be one of ${MATRIX_STACKS.join(', ')}`), process.exit(2));
let configs;
try {
  configs = opt.has('config') ? [configByName(opt.get('config')!)] : CONFIGS;
} catch (e) {
  console.error((e as Error).message.slice(0, 300));
  process.exit(2);
}
const stacks = stackOpt ? [stackOpt as MatrixStackName] : MATRIX_STACKS;
const seed = int('seed') ?? 1;
const sample = int('sample');

const t0 = performance.now();
const total = new Map<string, { runs: number; failing: number; cells: number; na: number }>();
const key = (s: string, k: FaultKind) => `${s}\u0000${k}`;
const failures: string[] = [];
let runs = 0;
let cells = 0;
const results: CellResult[] = [];
for (const cfg of configs) {
  for (const s of stacks) {
    if (!cellApplies(cfg, s)) {
      for (const k of FAULT_KINDS) {
        const e = total.get(key(s, k)) ?? { runs: 0, failing: 0, cells: 0, na: 0 };
        e.na++;
        total.set(key(s, k), e);
      }
      continue;
    }
    const r = matrixCell(cfg, s, { seed, ...(sample !== undefined ? { sample } : {}) });
    results.push(r);
    cells++;
    for (const k of FAULT_KINDS) {
      const e = total.get(key(s, k)) ?? { runs: 0, failing: 0, cells: 0, na: 0 };
      e.runs += r.runs[k] ?? 0;
      e.failing += r.failing[k] ?? 0;
      if ((r.runs[k] ?? 0) > 0) e.cells++;
      total.set(key(s, k), e);
      runs += r.runs[k] ?? 0;
    }
    runs++;
    failures.push(...r.failures);
  }
}
const secs = (performance.now() - t0) / 1000;
console.log(`fault matrix: ${configs.length} configs x ${stacks.length} stacks x ${FAULT_KINDS.length} fault kinds, seed ${seed}, ${sample === undefined ? 'every k' : `<= ${sample} k per kind`}`);
console.log(`cells: ${cells} (config x stack) driven; runs: ${runs} (clean + one per injected fault) in ${secs.toFixed(1)} s`);
console.log('');
console.log('runs (failing) per stack and fault kind; "-" = the workload never reaches that site on that stack');
const w = Math.max(...stacks.map((s) => s.length));
console.log(`${''.padEnd(w)} ${FAULT_KINDS.map((k) => k.padStart(Math.max(10, k.length))).join(' ')}`);
for (const s of stacks) {
  const cols = FAULT_KINDS.map((k) => {
    const e = total.get(key(s, k))!;
    const txt = e.runs === 0 ? '-' : e.failing === 0 ? `${e.runs}` : `${e.runs}(${e.failing})`;
    return txt.padStart(Math.max(10, k.length));
  });
  console.log(`${s.padEnd(w)} ${cols.join(' ')}`);
}
const na = [...total.entries()].filter(([, e]) => e.na > 0).map(([k, e]) => `${k.split('\u0000')[0]} (${e.na} configs)`);
if (na.length > 0) console.log(`\nnot applicable (VM_BIND stacks take TTBR0 configurations only): ${[...new Set(na)].join(', ')}`);
const failing = failures.length;
console.log(`\n${failing} failing runs`);
for (const f of failures.slice(0, verbose ? failures.length : 20)) console.log(f.split('\n').filter((l) => !/^\s+(before|after) +\[/.test(l)).map((l) => `  ${l.slice(0, 400)}`).join('\n'));
if (!verbose && failing > 20) console.log(`  ... ${failing - 20} more (--verbose prints all)`);
process.exit(failing > 0 ? 1 : 0);
