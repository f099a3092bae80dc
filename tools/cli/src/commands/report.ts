/** `report`: render index.html from a data.json, or merge the data.json files of shards into one report. */
import { dirname, join, resolve } from 'node:path';
import { flag, str, type Command } from '../command.js';
import { CliError, EXIT_OK, EXIT_USAGE, describeFsCode, makeDirs, readTextFileSync, write, writeFileAtomic, type Io } from '../io.js';
import { mergeShards, validateData, withRecommendations, type ReportData } from '../report/data.js';
import { renderReport } from '../report/html.js';
import { GOALS, recommendationText } from '../sim/recommend.js';
import { goalOpt } from './matrix-args.js';
import { writeReport } from './compare.js';
import { findRepoRoot } from './repo-root.js';

/** data.json files are small; anything this large is not one (and is not read whole). */
const MAX_DATA_BYTES = 64 * 1024 * 1024;

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

/** Read, parse and schema-check one data.json. */
export function readData(file: string, io: Io): ReportData {
  const abs = resolve(io.cwd, file);
  let text: string;
  try {
    text = readTextFileSync(abs, file, MAX_DATA_BYTES, 'a compare data file');
  } catch (e) {
    if (!(e instanceof CliError) || !/^cannot read: ENOENT/.test(e.message)) throw e;
    throw new CliError(`${e.message} (run 'io-pgtable compare' first)`, EXIT_USAGE, file);
  }
  if (text.trim() === '') throw new CliError('empty file: not a compare data file', EXIT_USAGE, file);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new CliError(`not valid JSON (${(e as Error).message.split('\n')[0]!.slice(0, 200)})`, EXIT_USAGE, file, jsonErrorLine(text));
  }
  return validateData(v, file);
}

export const reportCommand: Command = {
  name: 'report',
  summary: 'render the HTML report from a data.json written by compare, or merge shards',
  usage: ['[--in report/data.json] [--out report/index.html] [--goal GOAL]', '--merge FILE... [--out-dir DIR] [--goal GOAL]'],
  description: `Recommendations are recomputed from the results (under --goal, default the run's goal).

Examples:
  io-pgtable report
  io-pgtable report --in report/data.json --out /tmp/report.html --goal memory
  io-pgtable report --merge shard1/data.json shard2/data.json --out-dir report`,
  options: {
    in: { type: 'string', arg: 'FILE', help: 'data written by compare (default <repo>/report/data.json)' },
    out: { type: 'string', arg: 'FILE', help: 'HTML to write (default: index.html beside the data)' },
    merge: { type: 'boolean', help: "combine the FILE arguments, data.json files of 'compare --shard I/N' runs, into one data.json and index.html" },
    'out-dir': { type: 'string', short: 'o', arg: 'DIR', help: 'with --merge: where to write (default <repo>/report)' },
    goal: { type: 'string', arg: 'GOAL', help: `re-weight the recommendation (${GOALS.join(', ')})` },
  },
  async run(p, io) {
    const goal = str(p, 'goal') !== undefined ? goalOpt(p) : undefined;
    if (flag(p, 'merge')) {
      if (p.positionals.length === 0) throw new CliError('--merge needs the shards\' data.json files as arguments', EXIT_USAGE);
      const merged = mergeShards(p.positionals.map((file) => ({ file, data: readData(file, io) })));
      const data = goal ? withRecommendations(merged, goal) : merged;
      const outDir = str(p, 'out-dir') !== undefined ? resolve(io.cwd, str(p, 'out-dir')!) : join(findRepoRoot(io.cwd), 'report');
      const files = writeReport(outDir, data);
      if (flag(p, 'json')) await write(io.stdout, JSON.stringify({ command: 'report', merged: p.positionals.length, report: files.html, data: files.json, results: data.results.length, recommendations: data.recommendations }) + '\n');
      else await write(io.stdout, `${recommendationText(data.recommendations!)}merged ${p.positionals.length} shards: ${data.results.length} runs\nreport: ${files.html}\ndata:   ${files.json}\n`);
      return EXIT_OK;
    }
    if (p.positionals.length) throw new CliError(`unexpected argument ${JSON.stringify(p.positionals[0]!.slice(0, 80))} (use --in FILE, or --merge FILE...)`, EXIT_USAGE);
    const input = str(p, 'in') ?? join(findRepoRoot(io.cwd), 'report', 'data.json');
    const read = readData(input, io);
    if (read.shard !== null) throw new CliError(`shard ${read.shard.index}/${read.shard.count} holds part of the results: merge the shards with report --merge`, EXIT_USAGE, input);
    const data = withRecommendations(read, goal);
    const out = resolve(io.cwd, str(p, 'out') ?? join(dirname(resolve(io.cwd, input)), 'index.html'));
    try {
      const page = renderReport(data);
      makeDirs(dirname(out));
      writeFileAtomic(out, page);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new CliError(`cannot write: ${code !== undefined ? describeFsCode(code) : (e as Error).message}`, EXIT_USAGE, str(p, 'out') ?? out);
    }
    if (flag(p, 'json')) await write(io.stdout, JSON.stringify({ command: 'report', input, output: out, results: data.results.length, recommendations: data.recommendations }) + '\n');
    else await write(io.stdout, `wrote ${out} (${data.results.length} runs)\n`);
    return EXIT_OK;
  },
};
