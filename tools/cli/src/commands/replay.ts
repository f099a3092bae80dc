/**
 * `io-pgtable replay`: run reference traces (packages/vectors/FORMAT.md) through the core
 * in kernel mode, exactly as the kernel oracle did, and write or check the result lines.
 */
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { TraceError, compareResults, replayTrace } from '@io-pgtable/core';
import { flag, str, type Command } from '../command.js';
import { CliError, EXIT_FAIL, EXIT_OK, EXIT_USAGE, Progress, paint, readAll, useColor, write, type Io } from '../io.js';

const TRACE_SUFFIX = '.trace.jsonl';

/** `dir/NAME.trace.jsonl` -> NAME (any other `.jsonl` loses only that suffix). */
export function traceName(file: string): string {
  const b = basename(file);
  if (b.endsWith(TRACE_SUFFIX)) return b.slice(0, -TRACE_SUFFIX.length);
  return b.endsWith('.jsonl') ? b.slice(0, -'.jsonl'.length) : b;
}

/** Files as given; a directory stands for its `*.trace.jsonl` files in name order. */
export function expandTraceArgs(args: string[], cwd: string): string[] {
  const out: string[] = [];
  for (const a of args) {
    const p = resolve(cwd, a);
    let st;
    try {
      st = statSync(p);
    } catch (e) {
      throw new CliError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT_USAGE, a);
    }
    if (st.isDirectory()) {
      const traces = readdirSync(p).filter((f) => f.endsWith(TRACE_SUFFIX)).sort();
      if (traces.length === 0) throw new CliError(`directory holds no *${TRACE_SUFFIX} files`, EXIT_USAGE, a);
      for (const t of traces) out.push(join(a, t));
    } else out.push(a);
  }
  return out;
}

function readText(file: string, cwd: string): string {
  try {
    return readFileSync(resolve(cwd, file), 'utf8');
  } catch (e) {
    throw new CliError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT_USAGE, file);
  }
}

/** The one-line result the oracle format prescribes for a malformed trace. */
export function badTraceLine(e: TraceError): string {
  return JSON.stringify({ error: `bad-trace: ${e.message}` });
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

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}

interface FileResult {
  file: string;
  name: string;
  status: 'ok' | 'written' | 'mismatch' | 'bad-trace' | 'no-expected';
  lines?: number;
  output?: string;
  diff?: { line: number; path: string; expected: string; actual: string; expectedValue: string; actualValue: string };
  error?: string;
  errorLine?: number;
}

