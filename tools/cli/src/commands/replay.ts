/**
 * `io-pgtable replay`: run reference traces (packages/vectors/FORMAT.md) through the core
 * in kernel mode, exactly as the kernel oracle did, and write or check the result lines.
 * Traces stream (line in, line out), and each trace of a run is independent: one that
 * fails (bad input, an unreadable file, an internal error) gets its own error line and
 * the others still run; a summary line says what happened to each.
 */
import { closeSync, constants as fsc, fstatSync, openSync, readSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { TraceError, compareResults, replayStream } from '@io-pgtable/core';
import { flag, str, type Command } from '../command.js';
import { CliError, EXIT_FAIL, EXIT_OK, EXIT_USAGE, Progress, checkedChunks, makeDirs, openInput, paint, useColor, toCliError, write, type Io } from '../io.js';

const TRACE_SUFFIX = '.trace.jsonl';
/** Output held back before streaming to stdout, so a short trace with a bad line prints only the bad-trace line. */
const HOLD_CHARS = 1 << 20;

/** `dir/NAME.trace.jsonl` -> NAME (any other `.jsonl` loses only that suffix). */
export function traceName(file: string): string {
  const b = basename(file);
  if (b.endsWith(TRACE_SUFFIX)) return b.slice(0, -TRACE_SUFFIX.length);
  return b.endsWith('.jsonl') ? b.slice(0, -'.jsonl'.length) : b;
}

function code(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? (e as Error).message;
}

/** One trace argument: a file to replay, or why it cannot be (the run goes on without it). */
export interface TraceArg {
  file: string;
  error?: string;
}

/**
 * Files as given; a directory stands for its `*.trace.jsonl` files in name order. An
 * argument that cannot be read (or a directory without traces) becomes an entry with its
 * error, so a run over many traces goes on without it.
 */
export function resolveTraceArgs(args: string[], cwd: string): TraceArg[] {
  const out: TraceArg[] = [];
  for (const a of args) {
    let st;
    try {
      st = statSync(resolve(cwd, a));
    } catch (e) {
      out.push({ file: a, error: `cannot read: ${code(e)}` });
      continue;
    }
    if (!st.isDirectory()) {
      out.push({ file: a });
      continue;
    }
    let traces: string[];
    try {
      traces = readdirSync(resolve(cwd, a)).filter((f) => f.endsWith(TRACE_SUFFIX)).sort();
    } catch (e) {
      out.push({ file: a, error: `cannot read the directory: ${code(e)}` });
      continue;
    }
    if (traces.length === 0) out.push({ file: a, error: `directory holds no *${TRACE_SUFFIX} files` });
    for (const t of traces) out.push({ file: join(a, t) });
  }
  return out;
}

/** {@link resolveTraceArgs} as plain paths; the first unreadable argument is a usage error. */
export function expandTraceArgs(args: string[], cwd: string): string[] {
  return resolveTraceArgs(args, cwd).map((t) => {
    if (t.error !== undefined) throw new CliError(t.error, EXIT_USAGE, t.file);
    return t.file;
  });
}

/** The one-line result the oracle format prescribes for a malformed trace. */
export function badTraceLine(e: TraceError): string {
  return JSON.stringify({ error: `bad-trace: ${e.message}` });
}

/** `FILE:LINE: bad-trace: detail`, the stderr line for a malformed trace. */
function badTraceMessage(e: TraceError): string {
  return `${e.file ?? '<stdin>'}:${e.line}: bad-trace: ${e.detail}`;
}

/** Path of the first difference between two JSON values, e.g. `events[2][1]`; '' if the roots differ. */
export function firstDifference(a: unknown, b: unknown, path = ''): string | null {
  if (a === b) return null;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return path;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d !== null) return d;
    }
    return null;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  for (const k of new Set([...Object.keys(ao), ...Object.keys(bo)])) {
    const d = firstDifference(ao[k], bo[k], path ? `${path}.${k}` : k);
    if (d !== null) return d;
  }
  return null;
}

