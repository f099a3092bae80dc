/**
 * The systematic hostile-input matrix of the CLI (issue 14): every command x every class of
 * hostile input a user can give it. Each case runs the built bin as a child process
 * (test/catalogue.test.ts): exit 2, exactly one stderr line naming the problem (the line,
 * for a trace or capture), no stack trace, bounded time (and memory, where the input is
 * large), and no output file left behind that would claim success. Inputs that are
 * accepted by design (CRLF, a byte-order mark, `--help` with anything) say so with exit 0.
 * `COVERAGE` below is checked against the whole catalogue: a command x class pair without
 * a case fails the test, unless it is listed in `NOT_APPLICABLE` with the reason.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { minimalData } from './cli-main.js';
import type { Case, CheckCase, CliCase, IssueClass } from './types.js';

const cliBin = (): string => fileURLToPath(new URL('../../../cli/dist/bin.js', import.meta.url));

export const CLI_COMMANDS = ['replay', 'simulate', 'bench', 'report', 'worst-case', 'import-ftrace', 'compare'] as const;
export type CliCommand = (typeof CLI_COMMANDS)[number];

/** The classes every command must have a case of. */
export const CLI_CLASSES: readonly IssueClass[] = [
  'prototype-name',
  'deep-json',
  'huge-value',
  'u64-above-2p53',
  'fs-error',
  'partial-failure',
  'wrong-shape',
  'usage',
  'empty-input',
  'text-encoding',
  'bounded-memory',
  'stdout-closed',
];

/** Pairs without a case, and why none can exist. */
export const NOT_APPLICABLE: Readonly<Partial<Record<CliCommand, Partial<Record<IssueClass, string>>>>> = {
  'worst-case': { 'bounded-memory': 'it reads no file and no stdin; its arguments are bounded by the kernel (128 KiB each), and a huge one is a huge-value case' },
};

const PROTO = ['toString', '__proto__', 'constructor', 'hasOwnProperty'] as const;
const HDR = '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48,"dumpEvery":false}';
const MAP_OP = '{"op":"map","iova":"0x1000","paddr":"0x2000","pgsize":"0x1000","pgcount":1,"prot":["read","write"]}';
const GOOD_TRACE = `${HDR}\n${MAP_OP}\n{"op":"iova_to_phys","iova":"0x1000"}\n`;
const trace = (...ops: string[]): string => `${HDR}\n${ops.join('\n')}\n`;
/** 100,000 levels of nesting. */
const DEEP = '['.repeat(100_000) + ']'.repeat(100_000);
const HUGE_DIGITS = '9'.repeat(100_000);
const CAP_LINE = (iova: number, event = 'map'): string =>
  `  gpu-1 [000] ..... 1.000000: ${event}: IOMMU: iova=0x${iova.toString(16).padStart(16, '0')} - 0x${(iova + 0x4000).toString(16).padStart(16, '0')} paddr=0x0000000080000000 size=16384`;
const CAPTURE = CAP_LINE(0x100000) + '\n';
/** 30,000 maps: about 4 MB of trace, past what import-ftrace holds back from stdout. */
const LONG_CAPTURE = Array.from({ length: 30_000 }, (_, i) => CAP_LINE(0x100000 + i * 0x4000)).join('\n') + '\n';
const BAD_CAPTURE = CAPTURE + CAP_LINE(0x200000).replace('paddr=0x0000000080000000', 'paddr=0xZZ') + '\n';
const DATA = JSON.stringify(minimalData());
const ONE_GIB = 2 ** 30;
const FIFO = (tmp: string): void => void execFileSync('mkfifo', [`${tmp}/fifo`]);
const STACK_TRACE_FREE = /^(?![\s\S]*\n\s+at )/;

/** How each command runs successfully on a small input (a case changes one thing). */
const FAST = ['--workload', 'random-churn', '--stack', 'system', '--scale', '0.01', '--reps', '1', '--jobs', '1'];
const BASE: Record<CliCommand, { args: string[]; files?: Record<string, string>; absent?: string[] }> = {
  replay: { args: ['replay', '{tmp}/t.trace.jsonl'], files: { 't.trace.jsonl': GOOD_TRACE } },
  simulate: { args: ['simulate', ...FAST] },
  bench: { args: ['bench', ...FAST] },
  compare: { args: ['compare', ...FAST, '--out-dir', '{tmp}/r'], absent: ['{tmp}/r/index.html', '{tmp}/r/data.json'] },
  report: { args: ['report', '--in', '{tmp}/d.json', '--out', '{tmp}/o.html'], files: { 'd.json': DATA }, absent: ['{tmp}/o.html'] },
  'worst-case': { args: ['worst-case', '--range', '0+4K'] },
  'import-ftrace': { args: ['import-ftrace', '{tmp}/cap.txt', '-o', '{tmp}/out.trace.jsonl'], files: { 'cap.txt': CAPTURE }, absent: ['{tmp}/out.trace.jsonl'] },
};
/** The matrix commands run a capture with these (compare also writes a report). */
const MATRIX: Record<'simulate' | 'bench' | 'compare', string[]> = {
  simulate: ['simulate', '--stack', 'system', '--reps', '1', '--jobs', '1'],
  bench: ['bench', '--stack', 'system', '--reps', '1', '--jobs', '1'],
  compare: ['compare', '--stack', 'system', '--reps', '1', '--jobs', '1', '--out-dir', '{tmp}/r'],
};
const MATRIX_CMDS = ['simulate', 'bench', 'compare'] as const;
const matrixAbsent = (cmd: string): string[] => (cmd === 'compare' ? ['{tmp}/r/index.html', '{tmp}/r/data.json'] : []);

type Extra = Partial<Omit<CliCase, 'id' | 'surface' | 'category' | 'input' | 'exit' | 'match'>>;

function bad(cmd: CliCommand, category: IssueClass, slug: string, input: string, args: string[], match: RegExp, extra: Extra = {}): CliCase {
  return { id: `hostile-${cmd}-${slug}`, surface: 'cli', category, input, args, exit: 2, match, stdout: /^$/, ...extra };
}

function ok(cmd: CliCommand, category: IssueClass, slug: string, input: string, args: string[], stdout: RegExp, extra: Extra = {}): CliCase {
  return { id: `hostile-${cmd}-${slug}`, surface: 'cli', category, input, args, exit: 0, match: /^$/, stdout, ...extra };
}

/** The base run of `cmd` with `more` arguments (its files and absent outputs kept). */
function withBase(cmd: CliCommand, category: IssueClass, slug: string, input: string, more: string[], match: RegExp, extra: Extra = {}): CliCase {
  const b = BASE[cmd];
  return bad(cmd, category, slug, input, [...b.args, ...more], match, { ...(b.files ? { files: b.files } : {}), ...(b.absent ? { absent: b.absent } : {}), ...extra });
}

/** `replay FILE` of a trace text. */
function replayText(category: IssueClass, slug: string, input: string, text: string | Uint8Array, match: RegExp, extra: Extra = {}): CliCase {
  // The bad-trace line is the format's one answer on stdout; nothing else is written.
  return bad('replay', category, slug, input, ['replay', '{tmp}/t.trace.jsonl'], match, { files: { 't.trace.jsonl': text }, stdout: /^(\{"error":"bad-trace: [^\n]*"\}\n)?$/, ...extra });
}

