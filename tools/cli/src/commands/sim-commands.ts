/** `simulate`, `bench`, `compare` (the main job) and `report`. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { flag, intOpt, str, type OptionSpec, type Parsed } from '../command.js';
import type { Command } from '../command.js';
import { CliError, EXIT_FAIL, EXIT_OK, EXIT_USAGE, write, type Io } from '../io.js';
import { renderReport, type ReportData } from '../report/html.js';
import { comparisonTable, runMatrix, selectStacks, selectWorkloads, type MatrixResult } from '../sim/run.js';
import { STACKS } from '../sim/stacks.js';
import { WORKLOADS } from '../sim/workloads.js';
import { fmtInt, renderTable } from '../table.js';

/** The embedded default configuration of the main job. */
export const DEFAULT_SEED = 20240601;
export const DEFAULT_SCALE = 1;

const MATRIX_OPTIONS: Record<string, OptionSpec> = {
  workload: { type: 'string', arg: 'NAMES', help: `comma-separated workloads or 'all' (${WORKLOADS.map((w) => w.name).join(', ')})`, default: 'all' },
  stack: { type: 'string', arg: 'NAMES', help: `comma-separated stacks or 'all' (${STACKS.map((s) => s.name).join(', ')})`, default: 'all' },
  seed: { type: 'string', arg: 'N', help: 'workload seed', default: String(DEFAULT_SEED) },
  scale: { type: 'string', arg: 'X', help: 'multiply the amount of work', default: String(DEFAULT_SCALE) },
  trace: { type: 'string', arg: 'FILE', help: 'trace for the trace-replay workload (our .trace.jsonl or ftrace text)' },
};

function scaleOpt(p: Parsed): number {
  const v = str(p, 'scale');
  if (v === undefined) return DEFAULT_SCALE;
  const n = Number(v);
  if (!(n > 0 && n <= 100)) throw new CliError(`--scale: ${JSON.stringify(v)} is not a number in (0, 100]`, EXIT_USAGE);
  return n;
}

function traceOpt(p: Parsed, io: Io): string | undefined {
  const t = str(p, 'trace');
  if (t === undefined) return undefined;
  const abs = resolve(io.cwd, t);
  if (!existsSync(abs)) throw new CliError('cannot read: ENOENT', EXIT_USAGE, t);
  return abs;
}

function matrix(p: Parsed, io: Io, label: string): MatrixResult & { seed: number; scale: number; trace: string | undefined } {
  const seed = intOpt(p, 'seed', DEFAULT_SEED);
  const scale = scaleOpt(p);
  const trace = traceOpt(p, io);
  try {
    return { ...runMatrix(io, label, { workloads: selectWorkloads(str(p, 'workload')), stacks: selectStacks(str(p, 'stack')), seed, scale, ...(trace ? { traceFile: trace } : {}) }), seed, scale, trace };
  } catch (e) {
    // A bad trace file given with --trace: name it with the line.
    const err = e as { name?: string; line?: number; detail?: string; file?: string };
    if ((err.name === 'TraceError' || err.name === 'FtraceError') && err.line !== undefined) throw new CliError(err.detail ?? String(e), EXIT_USAGE, str(p, 'trace') ?? err.file, err.line);
    throw e;
  }
}

function skippedNote(m: MatrixResult): string {
  return m.skipped.map((s) => `skipped stack ${s.stack}: ${s.reason}\n`).join('');
}

function leakCheck(m: MatrixResult): string[] {
  return m.results.filter((r) => r.leakedPages !== 0).map((r) => `${r.workload} x ${r.stack}: ${r.leakedPages} pages still held after teardown`);
}

