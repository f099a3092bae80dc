/** `compare`, the main job: every workload through every stack, the answer, one table and an HTML report. */
import { join, resolve } from 'node:path';
import { flag, str, type Command } from '../command.js';
import { CliError, EXIT_FAIL, EXIT_OK, EXIT_USAGE, describeFsCode, makeDirs, write, writeFileAtomic } from '../io.js';
import { VERSION } from '../main.js';
import { DATA_FORMAT, withRecommendations, type ReportData } from '../report/data.js';
import { renderReport } from '../report/html.js';
import { GOALS, criteria, recommendationText } from '../sim/recommend.js';
import { comparisonTable, runMatrix } from '../sim/run.js';
import { findRepoRoot } from './repo-root.js';
import { matrixOptions, goalOpt, parseMatrix } from './matrix-args.js';
import { leakCheck, reportFailedTraces } from './sim-commands.js';

export const COMPARE_REPS = 5;

/** Write DIR/data.json and DIR/index.html; a failure names the directory, and nothing is half-written. */
export function writeReport(dir: string, data: ReportData): { html: string; json: string } {
  const html = join(dir, 'index.html');
  const json = join(dir, 'data.json');
  try {
    makeDirs(dir);
    const page = renderReport(data);
    // Each file whole or not at all (a full disk, a read-only directory).
    writeFileAtomic(json, JSON.stringify(data, null, 1) + '\n');
    writeFileAtomic(html, page);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`cannot write the report: ${code !== undefined ? describeFsCode(code) : (e as Error).message}`, EXIT_USAGE, dir);
  }
  return { html, json };
}

export function machine(): string {
  return `node ${process.version} ${process.platform}/${process.arch}`;
}

export const compareCommand: Command = {
  name: 'compare',
  summary: 'the main job: which allocator stack for each workload, one table, an HTML report',
  usage: ['[--trace FILE]... [--stack NAMES] [--goal GOAL] [--jobs N] [--shard I/N] [--out-dir DIR]'],
  description: `Runs every workload (or your captures, with --trace) through every stack, prints the
recommended stack per workload with its reason, runner-up and trade-off, the criteria, the
table, and writes DIR/index.html (one self-contained file) and DIR/data.json.
DIR defaults to report/ at the repository root. ns/op is the median of --reps runs.

Examples:
  io-pgtable compare
  io-pgtable compare --goal memory --jobs 2
  io-pgtable compare --trace CAPTURE.txt --trace OTHER.trace.jsonl --constraint async-vm-bind
  io-pgtable compare --stack +PLUGIN-PACKAGE,./ALLOC.wasm
  io-pgtable compare --shard 1/2 --out-dir shard1 && io-pgtable compare --shard 2/2 --out-dir shard2
  io-pgtable report --merge shard1/data.json shard2/data.json`,
  options: {
    ...matrixOptions(COMPARE_REPS),
    goal: { type: 'string', arg: 'GOAL', help: `what the recommendation weighs most (${GOALS.join(', ')})`, default: 'balanced' },
    'out-dir': { type: 'string', short: 'o', arg: 'DIR', help: 'where to write index.html and data.json (default <repo>/report)' },
  },
  async run(p, io) {
    const t0 = performance.now();
    const goal = goalOpt(p);
    const o = await parseMatrix(p, io, COMPARE_REPS);
    const outDir = str(p, 'out-dir') !== undefined ? resolve(io.cwd, str(p, 'out-dir')!) : join(findRepoRoot(io.cwd), 'report');
    const m = await runMatrix(io, 'compare', o);
    // The report holds what ran; captures that failed are reported on stderr.
    const { failed: _failed, ...ran } = m;
    const data = withRecommendations({
      format: DATA_FORMAT,
      tool: 'io-pgtable compare',
      version: VERSION,
      config: { seed: o.seed, scale: o.scale, traces: o.traces, goal, reps: o.reps },
      machine: machine(),
      jobs: o.jobs,
      ...ran,
      recommendations: null,
    });
    const files = writeReport(outDir, data);
    const leaks = leakCheck(m);
    const secs = Number(((performance.now() - t0) / 1000).toFixed(1));
    if (flag(p, 'json')) {
      await write(io.stdout, JSON.stringify({ command: 'compare', report: files.html, data: files.json, seconds: secs, jobs: o.jobs, shard: m.shard, failed: m.failed ?? [], recommendations: data.recommendations, results: m.results }) + '\n');
    } else {
      const head = data.recommendations
        ? `Recommended stack per workload (goal: ${goal}):\n${recommendationText(data.recommendations)}\nCriteria, in order:\n${criteria(goal).map((c) => `  ${c}`).join('\n')}\n\n`
        : `Shard ${m.shard!.index}/${m.shard!.count}: ${m.results.length} of ${data.workloads.length * data.stacks.length} runs; no recommendation until the shards are merged (io-pgtable report --merge DIR1/data.json DIR2/data.json ...).\n\n`;
      await write(io.stdout, head + comparisonTable(m.results) + `\nreport: ${files.html}\ndata:   ${files.json}\n(${m.results.length} runs x ${o.reps} reps in ${secs} s, ${o.jobs} worker${o.jobs > 1 ? 's' : ''})\n`);
    }
    for (const l of leaks) io.stderr.write(`leak: ${l}\n`);
    return reportFailedTraces(m, io, 'compare', leaks.length ? EXIT_FAIL : EXIT_OK);
  },
};