/** The matrix commands on a capture file (`--trace FILE`). */
function matrixTrace(category: IssueClass, slug: string, input: string, text: string | Uint8Array | null, match: RegExp, file = '{tmp}/cap.txt', extra: Extra = {}): CliCase[] {
  return MATRIX_CMDS.map((cmd) =>
    bad(cmd, category, slug, `${cmd} --trace ${input}`, [...MATRIX[cmd], '--trace', file], match, { ...(text !== null ? { files: { 'cap.txt': text } } : {}), absent: matrixAbsent(cmd), ...extra }),
  );
}

/** `import-ftrace FILE -o OUT` of a capture text. */
function importText(category: IssueClass, slug: string, input: string, text: string | Uint8Array, match: RegExp, extra: Extra = {}): CliCase {
  return bad('import-ftrace', category, slug, input, ['import-ftrace', '{tmp}/cap.txt', '-o', '{tmp}/out.trace.jsonl'], match, { files: { 'cap.txt': text }, absent: ['{tmp}/out.trace.jsonl'], ...extra });
}

/** `report --in FILE --out OUT` of a data.json text. */
function reportText(category: IssueClass, slug: string, input: string, text: string | Uint8Array, match: RegExp, extra: Extra = {}): CliCase {
  return bad('report', category, slug, input, ['report', '--in', '{tmp}/d.json', '--out', '{tmp}/o.html'], match, { files: { 'd.json': text }, absent: ['{tmp}/o.html'], ...extra });
}

const bytes = (...parts: (string | number[])[]): Uint8Array => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

