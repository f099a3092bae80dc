/** `io-pgtable replay` on missing files, empty directories, bad flags and every bad trace. */
import { CASES as TRACE_CASES, HDR } from './trace.js';
import type { CliCase } from './types.js';

const FILE = '{tmp}/case.trace.jsonl';

export const CASES: readonly CliCase[] = [
  { id: 'cli-missing-file', surface: 'cli', category: 'fs-error', input: 'replay of a file that does not exist', args: ['replay', '/nonexistent/x.trace.jsonl'], exit: 2, match: /\/nonexistent\/x\.trace\.jsonl: .*cannot read: ENOENT/ },
  { id: 'cli-empty-dir', surface: 'cli', category: 'fs-error', input: 'replay of a directory without traces', args: ['replay', '{tmp}/empty'], dirs: ['empty'], exit: 2, match: /directory holds no \*\.trace\.jsonl files/ },
  { id: 'cli-unknown-flag', surface: 'cli', input: 'replay --bogus', args: ['replay', '--bogus', FILE], files: { 'case.trace.jsonl': HDR + '\n' }, exit: 2, match: /bogus/ },
  // Every trace case also runs through the CLI (exit 2, FILE:LINE in the message).
  ...TRACE_CASES.map((t): CliCase => ({
    id: `cli-${t.id}`,
    surface: 'cli',
    ...(t.category ? { category: t.category } : {}),
    input: `replay FILE with ${t.input}`,
    args: ['replay', FILE],
    files: { 'case.trace.jsonl': t.text },
    exit: 2,
    match: new RegExp(`\\{tmp\\}/case\\.trace\\.jsonl:${t.line}: .*${t.match.source}`),
  })),
];