function valueAt(v: unknown, path: string): string {
  let cur: unknown = v;
  for (const m of path.matchAll(/\[(\d+)\]|\.?([^.[\]]+)/g)) {
    if (cur === null || typeof cur !== 'object') return 'undefined';
    cur = m[1] !== undefined ? (cur as unknown[])[Number(m[1])] : (cur as Record<string, unknown>)[m[2]!];
  }
  return cur === undefined ? '<absent>' : JSON.stringify(cur);
}

function clip(s: string, max = 600): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length - max} more characters)`;
}

/** Reads a file's non-blank lines one at a time with a fixed buffer (expected outputs can be large). */
class LineFile {
  private readonly fd: number;
  private readonly buf = Buffer.alloc(1 << 16);
  private readonly decoder = new TextDecoder();
  private text = '';
  private eof = false;

  constructor(path: string) {
    // Non-blocking open, then only a regular file: a FIFO beside the trace must not hang --check.
    this.fd = openSync(path, fsc.O_RDONLY | fsc.O_NONBLOCK);
    if (!fstatSync(this.fd).isFile()) {
      closeSync(this.fd);
      throw Object.assign(new Error('not a regular file'), { code: 'not a regular file' });
    }
  }

  next(): string | null {
    for (;;) {
      const nl = this.text.indexOf('\n');
      if (nl >= 0) {
        const line = this.text.slice(0, nl);
        this.text = this.text.slice(nl + 1);
        if (line.trim() !== '') return line;
        continue;
      }
      if (this.eof) {
        const line = this.text;
        this.text = '';
        return line.trim() !== '' ? line : null;
      }
      const n = readSync(this.fd, this.buf, 0, this.buf.length, null);
      if (n === 0) {
        this.eof = true;
        this.text += this.decoder.decode();
      } else this.text += this.decoder.decode(this.buf.subarray(0, n), { stream: true });
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

interface Diff {
  line: number;
  path: string;
  expected: string;
  actual: string;
  expectedValue: string;
  actualValue: string;
}

function describeDiff(line: number, expected: string, actual: string): Diff {
  const missing = expected === '<missing>' || actual === '<missing>';
  const path = missing ? '' : (firstDifference(JSON.parse(expected), JSON.parse(actual)) ?? '');
  return {
    line,
    path,
    expected: clip(expected, 4000),
    actual: clip(actual, 4000),
    expectedValue: missing ? expected : valueAt(JSON.parse(expected), path),
    actualValue: missing ? actual : valueAt(JSON.parse(actual), path),
  };
}

/** Compares result lines, as they are produced, with the expected file; keeps the first difference. */
class Checker {
  private pending = '';
  private n = 0;
  diff: Diff | null = null;

  constructor(private readonly expected: LineFile) {}

  feed(chunk: string): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf('\n', start);
      if (nl < 0) break;
      const line = this.pending + chunk.slice(start, nl);
      this.pending = '';
      start = nl + 1;
      this.compare(line);
    }
    this.pending += chunk.slice(start);
  }

  end(): void {
    if (this.diff === null) {
      const extra = this.expected.next();
      if (extra !== null) this.diff = describeDiff(this.n + 1, extra, '<missing>');
    }
  }

  private compare(actual: string): void {
    this.n++;
    if (this.diff !== null) return;
    const expected = this.expected.next();
    if (expected === null) this.diff = describeDiff(this.n, '<missing>', actual);
    else if (expected !== actual && compareResults([actual], [expected]) !== null) this.diff = describeDiff(this.n, expected, actual);
  }
}

type Status = 'ok' | 'written' | 'mismatch' | 'bad-trace' | 'unreadable' | 'no-expected' | 'internal-error' | 'write-failed';
/** Failures caused by the input (exit 2); the others are exit 1. */
const INPUT_FAILURES: ReadonlySet<Status> = new Set(['bad-trace', 'unreadable', 'no-expected']);
const FAILURES: ReadonlySet<Status> = new Set([...INPUT_FAILURES, 'internal-error', 'write-failed']);

interface FileResult {
  file: string;
  name: string;
  status: Status;
  lines?: number;
  output?: string;
  diff?: Diff;
  error?: string;
  errorLine?: number;
}

/** An input read error (the file, not the trace, is the problem). */
class ReadError extends Error {}

/**
 * A trace's bytes, checked as text on the way to the parser (io.ts: a FIFO without a writer
 * is empty, not a hang). A file-system error is a {@link ReadError}; bytes that are not
 * text are a TraceError at their line, the format's answer to any malformed trace.
 */
async function* readChunks(input: string | AsyncIterable<Buffer | string>, file: string): AsyncGenerator<Buffer> {
  try {
    yield* checkedChunks(typeof input === 'string' ? openInput(input, file) : input, file);
  } catch (e) {
    if (e instanceof CliError && e.line !== undefined) throw new TraceError(e.line, e.message, file);
    throw new ReadError(e instanceof CliError ? e.message : `cannot read: ${code(e)}`);
  }
}

/** Make DIR (and parents), or a usage error saying why it cannot hold the results. */
function prepareOutDir(dir: string, cwd: string): void {
  const abs = resolve(cwd, dir);
  try {
    makeDirs(abs);
  } catch (e) {
    const c = code(e);
    throw new CliError(`--out-dir ${dir}: cannot create directory: ${c}${c === 'EEXIST' || c === 'ENOTDIR' ? ' (a file is in the way: not a directory)' : ''}`, EXIT_USAGE);
  }
  if (!statSync(abs).isDirectory()) throw new CliError(`--out-dir ${dir}: not a directory`, EXIT_USAGE);
  const probe = join(abs, `.io-pgtable-probe-${process.pid}`);
  try {
    writeFileSync(probe, '');
    rmSync(probe, { force: true });
  } catch (e) {
    throw new CliError(`--out-dir ${dir}: cannot write there (${code(e)})`, EXIT_USAGE);
  }
}

/** Replay one trace into the wanted sinks; never throws (everything becomes the result's status). */
async function replayOne(arg: TraceArg, io: Io, outDir: string | undefined, check: boolean): Promise<FileResult> {
  const { file } = arg;
  const name = traceName(file);
  const r: FileResult = { file, name, status: check ? 'ok' : 'written' };
  if (arg.error !== undefined) return { ...r, status: 'unreadable', error: `${file}: ${arg.error}` };
  const dest = outDir !== undefined ? join(outDir, `${name}.result.jsonl`) : undefined;
  const destAbs = dest !== undefined ? resolve(io.cwd, dest) : undefined;
  const tmpAbs = destAbs !== undefined ? join(dirname(destAbs), `.${name}.result.jsonl.${process.pid}.tmp`) : undefined;
  let fd: number | null = null;
  let expected: LineFile | null = null;
  let checker: Checker | null = null;
  let lines = 0;
  try {
    if (check) {
      const expFile = join(dirname(file), `${name}.expected.jsonl`);
      try {
        expected = new LineFile(resolve(io.cwd, expFile));
        checker = new Checker(expected);
      } catch (e) {
        r.status = 'no-expected';
        r.error = `${expFile}: cannot read the expected output (${code(e)})`;
      }
    }
    if (tmpAbs !== undefined) fd = openSync(tmpAbs, 'w');
    for await (const chunk of replayStream(readChunks(resolve(io.cwd, file), file), { file })) {
      if (fd !== null) writeSync(fd, chunk);
      checker?.feed(chunk);
      for (let i = chunk.indexOf('\n'); i >= 0; i = chunk.indexOf('\n', i + 1)) lines++;
    }
    r.lines = lines;
    if (fd !== null) {
      closeSync(fd);
      fd = null;
      renameSync(tmpAbs!, destAbs!);
      r.output = dest;
    }
    if (checker !== null) {
      checker.end();
      if (checker.diff !== null) {
        r.status = 'mismatch';
        r.diff = checker.diff;
      }
    }
    return r;
  } catch (e) {
    if (e instanceof TraceError) {
      // The format's answer to a malformed trace is its one bad-trace line, nothing else.
      if (destAbs !== undefined) {
        try {
          writeFileSync(destAbs, badTraceLine(e) + '\n');
          r.output = dest;
        } catch {
          // the bad-trace line on stderr below is the answer then
        }
      }
      return { ...r, status: 'bad-trace', lines: 1, error: badTraceMessage(e), errorLine: e.line };
    }
    if (e instanceof ReadError) return { ...r, status: 'unreadable', error: `${file}: ${e.message}` };
    // No partial or stale result may claim success.
    if (destAbs !== undefined) rmSync(destAbs, { force: true });
    const writing = fd !== null && (e as NodeJS.ErrnoException).syscall !== undefined;
    return { ...r, status: writing ? 'write-failed' : 'internal-error', error: `${file}: ${writing ? `cannot write ${dest}: ${code(e)}` : `internal error: ${(e as Error).message ?? String(e)}`}` };
  } finally {
    if (fd !== null) closeSync(fd);
    if (tmpAbs !== undefined) rmSync(tmpAbs, { force: true });
    expected?.close();
  }
}

/** One trace from stdin or a file to stdout, streaming once the output passes {@link HOLD_CHARS}. */
async function replayToStdout(input: AsyncIterable<Buffer | string>, file: string, io: Io): Promise<number> {
  let held: string[] | null = [];
  let heldChars = 0;
  let atLineStart = true;
  try {
    for await (const chunk of replayStream(input, { file })) {
      if (held !== null) {
        held.push(chunk);
        heldChars += chunk.length;
        if (heldChars < HOLD_CHARS) continue;
        const text = held.join('');
        held = null;
        await write(io.stdout, text);
        atLineStart = text.endsWith('\n');
      } else {
        await write(io.stdout, chunk);
        atLineStart = chunk.endsWith('\n');
      }
    }
    if (held !== null) await write(io.stdout, held.join(''));
    return EXIT_OK;
  } catch (e) {
    if (!(e instanceof TraceError)) {
      const err = e instanceof ReadError ? new CliError(e.message, EXIT_USAGE, file) : e;
      // Streamed output cannot be taken back: end it with an error line (never a "final"
      // line), so what was written cannot pass for a whole result.
      if (held === null) await write(io.stdout, (atLineStart ? '' : '\n') + JSON.stringify({ error: `replay failed: ${toCliError(err).located()}` }) + '\n');
      throw err;
    }
    // Output already streamed stays, but ends with the bad-trace line and no final line.
    await write(io.stdout, (atLineStart ? '' : '\n') + badTraceLine(e) + '\n');
    io.stderr.write(badTraceMessage(e) + '\n');
    return EXIT_USAGE;
  }
}

export const replayCommand: Command = {
  name: 'replay',
  summary: 'replay kernel reference traces and write or check the result lines',
  usage: ['< NAME.trace.jsonl', 'FILE', '--out-dir DIR FILE|DIR...', '--check FILE|DIR...'],
  description: `Each trace runs exactly as the kernel oracle ran it (kernel mode, bump allocator, every
TLB/DMA call an event); output follows packages/vectors/FORMAT.md. A directory argument
stands for its *.trace.jsonl files. --check compares with NAME.expected.jsonl beside each
trace (line by line, as parsed JSON) and prints the first differing line.

