/**
 * The exhaustive fault matrix: `npm run fault-matrix -- [--config NAME] [--stack NAME]
 * [--regime sync|deferred|both] [--seed S] [--sample N] [--verbose]`. Every configuration
 * (default all) x every stack x both flush regimes x every fault kind x every call index k
 * the seeded workload reaches (or N of them per kind with --sample). Prints what it covered
 * (runs per stack and fault kind, and the runs that broke a rule), how many failing runs
 * each reported finding (src/findings.ts) accounts for, every other failure, and exits 1
 * when a run broke a rule that no reported finding explains.
 */
import { CONFIGS, configByName } from '../src/configs.js';
import { KNOWN_FINDINGS, knownFinding } from '../src/findings.js';
import { FAULT_KINDS, FLUSH_REGIMES, MATRIX_STACKS, cellApplies, matrixCell, type CellResult, type FaultKind, type FlushRegime, type MatrixStackName } from '../src/matrix.js';

const VALUED = ['config', 'stack', 'regime', 'seed', 'sample'];
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
const regimeOpt = opt.get('regime') ?? 'both';
if (regimeOpt !== 'both' && !(FLUSH_REGIMES as readonly string[]).includes(regimeOpt)) (console.error(`--regime must be sync, deferred or both`), process.exit(2));
const regimes: readonly FlushRegime[] = regimeOpt === 'both' ? FLUSH_REGIMES : [regimeOpt as FlushRegime];
const seed = int('seed') ?? 1;
const sample = int('sample');

const t0 = performance.now();
const total = new Map<string, { runs: number; failing: number; cells: number; na: number }>();
const key = (s: string, k: FaultKind) => `${s}\u0000${k}`;
const failures: string[] = [];
let runs = 0;
let cells = 0;
const results: CellResult[] = [];
const na = new Map<string, number>();
for (const cfg of configs) {
  for (const s of stacks) for (const regime of regimes) {
    for (const k of FAULT_KINDS) if (!total.has(key(s, k))) total.set(key(s, k), { runs: 0, failing: 0, cells: 0, na: 0 });
    if (!cellApplies(cfg, s, regime)) {
      na.set(`${s} ${regime}`, (na.get(`${s} ${regime}`) ?? 0) + 1);
      continue;
    }
    const r = matrixCell(cfg, s, { seed, regime, ...(sample !== undefined ? { sample } : {}) });
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
console.log(`fault matrix: ${configs.length} configs x ${stacks.length} stacks x ${regimes.join('+')} flush x ${FAULT_KINDS.length} fault kinds, seed ${seed}, ${sample === undefined ? 'every k' : `<= ${sample} k per kind`}`);
console.log(`cells: ${cells} (config x stack x flush regime) driven; runs: ${runs} (clean + one per injected fault) in ${secs.toFixed(1)} s`);
console.log('');
console.log('runs (failing) per stack and fault kind; "-" = the workload never reaches that site on that stack');
const w = Math.max(...stacks.map((s) => s.length));
console.log(`${''.padEnd(w)} ${FAULT_KINDS.map((k) => k.padStart(Math.max(10, k.length))).join(' ')}`);
for (const s of stacks) {
  const cols = FAULT_KINDS.map((k) => {
    const e = total.get(key(s, k)) ?? { runs: 0, failing: 0 };
    const txt = e.runs === 0 ? '-' : e.failing === 0 ? `${e.runs}` : `${e.runs}(${e.failing})`;
    return txt.padStart(Math.max(10, k.length));
  });
  console.log(`${s.padEnd(w)} ${cols.join(' ')}`);
}
if (na.size > 0) {
  console.log('\nnot driven (VM_BIND stacks: TTBR0 configurations and their own flushes only; deferred flush ops: stacks that reuse only after the flush):');
  console.log(`  ${[...na].map(([k, n]) => `${k} (${n} configs)`).join(', ')}`);
}
// Failing runs by the reported finding that explains them; the rest are new.
const byFinding = new Map<number, number>();
const unexplained: string[] = [];
for (const r of results) {
  for (const f of r.failures) {
    const kind = FAULT_KINDS.find((k) => f.includes(` ${k} #`));
    const known = kind === undefined ? undefined : knownFinding(r.stack, kind);
    if (known === undefined) unexplained.push(f);
    else byFinding.set(KNOWN_FINDINGS.indexOf(known), (byFinding.get(KNOWN_FINDINGS.indexOf(known)) ?? 0) + 1);
  }
}
console.log(`\n${failures.length} failing runs`);
KNOWN_FINDINGS.forEach((k, i) => console.log(`  ${String(byFinding.get(i) ?? 0).padStart(6)}  reported finding (${k.owner}), ${k.kind}: ${k.what}`));
console.log(`  ${String(unexplained.length).padStart(6)}  not explained by a reported finding`);
const show = verbose ? [...unexplained, ...failures.filter((f) => !unexplained.includes(f))] : unexplained;
for (const f of show.slice(0, verbose ? show.length : 20)) console.log(f.split('\n').filter((l) => !/^\s+(before|after) +\[/.test(l)).map((l) => `  ${l.slice(0, 400)}`).join('\n'));
if (!verbose && show.length > 20) console.log(`  ... ${show.length - 20} more (--verbose prints all)`);
if (!verbose && failures.length > unexplained.length) console.log('  (--verbose also prints the failures of the reported findings)');
process.exit(unexplained.length > 0 ? 1 : 0);
