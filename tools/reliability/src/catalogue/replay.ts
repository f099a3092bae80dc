/**
 * Hostile-input cases owned by the "replay" helper (issue 14): the trace format and
 * `io-pgtable replay`. They run in test/catalogue.test.ts and appear in docs/reliability.md
 * (`npm run catalogue -- --write`).
 */
import { TraceError, replayTrace } from '@io-pgtable/core';
import { HDR, tr } from './trace.js';
import type { Case, CliCase, TraceCase } from './types.js';

const PROTO_NAMES = ['toString', '__proto__', 'constructor', 'hasOwnProperty'] as const;
const MAP = (prot: string) => `{"op":"map","iova":"0x1000","paddr":"0x1000","pgsize":"0x1000","prot":${prot}}`;
const header = (extra: string) => HDR.replace(/\}$/, `,${extra}}`);
/** `depth` nested arrays: JSON.parse copes, a recursive JSON.stringify in a message does not. */
const deep = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const DEEP = deep(200_000);
/** A message may quote a value, but never more than a few hundred characters of it. */
const SHORT = /^(?=[^]{0,300}$)/;
const capped = (re: RegExp) => new RegExp(SHORT.source + re.source);

const traceCases: TraceCase[] = [
  ...PROTO_NAMES.map((n) => ({ ...tr(`trace-op-proto-${n}`, `op "${n}" (inherited from Object.prototype)`, `{"op":"${n}"}`, 2, new RegExp(`unknown op "${n}"`)), category: 'prototype-name' as const })),
  ...PROTO_NAMES.map((n) => ({ ...tr(`trace-prot-proto-${n}`, `prot ["${n}"]`, MAP(`["read","${n}"]`), 2, new RegExp(`unknown prot "${n}"`)), category: 'prototype-name' as const })),
  ...PROTO_NAMES.map((n) => ({ ...tr(`trace-quirk-proto-${n}`, `quirk "${n}"`, '', 1, new RegExp(`unknown quirk "${n}"`), header(`"quirks":["${n}"]`)), category: 'prototype-name' as const })),
  { ...tr('trace-quirk-proto-prefixed', 'quirk "IO_PGTABLE_QUIRK_constructor"', '', 1, /unknown quirk "IO_PGTABLE_QUIRK_constructor"/, header('"quirks":["IO_PGTABLE_QUIRK_constructor"]')), category: 'prototype-name' },
  { ...tr('trace-format-proto', 'format "__proto__"', '', 1, /format "__proto__" is not one of/, '{"format":"__proto__","pgsizeBitmap":"0x1000","ias":48,"oas":48}'), category: 'prototype-name' },
  { ...tr('trace-deep-op', 'op: 200,000 nested arrays', `{"op":${DEEP}}`, 2, capped(/unknown op \(an array\)/)), category: 'deep-json' },
  { ...tr('trace-deep-prot', 'prot: 200,000 nested arrays inside the list', MAP(`[${DEEP}]`), 2, capped(/unknown prot \(an array\)/)), category: 'deep-json' },
  { ...tr('trace-deep-iova', 'iova: 100,000 nested objects', `{"op":"iova_to_phys","iova":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`, 2, capped(/iova: \(an object\) is not an integer/)), category: 'deep-json' },
  { ...tr('trace-deep-quirks', 'quirks: 200,000 nested arrays', '', 1, capped(/unknown quirk \(an array\)/), header(`"quirks":[${DEEP}]`)), category: 'deep-json' },
  { ...tr('trace-deep-bool', 'coherentWalk: 200,000 nested arrays', '', 1, capped(/coherentWalk must be true or false, got \(an array\)/), header(`"coherentWalk":${DEEP}`)), category: 'deep-json' },
  { ...tr('trace-huge-hex', 'iova: a 500,000-digit hex string', `{"op":"iova_to_phys","iova":"0x${'f'.repeat(500_000)}"}`, 2, capped(/iova: "0xfff+…" \(500002 characters\) does not fit in 64 bits/)), category: 'huge-value' },
  { ...tr('trace-huge-word', 'iova: a 500,000-character word', `{"op":"iova_to_phys","iova":"${'z'.repeat(500_000)}"}`, 2, capped(/iova: "zzz+…" \(500000 characters\) is not an integer/)), category: 'huge-value' },
  { ...tr('trace-huge-number', 'iova: a 400-digit JSON number', `{"op":"iova_to_phys","iova":${'9'.repeat(400)}}`, 2, capped(/iova: 1e\+400|iova: .* is not an unsigned integer/)), category: 'huge-value' },
  { ...tr('trace-huge-key', 'an unknown key of 500,000 characters', `{"op":"free","${'k'.repeat(500_000)}":1}`, 2, capped(/unknown free key "kkk+…" \(500000 characters\)/)), category: 'huge-value' },
  { ...tr('trace-huge-line', 'a 2 MiB op line', `{"op":"iova_to_phys","iova":"0x0","pad":"${' '.repeat(2 << 20)}"}`, 2, capped(/line is longer than 1048576 characters/)), category: 'bounded-memory' },
];