export const simulateCommand: Command = {
  name: 'simulate',
  summary: 'run a workload through a plugin stack and print its costs',
  usage: ['[--workload NAMES] [--stack NAMES] [--seed N] [--scale X] [--trace FILE]'],
  description: `Workloads:\n${WORKLOADS.map((w) => `  ${w.name.padEnd(15)}${w.description}`).join('\n')}\nStacks:\n${STACKS.map((s) => `  ${s.name.padEnd(17)}${s.description}`).join('\n')}`,
  options: MATRIX_OPTIONS,
  async run(p, io) {
    const m = matrix(p, io, 'simulate');
    const leaks = leakCheck(m);
    if (flag(p, 'json')) await write(io.stdout, JSON.stringify({ command: 'simulate', seed: m.seed, scale: m.scale, results: m.results, skipped: m.skipped }) + '\n');
    else await write(io.stdout, comparisonTable(m.results));
    io.stderr.write(skippedNote(m));
    for (const l of leaks) io.stderr.write(`leak: ${l}\n`);
    return leaks.length ? EXIT_FAIL : EXIT_OK;
  },
};

export const benchCommand: Command = {
  name: 'bench',
  summary: 'time workloads through stacks (best and median ns per op over repetitions)',
  usage: ['[--workload NAMES] [--stack NAMES] [--reps N] [--seed N] [--scale X]'],
  options: { ...MATRIX_OPTIONS, reps: { type: 'string', arg: 'N', help: 'repetitions per pair', default: '5' } },
  async run(p, io) {
    const reps = intOpt(p, 'reps', 5);
    if (reps < 1 || reps > 100) throw new CliError('--reps must be in 1..100', EXIT_USAGE);
    const runs: MatrixResult[] = [];
    for (let i = 0; i < reps; i++) runs.push(matrix(p, io, `bench ${i + 1}/${reps}`));
    const first = runs[0]!;
    const rows = first.results.map((r, i) => {
      const ns = runs.map((m) => m.results[i]!.nsPerOp).sort((a, b) => a - b);
      return { workload: r.workload, stack: r.stack, rangeOps: r.rangeOps, pgtableCalls: r.pgtableCalls, bestNsPerOp: ns[0]!, medianNsPerOp: ns[Math.floor(ns.length / 2)]! };
    });
    if (flag(p, 'json')) {
      await write(io.stdout, JSON.stringify({ command: 'bench', reps, node: process.version, results: rows, skipped: first.skipped }) + '\n');
    } else {
      await write(
        io.stdout,
        renderTable(
          ['workload', 'stack', 'range ops', 'pgtable calls', 'best ns/op', 'median ns/op'],
          rows.map((r) => [r.workload, r.stack, fmtInt(r.rangeOps), fmtInt(r.pgtableCalls), fmtInt(r.bestNsPerOp), fmtInt(r.medianNsPerOp)]),
          [false, false, true, true, true, true],
        ),
      );
    }
    io.stderr.write(skippedNote(first));
    return EXIT_OK;
  },
};

/** The repository root (the package.json with workspaces) above `from`, else `from`. */
export function findRepoRoot(from: string): string {
  let d = resolve(from);
  for (;;) {
    const pj = join(d, 'package.json');
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).workspaces) return d;
      } catch {
        /* not ours; keep looking */
      }
    }
    const up = dirname(d);
    if (up === d) return resolve(from);
    d = up;
  }
}

function writeReport(dir: string, data: ReportData): { html: string; json: string } {
  mkdirSync(dir, { recursive: true });
  const html = join(dir, 'index.html');
  const json = join(dir, 'data.json');
  writeFileSync(json, JSON.stringify(data, null, 1) + '\n');
  writeFileSync(html, renderReport(data));
  return { html, json };
}