// ---------------------------------------------------------------------------------------
// usage: unknown options, missing values, repeated options, --help with anything.
const ONE_VALUE: Record<CliCommand, [string, string, string]> = {
  replay: ['--out-dir', '{tmp}/a', '{tmp}/b'],
  simulate: ['--seed', '1', '2'],
  bench: ['--seed', '1', '2'],
  compare: ['--goal', 'memory', 'latency'],
  report: ['--goal', 'memory', 'latency'],
  'worst-case': ['--format', 'ARM_64_LPAE_S1', 'ARM_64_LPAE_S2'],
  'import-ftrace': ['--format', 'ARM_64_LPAE_S1', 'ARM_64_LPAE_S2'],
};
const usage: CliCase[] = CLI_COMMANDS.flatMap((cmd): CliCase[] => {
  const [opt, a, b] = ONE_VALUE[cmd];
  const help = (slug: string, input: string, args: string[]): CliCase =>
    ok(cmd, 'usage', slug, input, args, new RegExp(`^io-pgtable ${cmd} — [^]*\\nUsage:\\n[^]*\\nOptions:\\n`), { absent: BASE[cmd].absent ?? [] });
  return [
    withBase(cmd, 'usage', 'unknown-option', `${cmd} --bogus`, ['--bogus'], /Unknown option '--bogus'.*--help' for usage\.\n$/),
    // The option is last, so it has no value.
    withBase(cmd, 'usage', 'missing-value', `${cmd} ${opt} (no value)`, [opt], new RegExp(`Option '(-[a-z], )?${opt} <value>' argument missing`)),
    withBase(cmd, 'usage', 'repeated-option', `${cmd} ${opt} given twice`, [opt, a, opt, b], new RegExp(`${opt} given more than once \\(it takes one value\\)`), {
      absent: [...(BASE[cmd].absent ?? []), '{tmp}/a', '{tmp}/b'],
    }),
    withBase(cmd, 'usage', 'value-is-option', `${cmd} ${opt} followed by another option instead of its value`, [opt, '-x'], new RegExp(`Option '${opt}' argument is ambiguous`)),
    help('help-with-bad-args', `${cmd} --bogus --help (help wins)`, [cmd, '--bogus', '--seed', '--help']),
    help('short-help', `${cmd} -h`, [cmd, '-h']),
  ];
});

// ---------------------------------------------------------------------------------------
// prototype-name: names inherited from Object.prototype wherever a name is looked up.
const optionNames: CliCase[] = CLI_COMMANDS.flatMap((cmd) =>
  PROTO.map((n) => withBase(cmd, 'prototype-name', `option-${n}`, `${cmd} --${n}`, [`--${n}`, 'x'], new RegExp(`Unknown option '--${n}'`))),
);
const protoNames: CliCase[] = [
  ...optionNames,
  ...PROTO.flatMap((n): CliCase[] => [
    replayText('prototype-name', `op-${n}`, `replay of an op named "${n}"`, trace(`{"op":"${n}","iova":"0x1000"}`), new RegExp(`t\\.trace\\.jsonl:2: bad-trace: unknown op "${n}"`)),
    replayText('prototype-name', `prot-${n}`, `replay of a map with prot ["${n}"]`, trace(MAP_OP.replace('"prot":["read","write"]', `"prot":["${n}"]`)), new RegExp(`:2: bad-trace: unknown prot "${n}"`)),
    replayText('prototype-name', `quirk-${n}`, `replay of a header with quirk "${n}"`, `${HDR.replace('}', `,"quirks":["${n}"]}`)}\n`, new RegExp(`:1: bad-trace: unknown quirk "${n}"`)),
    replayText('prototype-name', `format-${n}`, `replay of a header with format "${n}"`, `${HDR.replace('ARM_64_LPAE_S1', n)}\n`, new RegExp(`:1: bad-trace: format "${n}" is not one of`)),
    ...MATRIX_CMDS.flatMap((cmd): CliCase[] => [
      bad(cmd, 'prototype-name', `workload-${n}`, `${cmd} --workload ${n}`, [...MATRIX[cmd], '--workload', n], new RegExp(`--workload: unknown workload "${n}"`), { absent: matrixAbsent(cmd) }),
      bad(cmd, 'prototype-name', `stack-${n}`, `${cmd} --stack ${n}`, [cmd, '--workload', 'random-churn', '--scale', '0.01', '--reps', '1', '--stack', n, ...(cmd === 'compare' ? ['--out-dir', '{tmp}/r'] : [])], new RegExp(`unknown stack "${n}"`), { absent: matrixAbsent(cmd) }),
      bad(cmd, 'prototype-name', `stack-plus-${n}`, `${cmd} --stack +${n} (added to the built-ins)`, [cmd, '--workload', 'random-churn', '--scale', '0.01', '--reps', '1', '--stack', `+${n}`, ...(cmd === 'compare' ? ['--out-dir', '{tmp}/r'] : [])], new RegExp(`unknown stack "${n}"`), { absent: matrixAbsent(cmd) }),
      bad(cmd, 'prototype-name', `constraint-${n}`, `${cmd} --trace FILE --constraint ${n}`, [...MATRIX[cmd], '--trace', '{tmp}/cap.txt', '--constraint', n], new RegExp(`--constraint: "${n}" is not one of`), { files: { 'cap.txt': CAPTURE }, absent: matrixAbsent(cmd) }),
    ]),
    withBase('compare', 'prototype-name', `goal-${n}`, `compare --goal ${n}`, ['--goal', n], new RegExp(`--goal: "${n}" is not one of balanced`)),
    withBase('report', 'prototype-name', `goal-${n}`, `report --goal ${n}`, ['--goal', n], new RegExp(`--goal: "${n}" is not one of balanced`)),
    reportText('prototype-name', `data-goal-${n}`, `report of a data.json whose config.goal is "${n}"`, JSON.stringify(minimalData({ config: { seed: 1, scale: 1, traces: [], goal: n, reps: 1 } })), /\$\.config\.goal: expected one of "balanced"/),
    ...(['--format', '--granule', '--merge', '--split'] as const).map((o) =>
      withBase('worst-case', 'prototype-name', `${o.slice(2)}-${n}`, `worst-case ${o} ${n}`, [o, n], new RegExp(`${o}: "${n}" is not one of`, 'i')),
    ),
    bad('worst-case', 'prototype-name', `range-op-${n}`, `worst-case --range ${n}:0+4K`, ['worst-case', '--range', `${n}:0+4K`], /--range #1 iova: ".+" is not a size/),
    ...(['--format', '--prot', '--quirks'] as const).map((o) =>
      withBase('import-ftrace', 'prototype-name', `${o.slice(2)}-${n}`, `import-ftrace ${o} ${n}`, [o, n], new RegExp(`${o}: "${n}" is not one of`)),
    ),
    importText('prototype-name', `event-${n}`, `import-ftrace of a capture whose event is named "${n}"`, CAP_LINE(0x100000, n) + '\n', /cap\.txt(:1)?: no iommu map\/unmap events found/),
  ]),
  // Names that are prototype names are data, not lookups: a report of them renders.
  {
    id: 'hostile-report-data-names-proto',
    surface: 'cli',
    category: 'prototype-name',
    input: 'report of a data.json whose workload is "constructor" and stack "toString" (valid names)',
    args: ['report', '--in', '{tmp}/d.json', '--out', '{tmp}/o.html'],
    files: {
      'd.json': JSON.stringify(
        minimalData({
          results: [{ ...(minimalData().results as object[])[0], workload: 'constructor', stack: 'toString' }],
          workloads: [{ ...(minimalData().workloads as object[])[0], name: 'constructor' }],
          stacks: [{ ...(minimalData().stacks as object[])[0], name: 'toString' }],
        }),
      ),
    },
    exit: 0,
    match: /^$/,
    stdout: /^wrote \{tmp\}\/o\.html \(1 runs\)\n$/,
  },
];

// ---------------------------------------------------------------------------------------
// deep-json: 100,000 levels wherever JSON is read (traces, data.json, a plugin's package.json).
const DEEP_PKG = { 'node_modules/deep-plugin/package.json': `{"name":"deep-plugin","exports":${'{"x":'.repeat(100_000)}1${'}'.repeat(100_000)}}` };
const deepJson: CliCase[] = [
  replayText('deep-json', 'deep-op', 'replay of an op line nesting 100,000 arrays', `${HDR}\n{"op":${DEEP}}\n`, /:2: bad-trace: [^\n]{1,600}\n$/),
  bad('replay', 'deep-json', 'deep-stdin', 'replay of a 100,000-deep op line on stdin', ['replay'], /^<stdin>:2: bad-trace: [^\n]{1,600}\n$/, { stdin: `${HDR}\n{"op":${DEEP}}\n`, stdout: /^\{"error":"bad-trace: [^\n]*"\}\n$/ }),
  ...matrixTrace('deep-json', 'deep-trace', 'a trace whose op nests 100,000 arrays', `${HDR}\n{"op":"map","iova":${DEEP}}\n`, /cap\.txt:2: [^\n]{1,600}\n$/),
  ...MATRIX_CMDS.map((cmd) =>
    bad(cmd, 'deep-json', 'deep-package-json', `${cmd} --stack PLUGIN whose package.json nests 100,000 objects`, [cmd, '--workload', 'random-churn', '--scale', '0.01', '--reps', '1', '--stack', 'deep-plugin', ...(cmd === 'compare' ? ['--out-dir', '{tmp}/r'] : [])], /deep-plugin\/package\.json:1: JSON nested deeper than 256 levels\n$/, { files: DEEP_PKG, absent: matrixAbsent(cmd) }),
  ),
  bad('report', 'deep-json', 'deep-cwd-package-json', 'report (default paths) in a directory whose package.json nests 100,000 arrays', ['report'], /\{tmp\}\/report\/data\.json: cannot read: ENOENT[^\n]*run 'io-pgtable compare' first/, { files: { 'package.json': `{"workspaces":${DEEP}}` } }),
  reportText('deep-json', 'deep-data', 'report of a data.json whose machine field nests 100,000 arrays', DATA.replace('"machine":"node"', `"machine":${DEEP}`), /\$\.machine: expected a string, got an array/),
  bad('report', 'deep-json', 'deep-merge', 'report --merge of a shard nesting 100,000 arrays', ['report', '--merge', '{tmp}/a.json', '--out-dir', '{tmp}/m'], /a\.json: not a compare data file[^\n]*\n$/, { files: { 'a.json': DEEP }, absent: ['{tmp}/m/index.html', '{tmp}/m/data.json'] }),
  importText('deep-json', 'deep-line', 'import-ftrace of a capture that is JSON nesting 100,000 arrays (one 200,000-character line)', DEEP + '\n', /cap\.txt:1: line longer than 65,536 characters\n$/),
  bad('worst-case', 'deep-json', 'deep-range', 'worst-case --range of 100,000 nested brackets', ['worst-case', '--range', '['.repeat(50_000) + ']'.repeat(50_000)], /^io-pgtable worst-case: --range #1: "\[{10}[^\n]{1,100}\.\.\. \(99,940 more characters\) is not \[map\|unmap:\]IOVA\+SIZE[^\n]*\n$/),
];

// ---------------------------------------------------------------------------------------
// huge-value: a huge number or string must not be echoed whole (messages are capped).
const SHORT = /^[^\n]{1,700}\n$/;
const hugeValue: CliCase[] = [
  ...CLI_COMMANDS.map((cmd) => withBase(cmd, 'huge-value', 'huge-option-name', `${cmd} with a 100,000-character unknown option`, [`--${'x'.repeat(100_000)}`], SHORT)),
  replayText('huge-value', 'huge-iova', 'replay of an iova of 100,000 digits', trace(`{"op":"iova_to_phys","iova":"${HUGE_DIGITS}"}`), /^\{tmp\}\/t\.trace\.jsonl:2: bad-trace: [^\n]{1,700}\n$/, { stdout: /^\{"error":"bad-trace: [^\n]{1,800}"\}\n$/ }),
  replayText('huge-value', 'huge-op-name', 'replay of an op name of 500,000 characters', trace(`{"op":"${'m'.repeat(500_000)}"}`), /^\{tmp\}\/t\.trace\.jsonl:2: bad-trace: [^\n]{1,700}\n$/, { stdout: /^\{"error":"bad-trace: [^\n]{1,800}"\}\n$/ }),
  ...matrixTrace('huge-value', 'huge-size', 'a capture whose size has 50,000 digits', CAPTURE.replace('size=16384', `size=${'9'.repeat(50_000)}`), /cap\.txt:1: [^\n]{1,600}\n$/),
  withBase('report', 'huge-value', 'huge-goal', 'report --goal of 100,000 characters', ['--goal', 'g'.repeat(100_000)], SHORT),
  reportText('huge-value', 'huge-number', 'report of a data.json whose seed has 100,000 digits', DATA.replace('"seed":1', `"seed":${HUGE_DIGITS}`), /\$\.config\.seed: [^\n]{1,200}\n$/),
  bad('worst-case', 'huge-value', 'huge-size', 'worst-case --range with a 100,000-digit size', ['worst-case', '--range', `0+${HUGE_DIGITS}`], SHORT),
  withBase('import-ftrace', 'huge-value', 'huge-bitmap', 'import-ftrace --bitmap of 100,000 digits', ['--bitmap', HUGE_DIGITS], SHORT),
  withBase('compare', 'huge-value', 'huge-seed', 'compare --seed of 100,000 digits', ['--seed', HUGE_DIGITS], SHORT),
];

// ---------------------------------------------------------------------------------------
// u64-above-2p53: legal u64 values at or above 2^53 in every numeric field.
const P53 = '9007199254740993'; // 2^53 + 1: Number() rounds it
const U64_MAX = '18446744073709551615';
const u64: CliCase[] = [
  replayText('u64-above-2p53', 'alloc-base', 'replay of allocBase 2^53 + 1', `${HDR.replace('}', ',"allocBase":"0x20000000000001"}')}\n`, /:1: bad-trace: allocBase 0x20000000000001 with allocLimit 0x40000000 reaches past 2\^53/),
  replayText('u64-above-2p53', 'pgcount', 'replay of pgcount 2^53 + 1 as a JSON number', trace(MAP_OP.replace('"pgcount":1', `"pgcount":${P53}`)), /:2: bad-trace: .*numbers above 2\^53 must be strings/),
  {
    id: 'hostile-replay-u64-exact',
    surface: 'cli',
    category: 'u64-above-2p53',
    input: 'replay of a map at iova 2^53 + 1 and an iova_to_phys of 2^64 - 1 (legal values: exact results, no rounding)',
    args: ['replay', '{tmp}/t.trace.jsonl'],
    files: { 't.trace.jsonl': trace(MAP_OP.replace('"iova":"0x1000"', '"iova":"0x20000000000001"'), '{"op":"iova_to_phys","iova":"0xffffffffffffffff"}') },
    exit: 0,
    match: /^$/,
    stdout: /\n\{"ret":"-ERANGE","mapped":"0x0","events":\[\]\}\n\{"error":"undefined-behaviour: iova_to_phys\(0xffffffffffffffff\)[^\n]*\n\{"final":/,
  },
  ...MATRIX_CMDS.flatMap((cmd): CliCase[] => [
    bad(cmd, 'u64-above-2p53', 'seed', `${cmd} --seed 2^53 + 1`, [...MATRIX[cmd], '--workload', 'random-churn', '--seed', P53], new RegExp(`--seed: "${P53}" is too large \\(at most 9007199254740991, 2\\^53-1\\)`), { absent: matrixAbsent(cmd) }),
    bad(cmd, 'u64-above-2p53', 'jobs', `${cmd} --jobs 2^64 - 1`, [cmd, ...FAST.slice(0, -2), '--jobs', U64_MAX, ...(cmd === 'compare' ? ['--out-dir', '{tmp}/r'] : [])], /--jobs: "18446744073709551615" is too large/, { absent: matrixAbsent(cmd) }),
  ]),
  ...matrixTrace('u64-above-2p53', 'trace-iova', 'a trace mapping at iova 2^53', trace(MAP_OP.replace('"iova":"0x1000"', '"iova":"0x20000000000000"')), /cap\.txt:2: map: iova 0x20000000000000 \+ size 0x1000 reaches 2\^53 or above/),
  ...matrixTrace('u64-above-2p53', 'trace-paddr', 'a trace mapping paddr 2^64 - 4 KiB', trace(MAP_OP.replace('"paddr":"0x2000"', '"paddr":"0xfffffffffffff000"')), /cap\.txt:2: map: paddr 0xfffffffffffff000 \+ size 0x1000 reaches 2\^53 or above/),
  replayText('u64-above-2p53', 'alloc-limit', 'replay of allocLimit 2^64 - 1', `${HDR.replace('}', ',"allocLimit":"0xffffffffffffffff"}')}\n`, /:1: bad-trace: allocBase 0x80000000 with allocLimit 0xffffffffffffffff reaches past 2\^53/),
  ...MATRIX_CMDS.map((cmd) =>
    bad(cmd, 'u64-above-2p53', 'shard', `${cmd} --shard (2^53 + 1)/(2^53 + 3)`, [cmd, ...FAST, '--shard', `${P53}/9007199254740995`, ...(cmd === 'compare' ? ['--out-dir', '{tmp}/r'] : [])], /--shard: "9007199254740993\/9007199254740995" is not i\/n with 1 <= i <= n <= 9999/, { absent: matrixAbsent(cmd) }),
  ),
  bad('worst-case', 'u64-above-2p53', 'paddr', 'worst-case --exact-page-sizes --range with paddr 2^53', ['worst-case', '--exact-page-sizes', '--range', '0+4K=0x20000000000000'], /--range #1 paddr: "0x20000000000000" is too large: worst-case counts addresses and sizes below 2\^53/),
  bad('worst-case', 'u64-above-2p53', 'pgsize', 'worst-case --range with @PGSIZE 2^53', ['worst-case', '--range', '0+4K@0x20000000000000'], /--range #1 pgsize: "0x20000000000000" is too large/),
  importText('u64-above-2p53', 'unmap-size', 'import-ftrace of an unmap of size 2^64 - 1', '  a-1 [000] ..... 1.0: unmap: IOMMU: iova=0x0000000000001000 size=18446744073709551615 unmapped_size=4096\n', /cap\.txt:1: iova 0x1000 \+ size 0xffffffffffffffff wraps past 2\^64\n$/),
  reportText('u64-above-2p53', 'count', 'report of a data.json whose peakPages is 2^53 + 1', DATA.replace('"peakPages":2', `"peakPages":${P53}`), /\$\.results\[0\]\.peakPages: at or above 2\^53, which a JSON number cannot hold exactly/),
  reportText('u64-above-2p53', 'seed', 'report of a data.json whose seed is 2^64', DATA.replace('"seed":1', '"seed":18446744073709551616'), /\$\.config\.seed: at or above 2\^53/),
  bad('worst-case', 'u64-above-2p53', 'iova', 'worst-case --range at iova 2^53', ['worst-case', '--range', '0x20000000000000+4K'], /--range #1 iova: "0x20000000000000" is too large: worst-case counts addresses and sizes below 2\^53/),
  bad('worst-case', 'u64-above-2p53', 'ias', 'worst-case --ias 2^64 - 1', ['worst-case', '--range', '0+4K', '--ias', U64_MAX], /--ias: "18446744073709551615" is too large/),
  withBase('import-ftrace', 'u64-above-2p53', 'max-ops', 'import-ftrace --max-ops-per-event 2^64 - 1', ['--max-ops-per-event', U64_MAX], /--max-ops-per-event: "18446744073709551615" is too large/),
  withBase('import-ftrace', 'u64-above-2p53', 'oas', 'import-ftrace --oas 2^53 + 1', ['--oas', P53], new RegExp(`--oas: "${P53}" is too large`)),
  {
    id: 'hostile-import-ftrace-u64-iova',
    surface: 'cli',
    category: 'u64-above-2p53',
    input: 'import-ftrace of a map at iova 0xffffffffffff0000 (exact in the trace; the model refuses it, with a warning)',
    args: ['import-ftrace', '{tmp}/cap.txt'],
    files: { 'cap.txt': '  a-1 [000] ..... 1.0: map: IOMMU: iova=0xffffffffffff0000 - 0x0000000000000000 paddr=0x0000000080000000 size=65536\n' },
    exit: 0,
    match: /^\{tmp\}\/cap\.txt:1: warning: map of 0xffffffffffff0000 \+ 0x10000 fails here with ERANGE[^\n]*\n$/,
    stdout: /\n\{"op":"map","iova":"0xffffffffffff0000",/,
    stderrLines: 1,
  },
];

// ---------------------------------------------------------------------------------------
// fs-error: outputs that cannot be written, inputs that cannot be read (or never end).
const DEV_FULL = /^io-pgtable: <stdout>: cannot write: ENOSPC \(no space left on device\)\n$/;
const fsErrors: CliCase[] = [
  ...CLI_COMMANDS.filter((c) => c !== 'compare' && c !== 'report').map((cmd) =>
    bad(cmd, 'fs-error', 'stdout-dev-full', `${cmd} > /dev/full`, cmd === 'import-ftrace' ? ['import-ftrace', '{tmp}/cap.txt'] : BASE[cmd].args, DEV_FULL, { ...(BASE[cmd].files ? { files: BASE[cmd].files } : {}), stdoutTo: '/dev/full', stdout: /^/ }),
  ),
  // Inputs: a FIFO nobody writes, /dev/zero, an unreadable file (read gives EIO).
  replayText('fs-error', 'fifo', 'replay of a FIFO with no writer (must not hang)', '', /fifo:1: bad-trace: empty trace/, { setup: FIFO, args: ['replay', '{tmp}/fifo'], timeoutMs: 20_000 }),
  replayText('fs-error', 'dev-zero', 'replay of /dev/zero (must not fill memory)', '', /^\/dev\/zero:1: bad-trace: NUL byte: not a text file\n$/, { args: ['replay', '/dev/zero'], maxRssMiB: 200 }),
  bad('replay', 'fs-error', 'unreadable', 'replay of a file whose read fails (/proc/self/mem: EIO)', ['replay', '/proc/self/mem'], /^io-pgtable replay: \/proc\/self\/mem: cannot read: EIO \(input\/output error\)\n$/),
  bad('replay', 'fs-error', 'out-dir-readonly', 'replay --out-dir on a read-only file system (/sys)', ['replay', '--out-dir', '/sys/iopgt-out', '{tmp}/t.trace.jsonl'], /--out-dir \/sys\/iopgt-out: cannot create directory: E[A-Z]+/, { files: { 't.trace.jsonl': GOOD_TRACE } }),
  bad('replay', 'fs-error', 'out-dir-proc', 'replay --out-dir under /proc (must not hang)', ['replay', '--out-dir', '/proc/iopgt-out', '{tmp}/t.trace.jsonl'], /--out-dir \/proc\/iopgt-out: cannot create directory: E[A-Z]+/, { files: { 't.trace.jsonl': GOOD_TRACE }, timeoutMs: 20_000 }),
  bad('replay', 'fs-error', 'out-dir-under-file', 'replay --out-dir whose parent is a file', ['replay', '--out-dir', '{tmp}/f/sub', '{tmp}/t.trace.jsonl'], /--out-dir \{tmp\}\/f\/sub: cannot create directory: ENOTDIR \(a file is in the way: not a directory\)/, { files: { f: 'x', 't.trace.jsonl': GOOD_TRACE } }),
  ...MATRIX_CMDS.flatMap((cmd): CliCase[] => [
    bad(cmd, 'fs-error', 'trace-fifo', `${cmd} --trace FIFO with no writer (must not hang)`, [...MATRIX[cmd], '--trace', '{tmp}/fifo'], /fifo: no iommu map\/unmap events found/, { setup: FIFO, absent: matrixAbsent(cmd), timeoutMs: 20_000 }),
    bad(cmd, 'fs-error', 'trace-dev-zero', `${cmd} --trace /dev/zero (must not fill memory)`, [...MATRIX[cmd], '--trace', '/dev/zero'], /\/dev\/zero:1: NUL byte: not a text file\n$/, { absent: matrixAbsent(cmd), maxRssMiB: 250 }),
    bad(cmd, 'fs-error', 'trace-unreadable', `${cmd} --trace /proc/self/mem (read gives EIO)`, [...MATRIX[cmd], '--trace', '/proc/self/mem'], /\/proc\/self\/mem: cannot read: EIO/, { absent: matrixAbsent(cmd) }),
  ]),
  bad('compare', 'fs-error', 'out-dir-under-file', 'compare --out-dir whose parent is a file', ['compare', ...FAST, '--out-dir', '{tmp}/f/r'], /\{tmp\}\/f\/r: cannot write the report: ENOTDIR/, { files: { f: 'x' } }),
  reportText('fs-error', 'in-fifo', 'report --in a FIFO with no writer (must not hang)', '', /fifo: empty file: not a compare data file/, { setup: FIFO, args: ['report', '--in', '{tmp}/fifo', '--out', '{tmp}/o.html'], timeoutMs: 20_000 }),
  reportText('fs-error', 'in-dev-zero', 'report --in /dev/zero (must not fill memory)', '', /\/dev\/zero:1: NUL byte: not a text file\n$/, { args: ['report', '--in', '/dev/zero', '--out', '{tmp}/o.html'], maxRssMiB: 250 }),
  reportText('fs-error', 'in-unreadable', 'report --in /proc/self/mem (read gives EIO)', '', /\/proc\/self\/mem: cannot read: EIO/, { args: ['report', '--in', '/proc/self/mem', '--out', '{tmp}/o.html'] }),
  reportText('fs-error', 'in-missing', 'report --in a missing file', '', /\{tmp\}\/none\.json: cannot read: ENOENT[^\n]*run 'io-pgtable compare' first/, { args: ['report', '--in', '{tmp}/none.json', '--out', '{tmp}/o.html'] }),
  withBase('report', 'fs-error', 'out-is-dir', 'report --out naming a directory', [], /\{tmp\}\/o\.html: cannot write: EISDIR/, { dirs: ['o.html'], absent: [] }),
  bad('report', 'fs-error', 'out-readonly', 'report --out on a read-only file system (/sys)', ['report', '--in', '{tmp}/d.json', '--out', '/sys/iopgt.html'], /\/sys\/iopgt\.html: cannot write: E[A-Z]+/, { files: { 'd.json': DATA } }),
  bad('report', 'fs-error', 'out-under-file', 'report --out whose parent is a file', ['report', '--in', '{tmp}/d.json', '--out', '{tmp}/f/o.html'], /\{tmp\}\/f\/o\.html: cannot write: EEXIST \(exists and is not a directory\)/, { files: { 'd.json': DATA, f: 'x' } }),
  importText('fs-error', 'fifo', 'import-ftrace of a FIFO with no writer (must not hang)', '', /fifo: no iommu map\/unmap events found/, { setup: FIFO, args: ['import-ftrace', '{tmp}/fifo', '-o', '{tmp}/out.trace.jsonl'], timeoutMs: 20_000 }),
  importText('fs-error', 'dev-zero', 'import-ftrace of /dev/zero (must not fill memory)', '', /\/dev\/zero:1: NUL byte: not a text file\n$/, { args: ['import-ftrace', '/dev/zero', '-o', '{tmp}/out.trace.jsonl'], maxRssMiB: 200 }),
  importText('fs-error', 'unreadable', 'import-ftrace of /proc/self/mem (read gives EIO)', '', /\/proc\/self\/mem: cannot read: EIO/, { args: ['import-ftrace', '/proc/self/mem', '-o', '{tmp}/out.trace.jsonl'] }),
  bad('import-ftrace', 'fs-error', 'out-proc', 'import-ftrace -o under /proc', ['import-ftrace', '{tmp}/cap.txt', '-o', '/proc/iopgt.trace.jsonl'], /\/proc\/iopgt\.trace\.jsonl: cannot write: E[A-Z]+/, { files: { 'cap.txt': CAPTURE } }),
  // A device node or FIFO as the output is written in place, never replaced by a renamed file.
  bad('import-ftrace', 'fs-error', 'out-dev-full', 'import-ftrace -o a full device (a /dev/full node)', ['import-ftrace', '{tmp}/cap.txt', '-o', '{tmp}/full'], /^io-pgtable import-ftrace: \{tmp\}\/full: cannot write: ENOSPC \(no space left on device\)\n$/, { files: { 'cap.txt': CAPTURE }, setup: (tmp) => void execFileSync('mknod', [`${tmp}/full`, 'c', '1', '7']) }),
  bad('import-ftrace', 'fs-error', 'out-fifo', 'import-ftrace -o a FIFO nobody reads (must not hang)', ['import-ftrace', '{tmp}/cap.txt', '-o', '{tmp}/fifo'], /^io-pgtable import-ftrace: \{tmp\}\/fifo: cannot write: ENXIO/, { files: { 'cap.txt': CAPTURE }, setup: FIFO, timeoutMs: 20_000 }),
  bad('report', 'fs-error', 'out-dev-full', 'report --out a full device (a /dev/full node)', ['report', '--in', '{tmp}/d.json', '--out', '{tmp}/full'], /^io-pgtable report: \{tmp\}\/full: cannot write: ENOSPC/, { files: { 'd.json': DATA }, setup: (tmp) => void execFileSync('mknod', [`${tmp}/full`, 'c', '1', '7']) }),
  {
    id: 'hostile-replay-check-expected-fifo',
    surface: 'cli',
    category: 'fs-error',
    input: 'replay --check whose NAME.expected.jsonl is a FIFO nobody writes (must not hang)',
    args: ['replay', '--check', '{tmp}/t.trace.jsonl'],
    files: { 't.trace.jsonl': GOOD_TRACE },
    setup: (tmp) => void execFileSync('mkfifo', [`${tmp}/t.expected.jsonl`]),
    exit: 2,
    match: /^\{tmp\}\/t\.expected\.jsonl: cannot read the expected output \(not a regular file\)\n$/,
    stdout: /replay: 1 traces: 0 written, 0 matched, 0 differed, 1 failed\n$/,
    timeoutMs: 20_000,
  },
  bad('import-ftrace', 'fs-error', 'out-under-file', 'import-ftrace -o whose parent is a file', ['import-ftrace', '{tmp}/cap.txt', '-o', '{tmp}/f/out.trace.jsonl'], /\{tmp\}\/f\/out\.trace\.jsonl: cannot write: ENOTDIR/, { files: { 'cap.txt': CAPTURE, f: 'x' } }),
];

// ---------------------------------------------------------------------------------------
// partial-failure: the 2nd of several inputs fails; the others run, a summary says what happened.
const BAD_TRACE = trace('{"op":"map","iova":"0x1000"}');
const partial: CliCase[] = [
  {
    id: 'hostile-replay-second-of-three',
    surface: 'cli',
    category: 'partial-failure',
    input: 'replay --out-dir of three traces, the 2nd malformed at line 2',
    args: ['replay', '--out-dir', '{tmp}/o', '{tmp}/a.trace.jsonl', '{tmp}/b.trace.jsonl', '{tmp}/c.trace.jsonl'],
    files: { 'a.trace.jsonl': GOOD_TRACE, 'b.trace.jsonl': BAD_TRACE, 'c.trace.jsonl': GOOD_TRACE },
    exit: 2,
    match: /^\{tmp\}\/b\.trace\.jsonl:2: bad-trace: missing required key "[a-z]+"\n$/,
    stdout: /^wrote \{tmp\}\/o\/a\.result\.jsonl \(4 lines\)\nBAD  b: [^\n]*\nwrote \{tmp\}\/o\/c\.result\.jsonl \(4 lines\)\nreplay: 3 traces: 2 written, 0 matched, 0 differed, 1 failed\n$/,
  },
  {
    id: 'hostile-replay-second-unreadable',
    surface: 'cli',
    category: 'partial-failure',
    input: 'replay --out-dir of three inputs, the 2nd unreadable (/proc/self/mem)',
    args: ['replay', '--out-dir', '{tmp}/o', '{tmp}/a.trace.jsonl', '/proc/self/mem', '{tmp}/c.trace.jsonl'],
    files: { 'a.trace.jsonl': GOOD_TRACE, 'c.trace.jsonl': GOOD_TRACE },
    exit: 2,
    match: /^\/proc\/self\/mem: cannot read: EIO \(input\/output error\)\n$/,
    stdout: /^wrote [^\n]*\nFAIL mem: [^\n]*\nwrote [^\n]*\nreplay: 3 traces: 2 written, 0 matched, 0 differed, 1 failed\n$/,
    absent: ['{tmp}/o/mem.result.jsonl'],
  },
  ...MATRIX_CMDS.map(
    (cmd): CliCase => ({
      id: `hostile-${cmd}-second-of-three`,
      surface: 'cli',
      category: 'partial-failure',
      input: `${cmd} --trace a --trace b --trace c, b malformed at line 2`,
      args: [...MATRIX[cmd], '--trace', '{tmp}/a.txt', '--trace', '{tmp}/b.txt', '--trace', '{tmp}/c.txt'],
      files: { 'a.txt': CAPTURE, 'b.txt': BAD_CAPTURE, 'c.txt': CAPTURE },
      exit: 2,
      match: new RegExp(`^io-pgtable ${cmd}: \\{tmp\\}/b\\.txt:2: [^\\n]* \\(left out\\)\\nio-pgtable ${cmd}: captures: 2 ran, 1 failed \\(\\{tmp\\}/b\\.txt\\)\\n$`),
      stdout: /a\.txt[^]*c\.txt/,
      stderrLines: 2,
    }),
  ),
  bad('report', 'partial-failure', 'merge-second-bad', 'report --merge of two shards, the 2nd not a data file', ['report', '--merge', '{tmp}/a.json', '{tmp}/b.json', '--out-dir', '{tmp}/m'], /^io-pgtable report: \{tmp\}\/b\.json: not a compare data file[^\n]*\n$/, {
    files: { 'a.json': JSON.stringify(minimalData({ shard: { index: 1, count: 2 } })), 'b.json': '[]' },
    absent: ['{tmp}/m/index.html', '{tmp}/m/data.json'],
  }),
  bad('worst-case', 'partial-failure', 'second-range-bad', 'worst-case with three ranges, the 2nd malformed', ['worst-case', '--range', '0+4K', '--range', '0+x', '--range', '0+8K'], /--range #2 size: "x" is not a size/),
  importText('partial-failure', 'second-event-bad', 'import-ftrace of a capture whose 2nd event is malformed', BAD_CAPTURE, /^io-pgtable import-ftrace: \{tmp\}\/cap\.txt:2: [^\n]*\n$/),
  // stdout cannot be taken back: past the first MiB held, a failure ends the lines with an error line.
  bad('import-ftrace', 'partial-failure', 'stdout-after-mib', 'import-ftrace to stdout of a 4 MB capture whose last line is malformed', ['import-ftrace', '{tmp}/cap.txt'], /^io-pgtable import-ftrace: \{tmp\}\/cap\.txt:30001: [^\n]*\n$/, {
    files: { 'cap.txt': LONG_CAPTURE + CAP_LINE(0x8000_0000).replace('size=16384', 'size=x') + '\n' },
    // Whole lines only, no "free" line, and the error line last.
    stdout: /^\{"format":[^\n]*\n(\{"op":"(map|unmap)"[^\n]*\}\n)+\{"error":"import-ftrace failed: \{tmp\}\/cap\.txt:30001: [^\n]*"\}\n$/,
  }),
  bad('import-ftrace', 'partial-failure', 'two-files', 'import-ftrace of two captures (it takes one)', ['import-ftrace', '{tmp}/a.txt', '{tmp}/b.txt'], /give at most one input file \(got 2/, { files: { 'a.txt': CAPTURE, 'b.txt': CAPTURE } }),
];

// ---------------------------------------------------------------------------------------
// wrong-shape: well-formed input of the wrong kind.
const wrongShape: CliCase[] = [
  replayText('wrong-shape', 'data-json', 'replay of a compare data.json', DATA + '\n', /:1: bad-trace: [^\n]+/),
  replayText('wrong-shape', 'ftrace-text', 'replay of ftrace text (import it first)', CAPTURE, /:1: bad-trace: not valid JSON/),
  ...matrixTrace('wrong-shape', 'data-json', 'a compare data.json', DATA + '\n', /cap\.txt:1: [^\n]+\n$/),
  reportText('wrong-shape', 'trace', 'report of a trace', GOOD_TRACE, /d\.json:2: not valid JSON/),
  reportText('wrong-shape', 'results-object', 'report of a data.json whose results is an object', JSON.stringify(minimalData({ results: {} })), /\$\.results: expected an array, got an object/),
  importText('wrong-shape', 'trace', 'import-ftrace of a .trace.jsonl (already a trace)', GOOD_TRACE, /no iommu map\/unmap events found/),
  bad('worst-case', 'wrong-shape', 'json-range', 'worst-case --range given a JSON object', ['worst-case', '--range', '{"iova":0,"size":4096}'], /--range #1: "\{\\"iova\\":0,\\"size\\":4096\}" is not \[map\|unmap:\]IOVA\+SIZE/),
];

// ---------------------------------------------------------------------------------------
// empty-input
const emptyInput: CliCase[] = [
  bad('replay', 'empty-input', 'empty-stdin', 'replay of an empty stdin', ['replay'], /^<stdin>:1: bad-trace: empty trace: the first line must be the header\n$/, { stdin: '', stdout: /^\{"error":"bad-trace: <stdin>:1: empty trace[^\n]*\n$/ }),
  replayText('empty-input', 'blank-lines', 'replay of a file of blank lines', '\n\n\r\n', /:1: bad-trace: /),
  ...matrixTrace('empty-input', 'empty', 'an empty file', '', /cap\.txt: no iommu map\/unmap events found/),
  reportText('empty-input', 'empty', 'report of an empty data.json', '', /d\.json: empty file: not a compare data file/),
  importText('empty-input', 'empty', 'import-ftrace of an empty file', '', /cap\.txt: no iommu map\/unmap events found/),
  bad('import-ftrace', 'empty-input', 'empty-stdin', 'import-ftrace of an empty stdin', ['import-ftrace'], /<stdin>: no iommu map\/unmap events found/, { stdin: '' }),
  bad('worst-case', 'empty-input', 'empty-range', "worst-case --range ''", ['worst-case', '--range', ''], /--range #1: "" is not \[map\|unmap:\]IOVA\+SIZE/),
];

// ---------------------------------------------------------------------------------------
// text-encoding: CRLF and a BOM are accepted; NUL bytes and invalid UTF-8 name their line.
const crlf = (s: string): string => s.replace(/\n/g, '\r\n');
const BOM = '\ufeff';
const textEncoding: CliCase[] = [
  ok('replay', 'text-encoding', 'crlf', 'replay of a trace with CRLF line ends (accepted)', ['replay', '{tmp}/t.trace.jsonl'], /^\{"cfg":[^\r]*\n\{"final":[^\r]*\n$/, { files: { 't.trace.jsonl': crlf(GOOD_TRACE) } }),
  ok('replay', 'text-encoding', 'bom', 'replay of a trace starting with a byte-order mark (accepted)', ['replay', '{tmp}/t.trace.jsonl'], /^\{"cfg":[^]*\n\{"final":/, { files: { 't.trace.jsonl': BOM + GOOD_TRACE } }),
  replayText('text-encoding', 'nul', 'replay of a trace with a NUL byte on line 3', `${HDR}\n${MAP_OP}\n{"op":"iova_to_phys","iova":"0x1000\u0000"}\n`, /^\{tmp\}\/t\.trace\.jsonl:3: bad-trace: NUL byte: not a text file\n$/),
  replayText('text-encoding', 'invalid-utf8', 'replay of a trace with an invalid UTF-8 byte on line 2', bytes(HDR, '\n{"op":"iova_to_phys","iova":"0x10', [0xff], '"}\n'), /^\{tmp\}\/t\.trace\.jsonl:2: bad-trace: not valid UTF-8 text\n$/),
  ...MATRIX_CMDS.map((cmd) => ok(cmd, 'text-encoding', 'crlf-capture', `${cmd} --trace of a CRLF capture (accepted)`, [...MATRIX[cmd], '--trace', '{tmp}/cap.txt'], /cap\.txt/, { files: { 'cap.txt': crlf(CAPTURE) } })),
  ...matrixTrace('text-encoding', 'nul', 'a capture with a NUL byte on line 2', CAPTURE + CAPTURE.replace('gpu-1', 'gpu\u00001'), /cap\.txt:2: NUL byte: not a text file\n$/),
  ...matrixTrace('text-encoding', 'invalid-utf8', 'a capture with invalid UTF-8 on line 2', bytes(CAPTURE, '  gpu', [0xc3, 0x28], CAPTURE.slice(5)), /cap\.txt:2: not valid UTF-8 text\n$/),
  ok('report', 'text-encoding', 'bom-crlf', 'report of a data.json with a byte-order mark and CRLF line ends (accepted)', ['report', '--in', '{tmp}/d.json', '--out', '{tmp}/o.html'], /^wrote \{tmp\}\/o\.html \(1 runs\)\n$/, { files: { 'd.json': BOM + crlf(JSON.stringify(minimalData(), null, 1)) } }),
  reportText('text-encoding', 'nul', 'report of a data.json with a NUL byte on line 3', JSON.stringify(minimalData(), null, 1).replace('"tool"', '"to\u0000ol"'), /d\.json:3: NUL byte: not a text file\n$/),
  reportText('text-encoding', 'invalid-utf8', 'report of a data.json with invalid UTF-8 on line 1', bytes('{"format":"', [0xed, 0xa0, 0x80], '"}'), /d\.json:1: not valid UTF-8 text\n$/),
  ok('import-ftrace', 'text-encoding', 'crlf-bom', 'import-ftrace of a CRLF capture with a byte-order mark (accepted)', ['import-ftrace', '{tmp}/cap.txt'], /^\{"format":"ARM_64_LPAE_S1"[^\r]*\n\{"op":"map","iova":"0x100000"[^\r]*$/, { files: { 'cap.txt': BOM + '# tracer: nop\r\n' + crlf(CAPTURE) } }),
  importText('text-encoding', 'nul', 'import-ftrace of a capture with a NUL byte on line 2', CAPTURE + '\u0000\n', /cap\.txt:2: NUL byte: not a text file\n$/),
  importText('text-encoding', 'invalid-utf8', 'import-ftrace of a capture with invalid UTF-8 on line 2 (a truncated sequence at the end)', bytes(CAPTURE, '# x', [0xe2, 0x82]), /cap\.txt:2: not valid UTF-8 text\n$/),
  ok('worst-case', 'text-encoding', 'cr', 'worst-case --range with a trailing CR (from a CRLF script; accepted)', ['worst-case', '--range', '0+4K\r'], /worst case: 3 tables/),
];

// ---------------------------------------------------------------------------------------
// bounded-memory: a 1 GiB line with no newline, streamed in; memory must stay bounded.
const GIB_LINE = { fill: 'a', bytes: ONE_GIB };
const boundedMemory: CliCase[] = [
  bad('replay', 'bounded-memory', 'gib-line-stdin', 'replay of a 1 GiB line without a newline on stdin', ['replay'], /^<stdin>:1: bad-trace: line is longer than 1048576 characters/, { stdinFill: GIB_LINE, maxRssMiB: 200, stdout: /^\{"error":"bad-trace: [^\n]*\n$/ }),
  bad('import-ftrace', 'bounded-memory', 'gib-line-stdin', 'import-ftrace of a 1 GiB line without a newline on stdin', ['import-ftrace'], /<stdin>:1: line longer than 65,536 characters\n$/, { stdinFill: GIB_LINE, maxRssMiB: 200 }),
  ...MATRIX_CMDS.map((cmd) =>
    bad(cmd, 'bounded-memory', 'gib-line-trace', `${cmd} --trace /dev/stdin of a 1 GiB line without a newline`, [...MATRIX[cmd], '--trace', '/dev/stdin'], /\/dev\/stdin:1: line longer than 1,048,576 bytes\n$/, { stdinFill: GIB_LINE, maxRssMiB: 250, absent: matrixAbsent(cmd) }),
  ),
  ...MATRIX_CMDS.map((cmd) =>
    bad(cmd, 'bounded-memory', 'gib-capture', `${cmd} --trace /dev/stdin of 1 GiB of short lines (above the in-memory limit)`, [...MATRIX[cmd], '--trace', '/dev/stdin'], /\/dev\/stdin: larger than 128 MiB: too large for a --trace capture/, { stdinFill: { fill: '# x\n', bytes: ONE_GIB }, maxRssMiB: 400, absent: matrixAbsent(cmd) }),
  ),
  bad('report', 'bounded-memory', 'gib-data', 'report --in /dev/stdin of 1 GiB', ['report', '--in', '/dev/stdin', '--out', '{tmp}/o.html'], /\/dev\/stdin: larger than 64 MiB: too large for a compare data file/, { stdinFill: { fill: ' ', bytes: ONE_GIB }, maxRssMiB: 300, absent: ['{tmp}/o.html'] }),
];

// ---------------------------------------------------------------------------------------
// stdout-closed: the reader goes away (`| head -c 1`): no stack trace, no error.
const LONG_TRACE = `${HDR.replace('"dumpEvery":false', '"dumpEvery":true')}\n${Array.from({ length: 400 }, (_, i) => MAP_OP.replace('"iova":"0x1000"', `"iova":"0x${(0x1000 + i * 0x200000).toString(16)}"`)).join('\n')}\n`;
const stdoutClosed: CliCase[] = CLI_COMMANDS.map((cmd): CliCase => {
  const args = cmd === 'replay' ? ['replay', '{tmp}/t.trace.jsonl'] : cmd === 'import-ftrace' ? ['import-ftrace', '{tmp}/cap.txt'] : cmd === 'compare' ? [...BASE.compare.args] : BASE[cmd].args;
  const files = cmd === 'replay' ? { 't.trace.jsonl': LONG_TRACE } : cmd === 'import-ftrace' ? { 'cap.txt': LONG_CAPTURE } : (BASE[cmd].files ?? {});
  return { id: `hostile-${cmd}-stdout-closed`, surface: 'cli', category: 'stdout-closed', input: `${cmd} | head -c 1 (the reader closes stdout early)`, args, files, exit: 0, match: /^$/, closeStdoutAfter: 1, stdout: STACK_TRACE_FREE };
});

/** `-o` a device node: written through, and still the device afterwards (a rename would have replaced it). */
const deviceOutput: CheckCase = {
  id: 'hostile-import-ftrace-out-device-kept',
  surface: 'check',
  category: 'fs-error',
  where: 'cli: `import-ftrace`',
  input: 'import-ftrace -o a null device node (as /dev/null), run as root',
  expected: 'exit 0, and the path is still a character device (not a regular file renamed over it)',
  run() {
    const tmp = mkdtempSync(join(tmpdir(), 'iopgt-dev-'));
    writeFileSync(join(tmp, 'cap.txt'), CAPTURE);
    execFileSync('mknod', [join(tmp, 'null'), 'c', '1', '3']);
    const r = spawnSync(process.execPath, [cliBin(), 'import-ftrace', join(tmp, 'cap.txt'), '-o', join(tmp, 'null')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`import-ftrace exited ${r.status}: ${r.stderr}`);
    if (!statSync(join(tmp, 'null')).isCharacterDevice()) throw new Error('the device node was replaced by a regular file');
  },
};

export const CASES: readonly Case[] = [deviceOutput, ...usage, ...protoNames, ...deepJson, ...hugeValue, ...u64, ...fsErrors, ...partial, ...wrongShape, ...emptyInput, ...textEncoding, ...boundedMemory, ...stdoutClosed];