const FILE = '{tmp}/case.trace.jsonl';
const GOOD = HDR + '\n{"op":"map","iova":"0x1000","paddr":"0x2000","pgsize":"0x1000","prot":["read"]}\n{"op":"free"}\n';
/** stdout of a run that must not claim any success: nothing, or only the format's bad-trace line. */
const NO_SUCCESS = /^(\{"error":"bad-trace: [^\n]*"\}\n)?$/;

const allocBase = (id: string, input: string, extra: string, match: RegExp): CliCase => ({
  id,
  surface: 'cli',
  category: 'u64-above-2p53',
  input: `replay FILE with ${input}`,
  args: ['replay', FILE],
  files: { 'case.trace.jsonl': header(extra) + '\n{"op":"iova_to_phys","iova":"0x0"}\n' },
  exit: 2,
  match,
  stdout: NO_SUCCESS,
});

const cliCases: CliCase[] = [
  allocBase('cli-allocbase-2p53', 'allocBase 2^53', '"allocBase":"0x20000000000000"', /case\.trace\.jsonl:1: bad-trace: allocBase 0x20000000000000 .*2\^53/),
  allocBase('cli-allocbase-u64-max', 'allocBase 2^64-1', '"allocBase":"0xffffffffffffffff"', /case\.trace\.jsonl:1: bad-trace: allocBase 0xffffffffffffffff .*2\^53/),
  allocBase('cli-allocbase-plus-limit', 'allocBase + allocLimit past 2^53', '"allocBase":"0x1ffffffffff000","allocLimit":"0x100000"', /case\.trace\.jsonl:1: bad-trace: allocBase 0x1ffffffffff000 .*allocLimit 0x100000.*2\^53/),
  ...(['toString', '__proto__', 'constructor'] as const).map(
    (n): CliCase => ({
      id: `cli-replay-op-proto-${n}`,
      surface: 'cli',
      category: 'prototype-name',
      input: `replay on stdin with op "${n}"`,
      args: ['replay'],
      stdin: `${HDR}\n{"op":"${n}","iova":"0x0"}\n`,
      exit: 2,
      match: new RegExp(`<stdin>:2: bad-trace: unknown op "${n}"`),
      stdout: NO_SUCCESS,
    }),
  ),
  { id: 'cli-replay-deep-stdin', surface: 'cli', category: 'deep-json', input: 'replay on stdin with 200,000 nested arrays as prot', args: ['replay'], stdin: `${HDR}\n${MAP(DEEP)}\n`, exit: 2, match: capped(/<stdin>:2: bad-trace: unknown prot \(an array\)/), stdout: NO_SUCCESS },
  { id: 'cli-replay-huge-line-stdin', surface: 'cli', category: 'bounded-memory', input: 'replay on stdin with an 8 MiB line', args: ['replay'], stdin: `${HDR}\n{"op":"iova_to_phys","iova":"0x${'0'.repeat(8 << 20)}"}\n`, exit: 2, match: /<stdin>:2: bad-trace: line is longer than 1048576 characters/, stdout: NO_SUCCESS },
  { id: 'cli-replay-out-dir-is-file', surface: 'cli', category: 'fs-error', input: 'replay --out-dir FILE (a file, not a directory)', args: ['replay', '--out-dir', '{tmp}/afile', FILE], files: { afile: 'x', 'case.trace.jsonl': GOOD }, exit: 2, match: /--out-dir \{tmp\}\/afile: .*not a directory/, stdout: /^$/ },
  { id: 'cli-replay-o-file', surface: 'cli', category: 'fs-error', input: 'replay -o FILE (a file, not a directory)', args: ['replay', '-o', '{tmp}/afile', FILE], files: { afile: 'x', 'case.trace.jsonl': GOOD }, exit: 2, match: /--out-dir \{tmp\}\/afile: .*not a directory/, stdout: /^$/ },
  { id: 'cli-replay-out-dir-under-file', surface: 'cli', category: 'fs-error', input: 'replay --out-dir FILE/sub (below a file)', args: ['replay', '--out-dir', '{tmp}/afile/sub', FILE], files: { afile: 'x', 'case.trace.jsonl': GOOD }, exit: 2, match: /--out-dir \{tmp\}\/afile\/sub: .*(not a directory|ENOTDIR)/, stdout: /^$/ },
  // /sys refuses new files even to root, so this holds in a root container too.
  { id: 'cli-replay-out-dir-readonly', surface: 'cli', category: 'fs-error', input: 'replay --out-dir /sys (not writable)', args: ['replay', '--out-dir', '/sys', FILE], files: { 'case.trace.jsonl': GOOD }, exit: 2, match: /--out-dir \/sys: cannot write there \((EACCES|EROFS|EPERM)\)/, stdout: /^$/ },
  // Node 20's recursive mkdir never returns under /proc: the CLI makes each directory itself.
  { id: 'cli-replay-out-dir-proc', surface: 'cli', category: 'fs-error', input: 'replay --out-dir /proc/x (a pseudo file system that refuses new entries)', args: ['replay', '--out-dir', '/proc/iopgt-out', FILE], files: { 'case.trace.jsonl': GOOD }, exit: 2, match: /--out-dir \/proc\/iopgt-out: cannot create directory: E[A-Z]+/, stdout: /^$/ },
  {
    id: 'cli-replay-2nd-of-3-bad',
    surface: 'cli',
    category: 'fs-error',
    input: 'replay --out-dir DIR a b c, b malformed',
    args: ['replay', '--out-dir', '{tmp}/out', '{tmp}/a.trace.jsonl', '{tmp}/b.trace.jsonl', '{tmp}/c.trace.jsonl'],
    files: { 'a.trace.jsonl': GOOD, 'b.trace.jsonl': HDR + '\n{"op":"map",\n', 'c.trace.jsonl': GOOD },
    exit: 2,
    match: /\{tmp\}\/b\.trace\.jsonl:2: bad-trace: not valid JSON/,
    stdout: /wrote \{tmp\}\/out\/a\.result\.jsonl[^]*wrote \{tmp\}\/out\/c\.result\.jsonl[^]*^replay: 3 traces: 2 written, 0 matched, 0 differed, 1 failed$/m,
  },
  {
    id: 'cli-replay-2nd-of-3-missing',
    surface: 'cli',
    category: 'fs-error',
    input: 'replay --out-dir DIR a b c, b missing',
    args: ['replay', '--out-dir', '{tmp}/out', '{tmp}/a.trace.jsonl', '{tmp}/b.trace.jsonl', '{tmp}/c.trace.jsonl'],
    files: { 'a.trace.jsonl': GOOD, 'c.trace.jsonl': GOOD },
    exit: 2,
    match: /\{tmp\}\/b\.trace\.jsonl: cannot read: ENOENT/,
    stdout: /wrote \{tmp\}\/out\/a\.result\.jsonl[^]*wrote \{tmp\}\/out\/c\.result\.jsonl[^]*^replay: 3 traces: 2 written, 0 matched, 0 differed, 1 failed$/m,
  },
  {
    id: 'cli-replay-2nd-of-3-dir',
    surface: 'cli',
    category: 'fs-error',
    input: 'replay --out-dir DIR a b c, b a directory without traces',
    args: ['replay', '--out-dir', '{tmp}/out', '{tmp}/a.trace.jsonl', '{tmp}/b', '{tmp}/c.trace.jsonl'],
    files: { 'a.trace.jsonl': GOOD, 'c.trace.jsonl': GOOD },
    dirs: ['b'],
    exit: 2,
    match: /\{tmp\}\/b: directory holds no \*\.trace\.jsonl files/,
    stdout: /wrote \{tmp\}\/out\/a\.result\.jsonl[^]*wrote \{tmp\}\/out\/c\.result\.jsonl[^]*^replay: 3 traces: 2 written, 0 matched, 0 differed, 1 failed$/m,
  },
  {
    id: 'cli-replay-2nd-of-3-allocbase',
    surface: 'cli',
    category: 'u64-above-2p53',
    input: 'replay --check a b c, b with allocBase 2^60',
    args: ['replay', '--check', '{tmp}/a.trace.jsonl', '{tmp}/b.trace.jsonl', '{tmp}/c.trace.jsonl'],
    files: { 'a.trace.jsonl': GOOD, 'a.expected.jsonl': '', 'b.trace.jsonl': header('"allocBase":"0x1000000000000000"') + '\n', 'c.trace.jsonl': GOOD },
    exit: 2,
    match: /\{tmp\}\/b\.trace\.jsonl:1: bad-trace: allocBase 0x1000000000000000 /,
    // Two problems, one line each: b is malformed, and c has no expected file.
    stderrLines: 2,
    stdout: /^replay: 3 traces: 0 written, 0 matched, 1 differed, 2 failed$/m,
  },
];

export const CASES: readonly Case[] = [
  ...traceCases,
  ...cliCases,
  {
    id: 'api-replay-allocbase-2p53',
    surface: 'check',
    category: 'u64-above-2p53',
    where: 'replayTrace',
    input: 'a trace whose allocBase is 2^53',
    expected: 'TraceError at line 1 naming allocBase in hex (no bigint "n" suffix)',
    run() {
      let threw: unknown;
      try {
        replayTrace(header('"allocBase":"0x20000000000000"') + '\n', 'x.trace.jsonl');
      } catch (e) {
        threw = e;
      }
      if (!(threw instanceof TraceError)) throw new Error(`expected a TraceError, got ${String(threw)}`);
      if (threw.line !== 1 || !/^allocBase 0x20000000000000 /.test(threw.detail) || /0x[0-9a-f]+n\b/.test(threw.detail)) {
        throw new Error(`unexpected TraceError: ${threw.message}`);
      }
    },
  },
];
