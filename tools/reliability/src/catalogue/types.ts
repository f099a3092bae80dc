/**
 * The shapes of a hostile-input catalogue case. Each helper adds cases in a file of their
 * own (`<helper>.ts` in this folder, one line in `index.ts`); one list drives the tests
 * (test/catalogue.test.ts) and the table in docs/reliability.md (render.ts), so the two
 * cannot drift.
 */
import type { TableAllocator } from '@io-pgtable/allocator-api';
import type { PageTable, PhysMemory } from '@io-pgtable/core';

/**
 * The classes of hostile input the project promises to handle (issue 14). The docs table
 * counts cases per class and surface, so a missing pairing shows.
 */
export const CLASSES = {
  'bad-value': 'a malformed, mistyped or out-of-range value',
  'prototype-name': 'a name inherited from Object.prototype (toString, __proto__, constructor)',
  'deep-json': 'deeply nested JSON',
  'u64-above-2p53': 'a legal u64 at or above 2^53',
  'fs-error': 'a file-system error (missing, a directory, a file where a directory belongs, read-only)',
  'wrong-shape': 'a well-formed file of the wrong shape',
  'huge-value': 'a huge value that must not be echoed whole',
  'expansion-limit': 'input that expands beyond a limit',
  'bounded-memory': 'input whose size must not grow memory',
  'html-injection': 'hostile strings inserted into HTML',
  'reentrancy': 'an allocator calling back into the page table',
  'throwing-hook': 'an allocator or hook that throws',
  'leak-after-fault': 'a fault that must not leak pages',
  'write-protection': 'a host write to memory assigned away from the host',
  'rerun-command': 'a printed re-run command that must reproduce as printed',
  usage: 'an unknown option, a missing option value, an option given twice; --help with anything',
  'text-encoding': 'CRLF line ends, a byte-order mark (both accepted), NUL bytes, invalid UTF-8',
  'empty-input': 'an empty file or an empty stdin',
  'partial-failure': 'a failure in the 2nd of several inputs (the rest still run; a summary says what happened to each)',
  'stdout-closed': 'stdout closed early (EPIPE, `| head -1`) or full (/dev/full)',
} as const;
export type IssueClass = keyof typeof CLASSES;

export type Expect =
  | { kind: 'errno'; code: string; match: RegExp }
  | { kind: 'throw'; cls: string; code?: string; match: RegExp }
  | { kind: 'ret'; value: number };

/** What an API case runs on; `makeFixture` (fixture.ts) builds the default one. */
export interface Fixture {
  pt: PageTable;
  /** The top of the stack the page table allocates from. */
  allocator: TableAllocator;
  memory: PhysMemory;
  /** `[base, bytes)` of memory the snapshot hashes. */
  region: readonly [number, number];
  /** More state the snapshot must see unchanged (e.g. page ownership in the SCM mock). */
  observe?: () => unknown;
  /** What a case's `prepare` leaves for its `act`. */
  extra: Record<string, unknown>;
}

interface Common {
  /** Unique across the whole catalogue; prefix it with your surface or command. */
  id: string;
  /** The class of issue 14 this case belongs to (default `bad-value`). */
  category?: IssueClass;
  /** The hostile input, in words, for the docs table. */
  input: string;
}

/** A public API call that must fail with a typed error and leave every observable state unchanged. */
export interface ApiCase extends Common {
  surface: 'api';
  call: string;
  expect: Expect;
  /** Build the fixture (default: `makeFixture`). */
  fixture?: () => Fixture;
  /** Runs before the "before" snapshot. */
  prepare?(f: Fixture): void;
  act(f: Fixture): unknown;
}

/** A trace that `parseTrace` and `replayTrace` must reject with a TraceError at `line`. */
export interface TraceCase extends Common {
  surface: 'trace';
  /** Trace text; the header line is line 1. */
  text: string;
  line: number;
  match: RegExp;
}

/**
 * A CLI run: `node tools/cli/dist/bin.js ...args`. Each case gets a fresh temporary
 * directory; `{tmp}` in an argument (and in `stderr`/`stdout` before matching) is that
 * directory. Exit status 2 additionally requires stderr free of stack traces.
 */
export interface CliCase extends Common {
  surface: 'cli';
  args: string[];
  /** Files to create in `{tmp}` first (relative path -> content). */
  files?: Record<string, string | Uint8Array>;
  /** Empty directories to create in `{tmp}`. */
  dirs?: string[];
  /** More set-up in `{tmp}` (e.g. chmod), run after files and dirs. */
  setup?(tmp: string): void;
  stdin?: string;
  exit: number;
  /** What stderr must match. */
  match: RegExp;
  /** What stdout must match (e.g. /^$/: nothing claiming success). */
  stdout?: RegExp;
  /**
   * Lines stderr must have. Default: exactly 1 when `exit` is 2 (one message naming the
   * problem); unchecked otherwise.
   */
  stderrLines?: number;
  /** Paths (under `{tmp}` or absolute) that must not exist afterwards: no output claims success. */
  absent?: string[];
  /** Stdin as `bytes` bytes of `fill` repeated (e.g. a 1 GB line), written with backpressure until the CLI stops reading. */
  stdinFill?: { fill: string; bytes: number };
  /** Where the CLI's stdout goes instead of a pipe (e.g. /dev/full). */
  stdoutTo?: string;
  /** Close the read end of stdout after this many bytes (`| head -c N`). */
  closeStdoutAfter?: number;
  /** Peak RSS the CLI may reach, MiB (getrusage, read at its exit). */
  maxRssMiB?: number;
  /** Wall time the run may take, ms (default 60 s): a hang fails the case. */
  timeoutMs?: number;
}

/**
 * Anything the three shapes above cannot express (a browser page, a memory bound, a
 * printed command re-run): `run` throws (an assertion) unless the behaviour holds.
 */
export interface CheckCase extends Common {
  surface: 'check';
  /** Where, for the docs table: a command, an API, a script. */
  where: string;
  /** The expected outcome in words. */
  expected: string;
  run(): void | Promise<void>;
}

export type Case = ApiCase | TraceCase | CliCase | CheckCase;