export const compareCommand: Command = {
  name: 'compare',
  summary: 'the main job: every workload through every stack, one table, an HTML report',
  usage: ['[--out-dir DIR] [--seed N] [--scale X] [--workload NAMES] [--stack NAMES]'],
  description: 'Prints the comparison table and writes DIR/index.html (self-contained, inline SVG) and DIR/data.json.\nDIR defaults to report/ at the repository root.',
  options: { ...MATRIX_OPTIONS, 'out-dir': { type: 'string', arg: 'DIR', help: 'where to write index.html and data.json (default <repo>/report)' } },
  async run(p, io) {
    const t0 = performance.now();
    const m = matrix(p, io, 'compare');
    const outDir = str(p, 'out-dir') !== undefined ? resolve(io.cwd, str(p, 'out-dir')!) : join(findRepoRoot(io.cwd), 'report');
    const data: ReportData = {
      tool: 'io-pgtable compare',
      version: '0.1.0',
      config: { seed: m.seed, scale: m.scale, trace: m.trace ?? null },
      machine: `node ${process.version} ${process.platform}/${process.arch}`,
      results: m.results,
      skipped: m.skipped,
      workloads: m.workloads,
      stacks: m.stacks,
    };
    const files = writeReport(outDir, data);
    const leaks = leakCheck(m);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    if (flag(p, 'json')) {
      await write(io.stdout, JSON.stringify({ command: 'compare', report: files.html, data: files.json, seconds: Number(secs), results: m.results, skipped: m.skipped }) + '\n');
    } else {
      await write(io.stdout, comparisonTable(m.results) + `\nreport: ${files.html}\ndata:   ${files.json}\n(${m.results.length} runs in ${secs} s)\n`);
    }
    io.stderr.write(skippedNote(m));
    for (const l of leaks) io.stderr.write(`leak: ${l}\n`);
    return leaks.length ? EXIT_FAIL : EXIT_OK;
  },
};

/**
 * Line of the first JSON syntax error. Node 20 does not always give a position, so find
 * the shortest prefix that fails for a reason other than ending early (binary search).
 */
export function jsonErrorLine(text: string): number {
  const failsEarly = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return false;
    } catch (e) {
      const msg = (e as Error).message;
      if (/end of JSON input|Unterminated/i.test(msg)) return false;
      // "Expected ':' ... at position n": the prefix just stopped after a key.
      const pos = /at position (\d+)/.exec(msg);
      return !(pos && Number(pos[1]) >= n);
    }
  };
  let lo = 0;
  let hi = text.length;
  if (!failsEarly(hi)) return text.slice(0, hi).split('\n').length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (failsEarly(mid)) hi = mid;
    else lo = mid + 1;
  }
  return text.slice(0, lo).split('\n').length;
}

export const reportCommand: Command = {
  name: 'report',
  summary: 'render the HTML report from a data.json written by compare',
  usage: ['[--in report/data.json] [--out report/index.html]'],
  options: {
    in: { type: 'string', arg: 'FILE', help: 'data written by compare (default <repo>/report/data.json)' },
    out: { type: 'string', arg: 'FILE', help: 'HTML to write (default: index.html beside the data)' },
  },
  async run(p, io) {
    const input = str(p, 'in') ?? join(findRepoRoot(io.cwd), 'report', 'data.json');
    let text: string;
    try {
      text = readFileSync(resolve(io.cwd, input), 'utf8');
    } catch (e) {
      throw new CliError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (run 'io-pgtable compare' first)`, EXIT_USAGE, input);
    }
    let data: ReportData;
    try {
      data = JSON.parse(text) as ReportData;
    } catch (e) {
      throw new CliError(`not valid JSON (${(e as Error).message.split('\n')[0]})`, EXIT_USAGE, input, jsonErrorLine(text));
    }
    for (const k of ['results', 'workloads', 'stacks', 'skipped', 'config'] as const) {
      if (data === null || typeof data !== 'object' || !(k in data)) throw new CliError(`not a compare data file: missing ${JSON.stringify(k)}`, EXIT_USAGE, input, 1);
    }
    const out = resolve(io.cwd, str(p, 'out') ?? join(dirname(resolve(io.cwd, input)), 'index.html'));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, renderReport(data));
    if (flag(p, 'json')) await write(io.stdout, JSON.stringify({ command: 'report', input, output: out, results: data.results.length }) + '\n');
    else await write(io.stdout, `wrote ${out} (${data.results.length} runs)\n`);
    return EXIT_OK;
  },
};
