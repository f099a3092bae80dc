/**
 * Hostile-input cases owned by the "cli-input" helper: the CLI's shared argument and file
 * handling (every command), import-ftrace and worst-case. Each runs the built bin as a
 * user would (test/catalogue.test.ts) and appears in docs/reliability.md.
 */
import type { Case, CliCase } from './types.js';

const HDR = '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48,"quirks":[],"coherentWalk":true,"dumpEvery":false}';
const h16 = (v: bigint): string => '0x' + v.toString(16).padStart(16, '0');
/** One tracefs map line (v5.17+ layout). */
const mapLine = (iova: bigint, paddr: bigint, size: bigint, event = 'map'): string =>
  `     panthor-vm-812     [002] ..... 10421.518337: ${event}: IOMMU: iova=${h16(iova)} - ${h16((iova + size) & ((1n << 64n) - 1n))} paddr=${h16(paddr)} size=${size}`;
const CAPTURE = mapLine(0x200000n, 0x80000000n, 0x200000n) + '\n';
/** Nested JSON deeper than any stack: 200,000 arrays. */
const DEEP = '['.repeat(200_000) + ']'.repeat(200_000);
const DEEP_TRACE = `{"format":${DEEP}}\n`;
const HUGE = '9'.repeat(100_000); // under the kernel's 128 KiB limit for one argument
/** The whole of stderr is one short line (the message is capped, never the 100 KB value). */
const SHORT_ONE_LINE = /^[^\n]{1,700}\n$/;

const PROTO_NAMES = ['toString', '__proto__', 'constructor'] as const;

/** Prototype names in every name-taking option of every command. */
const prototypeCases: CliCase[] = PROTO_NAMES.flatMap((n): CliCase[] => [
  { id: `cli-import-ftrace-prot-${n}`, surface: 'cli', category: 'prototype-name', input: `import-ftrace --prot ${n}`, args: ['import-ftrace', '--prot', n], stdin: CAPTURE, exit: 2, match: /--prot: ".+" is not one of read, write/, stdout: /^$/ },
  { id: `cli-import-ftrace-quirks-${n}`, surface: 'cli', category: 'prototype-name', input: `import-ftrace --quirks ${n}`, args: ['import-ftrace', '--quirks', n], stdin: CAPTURE, exit: 2, match: /--quirks: ".+" is not one of ARM_NS/, stdout: /^$/ },
  { id: `cli-import-ftrace-format-${n}`, surface: 'cli', category: 'prototype-name', input: `import-ftrace --format ${n}`, args: ['import-ftrace', '--format', n], stdin: CAPTURE, exit: 2, match: /--format: ".+" is not one of ARM_32_LPAE_S1/, stdout: /^$/ },
  { id: `cli-worst-case-granule-${n}`, surface: 'cli', category: 'prototype-name', input: `worst-case --granule ${n}`, args: ['worst-case', '--granule', n, '--range', '0+4K'], exit: 2, match: /--granule: ".+" is not one of 4K, 16K, 64K/, stdout: /^$/ },
  { id: `cli-worst-case-merge-${n}`, surface: 'cli', category: 'prototype-name', input: `worst-case --merge ${n}`, args: ['worst-case', '--merge', n, '--range', '0+4K'], exit: 2, match: /--merge: ".+" is not one of per-op, msm, union/, stdout: /^$/ },
  { id: `cli-worst-case-split-${n}`, surface: 'cli', category: 'prototype-name', input: `worst-case --split ${n}`, args: ['worst-case', '--split', n, '--range', '0+4K'], exit: 2, match: /--split: ".+" is not one of none, split/, stdout: /^$/ },
  { id: `cli-simulate-workload-${n}`, surface: 'cli', category: 'prototype-name', input: `simulate --workload ${n}`, args: ['simulate', '--workload', n], exit: 2, match: /--workload: unknown workload/, stdout: /^$/ },
  { id: `cli-bench-stack-${n}`, surface: 'cli', category: 'prototype-name', input: `bench --stack ${n}`, args: ['bench', '--stack', n, '--reps', '1'], exit: 2, match: /--stack: unknown stack/, stdout: /^$/ },
  { id: `cli-compare-workload-${n}`, surface: 'cli', category: 'prototype-name', input: `compare --workload ${n}`, args: ['compare', '--workload', n, '--out-dir', '{tmp}/r'], exit: 2, match: /--workload: unknown workload/, stdout: /^$/ },
  { id: `cli-command-${n}`, surface: 'cli', category: 'prototype-name', input: `a command named ${n}`, args: [n], exit: 2, match: /unknown command/, stdout: /^$/ },
  { id: `cli-option-${n}`, surface: 'cli', category: 'prototype-name', input: `an option named --${n}`, args: ['replay', `--${n}`], exit: 2, match: /Unknown option/, stdout: /^$/ },
]);