Traces stream: a line is read, run and written before the next, so memory does not grow
with the trace length (stdin or FILE alike). Output size is the format's: with
"dumpEvery":true (the default) every line carries a dump of every live table, so the
output grows quadratically with the trace (n ops over n tables give ~n^2/2 dumped
tables); it still streams, one table at a time. Use "dumpEvery":false for long traces.

Each trace of a run is independent: one that fails gets its own error line on stderr
(FILE:LINE for a malformed trace), the others still run, and a summary line says how many
were written, matched, differed and failed. A malformed trace's result is its one line
{"error":"bad-trace: FILE:LINE: ..."}; on stdout, output of a long trace already
streamed stays but ends with that line and has no "final" line.
Exit status: 0 all good; 1 a check differed or a trace hit an internal error; 2 bad
input (a malformed trace, an unreadable file, a missing expected file, a bad option).

Examples:
  io-pgtable replay < packages/vectors/public/000_sanity_4k_48_48.trace.jsonl
  io-pgtable replay --check packages/vectors/public
  io-pgtable replay --out-dir out packages/vectors/public/*.trace.jsonl`,
  options: {
    'out-dir': { type: 'string', short: 'o', arg: 'DIR', help: 'write DIR/<name>.result.jsonl for each <name>.trace.jsonl (DIR is created)' },
    check: { type: 'boolean', help: 'compare with <name>.expected.jsonl beside each trace' },
  },
  async run(args, io) {
    const json = flag(args, 'json');
    const check = flag(args, 'check');
    const outDir = str(args, 'out-dir');
    const c = paint(useColor(io));

    if (args.positionals.length === 0) {
      if (check || outDir !== undefined) throw new CliError('--check and --out-dir need trace files (stdin takes one trace)', EXIT_USAGE);
      if (io.stdin === process.stdin && process.stdin.isTTY) throw new CliError('reading a trace from the terminal: pipe one in, or pass FILE (see --help)', EXIT_USAGE);
      return replayToStdout(readChunks(io.stdin as AsyncIterable<Buffer>, '<stdin>'), '<stdin>', io);
    }
    const traces = resolveTraceArgs(args.positionals, io.cwd);
    if (!check && outDir === undefined) {
      if (traces.length !== 1) throw new CliError('several traces need --out-dir DIR or --check', EXIT_USAGE);
      const t = traces[0]!;
      if (t.error !== undefined) throw new CliError(t.error, EXIT_USAGE, t.file);
      return replayToStdout(readChunks(resolve(io.cwd, t.file), t.file), t.file, io);
    }
    if (outDir !== undefined) prepareOutDir(outDir, io.cwd);

    const results: FileResult[] = [];
    const progress = new Progress(io, 'replay', traces.length);
    for (const t of traces) {
      const r = await replayOne(t, io, outDir, check);
      results.push(r);
      progress.tick(r.name);
      if (r.error !== undefined) io.stderr.write(`${r.error}\n`);
      if (!json) await write(io.stdout, describeResult(r, c));
    }
    progress.end();
    const n = (s: Status) => results.filter((r) => r.status === s).length;
    const failed = results.filter((r) => FAILURES.has(r.status)).length;
    const counts = {
      written: results.filter((r) => r.output !== undefined && !FAILURES.has(r.status)).length,
      matched: n('ok'),
      differed: n('mismatch'),
      failed,
    };
    const passed = results.length - failed - counts.differed;
    if (json) {
      await write(io.stdout, JSON.stringify({ command: 'replay', check, outDir: outDir ?? null, traces: results.length, ...counts, passed, failed: failed + counts.differed, files: results }) + '\n');
    } else {
      if (check) {
        const bad = failed + counts.differed;
        await write(io.stdout, `${bad === 0 ? c.green(`${passed} passed, 0 failed`) : c.red(`${passed} passed, ${bad} failed`)}\n`);
      }
      const summary = `replay: ${results.length} traces: ${counts.written} written, ${counts.matched} matched, ${counts.differed} differed, ${counts.failed} failed`;
      await write(io.stdout, `${failed + counts.differed === 0 ? summary : c.red(summary)}\n`);
    }
    if (results.some((r) => INPUT_FAILURES.has(r.status))) return EXIT_USAGE;
    return failed + counts.differed > 0 ? EXIT_FAIL : EXIT_OK;
  },
};

function describeResult(r: FileResult, c: ReturnType<typeof paint>): string {
  switch (r.status) {
    case 'ok':
      return `${c.green('ok')}   ${r.name} (${r.lines} lines)${r.output ? ` -> ${r.output}` : ''}\n`;
    case 'written':
      return `wrote ${r.output} (${r.lines} lines)\n`;
    case 'bad-trace':
      return `${c.red('BAD')}  ${r.name}: ${r.error}${r.output ? ` (bad-trace line in ${r.output})` : ''}\n`;
    case 'mismatch': {
      const d = r.diff!;
      return (
        `${c.red('FAIL')} ${r.name}: first difference at line ${d.line}${d.path ? ` (${d.path}: expected ${clip(d.expectedValue, 200)}, got ${clip(d.actualValue, 200)})` : ''}${r.output ? ` -> ${r.output}` : ''}\n` +
        `  expected: ${clip(d.expected)}\n  actual:   ${clip(d.actual)}\n`
      );
    }
    default:
      return `${c.red('FAIL')} ${r.name}: ${r.error}\n`;
  }
}