export const replayCommand: Command = {
  name: 'replay',
  summary: 'replay kernel reference traces and write or check the result lines',
  usage: ['< NAME.trace.jsonl', 'FILE', '--out-dir DIR FILE|DIR...', '--check FILE|DIR...'],
  description: `Each trace runs exactly as the kernel oracle ran it (kernel mode, bump allocator, every
TLB/DMA call an event); output follows packages/vectors/FORMAT.md. A directory argument
stands for its *.trace.jsonl files. --check compares with NAME.expected.jsonl beside each
trace (line by line, as parsed JSON) and prints the first differing line.
A malformed trace prints {"error":"bad-trace: FILE:LINE: ..."} and exits with status 2.
Exit status: 0 all good, 1 a check failed, 2 bad input.

Examples:
  io-pgtable replay < packages/vectors/public/000_sanity_4k_48_48.trace.jsonl
  io-pgtable replay --check packages/vectors/public
  io-pgtable replay --out-dir out packages/vectors/public/*.trace.jsonl`,
  options: {
    'out-dir': { type: 'string', arg: 'DIR', help: 'write DIR/<name>.result.jsonl for each <name>.trace.jsonl' },
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
      return replayOne(await readAll(io.stdin), '<stdin>', io);
    }
    const files = expandTraceArgs(args.positionals, io.cwd);
    if (!check && outDir === undefined) {
      if (files.length !== 1) throw new CliError('several traces need --out-dir DIR or --check', EXIT_USAGE);
      return replayOne(readText(files[0]!, io.cwd), files[0]!, io);
    }
    if (outDir !== undefined) mkdirSync(resolve(io.cwd, outDir), { recursive: true });

    const results: FileResult[] = [];
    const progress = new Progress(io, 'replay', files.length);
    for (const file of files) {
      const name = traceName(file);
      const r: FileResult = { file, name, status: 'ok' };
      const text = readText(file, io.cwd);
      let out: string[];
      try {
        out = replayTrace(text, file);
      } catch (e) {
        if (!(e instanceof TraceError)) throw e;
        r.status = 'bad-trace';
        r.error = e.message;
        r.errorLine = e.line;
        out = [badTraceLine(e)];
      }
      r.lines = out.length;
      if (outDir !== undefined) {
        const dest = join(outDir, `${name}.result.jsonl`);
        writeFileSync(resolve(io.cwd, dest), out.join('\n') + '\n');
        r.output = dest;
        if (r.status === 'ok' && !check) r.status = 'written';
      }
      if (check && r.status === 'ok') {
        const expFile = join(dirname(file), `${name}.expected.jsonl`);
        let expText: string | null = null;
        try {
          expText = readFileSync(resolve(io.cwd, expFile), 'utf8');
        } catch {
          r.status = 'no-expected';
          r.error = `${expFile}: cannot read the expected output`;
        }
        if (expText !== null) {
          const d = compareResults(out, lines(expText));
          if (d) {
            const path = d.expected === '<missing>' || d.actual === '<missing>' ? '' : (firstDifference(JSON.parse(d.expected), JSON.parse(d.actual)) ?? '');
            r.status = 'mismatch';
            r.diff = {
              ...d,
              path,
              expectedValue: d.expected === '<missing>' ? '<missing>' : valueAt(JSON.parse(d.expected), path),
              actualValue: d.actual === '<missing>' ? '<missing>' : valueAt(JSON.parse(d.actual), path),
            };
          }
        }
      }
      results.push(r);
      progress.tick(name);
      if (!json) await write(io.stdout, describeResult(r, c));
    }
    progress.end();
    const bad = results.filter((r) => r.status === 'bad-trace' || r.status === 'no-expected').length;
    const failed = results.filter((r) => r.status === 'mismatch').length + bad;
    const passed = results.length - failed;
    for (const r of results) {
      if (r.status === 'bad-trace') io.stderr.write(`${r.error!.replace(/^(.*?:\d+): /, '$1: bad-trace: ')}\n`);
      if (r.status === 'no-expected') io.stderr.write(`${r.error}\n`);
    }
    if (json) {
      await write(io.stdout, JSON.stringify({ command: 'replay', check, outDir: outDir ?? null, passed, failed, files: results }) + '\n');
    } else if (check) {
      await write(io.stdout, `${failed === 0 ? c.green(`${passed} passed, 0 failed`) : c.red(`${passed} passed, ${failed} failed`)}\n`);
    }
    return bad > 0 ? EXIT_USAGE : failed > 0 ? EXIT_FAIL : EXIT_OK;
  },
};

function describeResult(r: FileResult, c: ReturnType<typeof paint>): string {
  switch (r.status) {
    case 'ok':
      return `${c.green('ok')}   ${r.name} (${r.lines} lines)${r.output ? ` -> ${r.output}` : ''}\n`;
    case 'written':
      return `wrote ${r.output} (${r.lines} lines)\n`;
    case 'bad-trace':
      return `${c.red('BAD')}  ${r.name}: ${r.error}\n`;
    case 'no-expected':
      return `${c.red('FAIL')} ${r.name}: ${r.error}\n`;
    case 'mismatch': {
      const d = r.diff!;
      return (
        `${c.red('FAIL')} ${r.name}: first difference at line ${d.line}${d.path ? ` (${d.path}: expected ${clip(d.expectedValue, 200)}, got ${clip(d.actualValue, 200)})` : ''}\n` +
        `  expected: ${clip(d.expected)}\n  actual:   ${clip(d.actual)}\n`
      );
    }
  }
}

async function replayOne(text: string, file: string, io: Io): Promise<number> {
  let out: string[];
  try {
    out = replayTrace(text, file);
  } catch (e) {
    if (!(e instanceof TraceError)) throw e;
    await write(io.stdout, badTraceLine(e) + '\n');
    io.stderr.write(`${e.message.replace(/^(.*?:\d+): /, '$1: bad-trace: ')}\n`);
    return EXIT_USAGE;
  }
  await write(io.stdout, out.join('\n') + '\n');
  return EXIT_OK;
}