const cases: CliCase[] = [
  // Deeply nested JSON in every JSON input: a trace (replay, simulate/compare/bench --trace).
  { id: 'cli-replay-deep-json', surface: 'cli', category: 'deep-json', input: 'replay of a trace whose header nests 200,000 arrays', args: ['replay', '{tmp}/deep.trace.jsonl'], files: { 'deep.trace.jsonl': DEEP_TRACE }, exit: 2, match: SHORT_ONE_LINE },
  { id: 'cli-replay-deep-json-stdin', surface: 'cli', category: 'deep-json', input: 'replay of a 200,000-deep header on stdin', args: ['replay'], stdin: DEEP_TRACE, exit: 2, match: SHORT_ONE_LINE },
  { id: 'cli-simulate-deep-json', surface: 'cli', category: 'deep-json', input: 'simulate --trace of a 200,000-deep trace header', args: ['simulate', '--workload', 'trace-replay', '--stack', 'system', '--trace', '{tmp}/deep.trace.jsonl'], files: { 'deep.trace.jsonl': DEEP_TRACE }, stderrLines: 2, exit: 2, match: /nested too deeply|deep/ },
  { id: 'cli-compare-deep-json', surface: 'cli', category: 'deep-json', input: 'compare --trace of a 200,000-deep trace header', args: ['compare', '--workload', 'trace-replay', '--stack', 'system', '--trace', '{tmp}/deep.trace.jsonl', '--out-dir', '{tmp}/r'], files: { 'deep.trace.jsonl': DEEP_TRACE }, stderrLines: 2, exit: 2, match: /nested too deeply|deep/ },
  { id: 'cli-bench-deep-json', surface: 'cli', category: 'deep-json', input: 'bench --trace of a 200,000-deep trace header', args: ['bench', '--reps', '1', '--workload', 'trace-replay', '--stack', 'system', '--trace', '{tmp}/deep.trace.jsonl'], files: { 'deep.trace.jsonl': DEEP_TRACE }, stderrLines: 2, exit: 2, match: /nested too deeply|deep/ },

  // File-system errors: one line naming the path, exit 2.
  { id: 'cli-compare-out-dir-file', surface: 'cli', category: 'fs-error', input: 'compare --out-dir naming a file', args: ['compare', '--workload', 'random-churn', '--stack', 'system', '--scale', '0.01', '--out-dir', '{tmp}/file'], files: { file: 'x' }, exit: 2, match: /\{tmp\}\/file: cannot (create directory|write the report): EEXIST/ },
  { id: 'cli-compare-out-dir-readonly', surface: 'cli', category: 'fs-error', input: 'compare --out-dir on a read-only file system (/sys)', args: ['compare', '--workload', 'random-churn', '--stack', 'system', '--scale', '0.01', '--out-dir', '/sys/iopgt-report'], exit: 2, match: /\/sys\/iopgt-report: cannot (create directory|write the report): E[A-Z]+/ },
  { id: 'cli-compare-out-dir-proc', surface: 'cli', category: 'fs-error', input: 'compare --out-dir /proc/x (recursive mkdir never returns there)', args: ['compare', '--workload', 'random-churn', '--stack', 'system', '--scale', '0.01', '--out-dir', '/proc/iopgt-report'], exit: 2, match: /\/proc\/iopgt-report: cannot (create directory|write the report): E[A-Z]+/ },
  { id: 'cli-simulate-trace-dir', surface: 'cli', category: 'fs-error', input: 'simulate --trace naming a directory', args: ['simulate', '--workload', 'trace-replay', '--stack', 'system', '--trace', '{tmp}/d'], dirs: ['d'], exit: 2, match: /\{tmp\}\/d: (cannot read: EISDIR|is a directory)/ },
  { id: 'cli-bench-trace-dir', surface: 'cli', category: 'fs-error', input: 'bench --trace naming a directory', args: ['bench', '--reps', '1', '--workload', 'trace-replay', '--stack', 'system', '--trace', '{tmp}/d'], dirs: ['d'], exit: 2, match: /\{tmp\}\/d: (cannot read: EISDIR|is a directory)/ },
  { id: 'cli-simulate-trace-missing', surface: 'cli', category: 'fs-error', input: 'simulate --trace of a missing file', args: ['simulate', '--workload', 'trace-replay', '--trace', '{tmp}/none.jsonl'], exit: 2, match: /\{tmp\}\/none\.jsonl: cannot read: ENOENT/ },
  { id: 'cli-report-in-dir', surface: 'cli', category: 'fs-error', input: 'report --in naming a directory', args: ['report', '--in', '{tmp}/d'], dirs: ['d'], exit: 2, match: /\{tmp\}\/d: (cannot read: EISDIR|is a directory)/ },
  { id: 'cli-replay-out-dir-file', surface: 'cli', category: 'fs-error', input: 'replay --out-dir naming a file', args: ['replay', '--out-dir', '{tmp}/file', '{tmp}/t.trace.jsonl'], files: { file: 'x', 't.trace.jsonl': HDR + '\n' }, exit: 2, match: /\{tmp\}\/file: cannot create directory: EEXIST/ },
  { id: 'cli-import-ftrace-input-dir', surface: 'cli', category: 'fs-error', input: 'import-ftrace of a directory', args: ['import-ftrace', '{tmp}/d'], dirs: ['d'], exit: 2, match: /\{tmp\}\/d: cannot read: EISDIR/, stdout: /^$/ },
  { id: 'cli-import-ftrace-input-missing', surface: 'cli', category: 'fs-error', input: 'import-ftrace of a missing file', args: ['import-ftrace', '{tmp}/none.txt'], exit: 2, match: /\{tmp\}\/none\.txt: cannot read: ENOENT/, stdout: /^$/ },
  { id: 'cli-import-ftrace-out-dir', surface: 'cli', category: 'fs-error', input: 'import-ftrace -o naming a directory', args: ['import-ftrace', '-o', '{tmp}/d'], dirs: ['d'], stdin: CAPTURE, exit: 2, match: /\{tmp\}\/d: cannot write: EISDIR/, stdout: /^$/ },
  { id: 'cli-import-ftrace-out-missing-dir', surface: 'cli', category: 'fs-error', input: 'import-ftrace -o into a missing directory', args: ['import-ftrace', '-o', '{tmp}/no/x.trace.jsonl'], stdin: CAPTURE, exit: 2, match: /^io-pgtable import-ftrace: \{tmp\}\/no\/x\.trace\.jsonl: cannot write: ENOENT[^\n]*\n$/, stdout: /^$/ },
  { id: 'cli-import-ftrace-out-readonly', surface: 'cli', category: 'fs-error', input: 'import-ftrace -o on a read-only file system (/sys)', args: ['import-ftrace', '-o', '/sys/iopgt.trace.jsonl'], stdin: CAPTURE, exit: 2, match: /\/sys\/iopgt\.trace\.jsonl: cannot write: E[A-Z]+/, stdout: /^$/ },

  // Huge values: the message is capped, never the value echoed.
  { id: 'cli-simulate-huge-seed', surface: 'cli', category: 'huge-value', input: 'simulate --seed of 100,000 digits', args: ['simulate', '--seed', HUGE], exit: 2, match: SHORT_ONE_LINE },
  { id: 'cli-bench-huge-reps', surface: 'cli', category: 'huge-value', input: 'bench --reps of 100,000 digits', args: ['bench', '--reps', HUGE], exit: 2, match: SHORT_ONE_LINE },
  { id: 'cli-compare-huge-scale', surface: 'cli', category: 'huge-value', input: 'compare --scale of 100,000 digits', args: ['compare', '--scale', HUGE, '--out-dir', '{tmp}/r'], exit: 2, match: SHORT_ONE_LINE },
  { id: 'cli-worst-case-huge-iova', surface: 'cli', category: 'huge-value', input: 'worst-case --range with a 100,000-digit iova', args: ['worst-case', '--range', `${HUGE}+4K`], exit: 2, match: SHORT_ONE_LINE },
  { id: 'cli-import-ftrace-huge-size', surface: 'cli', category: 'huge-value', input: 'import-ftrace of a map whose size has 50,000 digits', args: ['import-ftrace'], stdin: mapLine(0n, 0n, 0x1000n).replace('size=4096', `size=${'9'.repeat(50_000)}`) + '\n', exit: 2, match: /^io-pgtable import-ftrace: <stdin>:1: size does not fit in 64 bits\n$/, stdout: /^$/ },
  { id: 'cli-import-ftrace-huge-line', surface: 'cli', category: 'huge-value', input: 'import-ftrace of one 300,000-character line', args: ['import-ftrace'], stdin: mapLine(0n, 0n, 0x1000n).replace('size=4096', `size=${'9'.repeat(300_000)}`) + '\n', exit: 2, match: /<stdin>:1: line longer than 65,536 characters\n$/, stdout: /^$/ },
  { id: 'cli-import-ftrace-bitmap-u64', surface: 'cli', category: 'huge-value', input: 'import-ftrace --bitmap above 2^64 (no BigInt printed as 0x...n)', args: ['import-ftrace', '--bitmap', '0x10000000000000000'], stdin: CAPTURE, exit: 2, match: /^(?![\s\S]*0x[0-9a-f]+n\b)io-pgtable import-ftrace: --bitmap: "0x10000000000000000" is not an unsigned 64-bit integer/, stdout: /^$/ },

  // Expansion limits and traces replay would reject.
  { id: 'cli-import-ftrace-expansion', surface: 'cli', category: 'expansion-limit', input: 'import-ftrace of one 60-byte line that expands to 261,634 map_pages calls', args: ['import-ftrace', '--bitmap', '0x1000', '-o', '{tmp}/out.jsonl'], stdin: '  a-1 [000] 1.0: map: IOMMU: iova=0x0 paddr=0x1000 size=548719198208\n', exit: 2, match: /<stdin>:1: map of 0x0 \+ 0x7fc2368000 becomes more than 16,384 map_pages calls; raise the limit with --max-ops-per-event N/, stdout: /^$/ },
  { id: 'cli-import-ftrace-ttbr1-wrap', surface: 'cli', category: 'expansion-limit', input: 'import-ftrace of a TTBR1 map whose range wraps past 2^64', args: ['import-ftrace', '--quirks', 'ARM_TTBR1'], stdin: '  a-1 [000] ..... 1.0: map: IOMMU: iova=0xfffffffffffff000 paddr=0x0000000080000000 size=8192\n', exit: 2, match: /<stdin>:1: iova 0xfffffffffffff000 \+ size 0x2000 wraps past 2\^64/, stdout: /^$/ },
  { id: 'cli-import-ftrace-marker', surface: 'cli', category: 'bad-value', input: 'import-ftrace of trace_marker lines that read "map: IOMMU: ..."', args: ['import-ftrace'], stdin: mapLine(0x1000n, 0x2000n, 0x1000n, 'tracing_mark_write: map') + '\n', exit: 2, match: /no iommu map\/unmap events found/, stdout: /^$/ },

  // worst-case: a page size the kernel's map_pages refuses.
  { id: 'cli-worst-case-pgsize-not-in-bitmap', surface: 'cli', category: 'bad-value', input: 'worst-case --bitmap 0x1000 --range 0+2M@2M (a block size outside the bitmap)', args: ['worst-case', '--bitmap', '0x1000', '--range', '0+2M@2M'], exit: 2, match: /--range #1: @PGSIZE 0x200000 is not in the page-size bitmap 0x1000: map_pages returns -EINVAL/, stdout: /^$/ },
];

export const CASES: readonly Case[] = [...prototypeCases, ...cases];
