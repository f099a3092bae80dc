/** `simulate` and `bench`: chosen workloads through chosen stacks, as a table or JSON. */
import { flag, type Command } from '../command.js';
import { EXIT_FAIL, EXIT_OK, EXIT_USAGE, write, type Io } from '../io.js';
import { comparisonTable, runMatrix, spreadPct, type MatrixResult } from '../sim/run.js';
import { STACKS } from '../sim/stacks.js';
import { WORKLOADS } from '../sim/workloads.js';
import { fmtInt, renderTable } from '../table.js';
import { matrixOptions, parseMatrix } from './matrix-args.js';

/**
 * After the output: one line per capture that was left out, and the summary of what
 * happened to each; exit 2 when any failed (bad input), else `status`.
 */
export function reportFailedTraces(m: MatrixResult, io: Io, command: string, status: number): number {
  const failed = m.failed ?? [];
  if (failed.length === 0) return status;
  for (const f of failed) io.stderr.write(`io-pgtable ${command}: ${f.error} (left out)\n`);
  const ran = m.workloads.length;
  io.stderr.write(`io-pgtable ${command}: captures: ${ran} ran, ${failed.length} failed (${failed.map((f) => f.file).join(', ')})\n`);
  return EXIT_USAGE;
}

/** Pairs that left pages behind after teardown: a failed check (exit 1). */
export function leakCheck(m: MatrixResult): string[] {
  return m.results.filter((r) => r.leakedPages !== 0).map((r) => `${r.workload} x ${r.stack}: ${r.leakedPages} pages still held after teardown`);
}

const registry = `Workloads:\n${WORKLOADS.map((w) => `  ${w.name.padEnd(15)}${w.description}${w.needs.length ? ` [needs ${w.needs.join(', ')}]` : ''}`).join('\n')}\nStacks:\n${STACKS.map((s) => `  ${s.name.padEnd(17)}${s.description}`).join('\n')}`;

export const simulateCommand: Command = {
  name: 'simulate',
  summary: 'run workloads through plugin stacks and print their costs',
  usage: ['[--workload NAMES] [--stack NAMES] [--trace FILE]... [--seed N] [--scale X] [--jobs N]'],
  description: `${registry}

Examples:
  io-pgtable simulate --workload vulkan-sparse --stack system,pool,batched
  io-pgtable simulate --trace CAPTURE.txt --stack reserve-merged,secure-pooled
  io-pgtable simulate --workload random-churn --stack +PLUGIN-PACKAGE --json`,
  options: matrixOptions(1),
  async run(p, io) {
    const o = await parseMatrix(p, io, 1);
    const m = await runMatrix(io, 'simulate', o);
    const leaks = leakCheck(m);
    if (flag(p, 'json')) await write(io.stdout, JSON.stringify({ command: 'simulate', seed: o.seed, scale: o.scale, reps: o.reps, results: m.results }) + '\n');
    else await write(io.stdout, comparisonTable(m.results));
    for (const l of leaks) io.stderr.write(`leak: ${l}\n`);
    return reportFailedTraces(m, io, 'simulate', leaks.length ? EXIT_FAIL : EXIT_OK);
  },
};

export const benchCommand: Command = {
  name: 'bench',
  summary: 'time workloads through stacks (median, fastest and slowest ns per op over repetitions)',
  usage: ['[--workload NAMES] [--stack NAMES] [--reps N] [--seed N] [--scale X] [--jobs N]'],
  description: `Runs each workload x stack --reps times (with --jobs workers; timings from parallel runs share the cores).

Examples:
  io-pgtable bench --workload large-buffers --stack pool,pool+batched --reps 9 --jobs 1
  io-pgtable bench --json --workload random-churn --stack system`,
  options: matrixOptions(5),
  async run(p, io) {
    const o = await parseMatrix(p, io, 5);
    const m = await runMatrix(io, 'bench', o);
    const rows = m.results.map((r) => ({ workload: r.workload, stack: r.stack, rangeOps: r.rangeOps, pgtableCalls: r.pgtableCalls, bestNsPerOp: r.nsPerOpMin, medianNsPerOp: r.nsPerOp, worstNsPerOp: r.nsPerOpMax }));
    if (flag(p, 'json')) {
      await write(io.stdout, JSON.stringify({ command: 'bench', reps: o.reps, jobs: o.jobs, node: process.version, results: rows }) + '\n');
    } else {
      await write(
        io.stdout,
        renderTable(
          ['workload', 'stack', 'range ops', 'pgtable calls', 'best ns/op', 'median ns/op', 'worst ns/op', 'spread'],
          m.results.map((r, i) => [r.workload, r.stack, fmtInt(r.rangeOps), fmtInt(r.pgtableCalls), fmtInt(rows[i]!.bestNsPerOp), fmtInt(r.nsPerOp), fmtInt(r.nsPerOpMax), spreadPct(r)]),
          [false, false, true, true, true, true, true, true],
        ) + `(${o.reps} runs each, ${o.jobs} worker${o.jobs > 1 ? 's' : ''}, node ${process.version})\n`,
      );
    }
    return reportFailedTraces(m, io, 'bench', EXIT_OK);
  },
};
