/**
 * A small command framework over node:util parseArgs: every command declares its
 * options once, and `--help` and the usage errors are generated from that.
 */
import { parseArgs } from 'node:util';
import { EXAMPLES } from './examples.js';
import { CliError, EXIT_USAGE, quote, type Io } from './io.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder in help, e.g. DIR. */
  arg?: string;
  help: string;
  default?: string | boolean;
}

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

export interface Command {
  name: string;
  summary: string;
  /** Usage line(s) after `io-pgtable NAME`. */
  usage: string[];
  /** Longer description and examples. */
  description?: string;
  options: Record<string, OptionSpec>;
  /** Returns the exit status. */
  run(args: Parsed, io: Io): Promise<number>;
}

/** Options every command accepts. */
export const COMMON_OPTIONS: Record<string, OptionSpec> = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  json: { type: 'boolean', help: 'machine-readable JSON output on stdout' },
};

/**
 * Parse `argv` against the command's options. Unknown options, missing values and an
 * option given twice that takes one value (which would silently keep the last) are usage
 * errors; `--help`/`-h` anywhere before `--` wins over every other argument, good or bad.
 */
export function parseCommandArgs(cmd: Command, argv: string[]): Parsed {
  const end = argv.indexOf('--');
  const before = end === -1 ? argv : argv.slice(0, end);
  if (before.includes('--help') || before.includes('-h')) return { values: { help: true }, positionals: [] };
  const all: Record<string, OptionSpec> = { ...COMMON_OPTIONS, ...cmd.options };
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [k, o] of Object.entries(all)) {
    options[k] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  const usage = (msg: string) => new CliError(`${msg}\nRun 'io-pgtable ${cmd.name} --help' for usage.`, EXIT_USAGE);
  let r;
  try {
    r = parseArgs({ args: argv, options, allowPositionals: true, strict: true, tokens: true });
  } catch (e) {
    throw usage((e as Error).message);
  }
  const seen = new Set<string>();
  for (const t of r.tokens) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name) && Object.hasOwn(all, t.name) && all[t.name]!.multiple !== true) throw usage(`--${t.name} given more than once (it takes one value)`);
    seen.add(t.name);
  }
  return { values: r.values as Parsed['values'], positionals: r.positionals };
}

export function commandHelp(cmd: Command): string {
  const all = { ...cmd.options, ...COMMON_OPTIONS };
  const rows = Object.entries(all).map(([k, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${k}${o.type === 'string' ? ` ${o.arg ?? 'VALUE'}` : ''}`;
    const dflt = o.default !== undefined && o.default !== false ? ` (default: ${o.default})` : '';
    return [flag, o.help + dflt] as const;
  });
  const w = Math.max(...rows.map((r) => r[0].length)) + 2;
  // A description may carry its own examples; otherwise they come from examples.ts.
  const examples = cmd.description?.includes('\nExamples:') || !Object.hasOwn(EXAMPLES, cmd.name) ? [] : EXAMPLES[cmd.name]!;
  return [
    `io-pgtable ${cmd.name} — ${cmd.summary}`,
    '',
    'Usage:',
    ...cmd.usage.map((u) => `  io-pgtable ${cmd.name} ${u}`),
    ...(cmd.description ? ['', cmd.description.trimEnd()] : []),
    ...(examples.length ? ['', 'Examples:', ...examples.map((e) => `  ${e}`)] : []),
    '',
    'Options:',
    ...rows.map(([f, h]) => `  ${f.padEnd(w)}${h}`),
    '',
  ].join('\n');
}

export function str(p: Parsed, key: string): string | undefined {
  const v = p.values[key];
  return typeof v === 'string' ? v : undefined;
}

export function flag(p: Parsed, key: string): boolean {
  return p.values[key] === true;
}

/** A non-negative integer option (decimal or 0x hex), with a usage error naming the option. */
export function intOpt(p: Parsed, key: string, dflt: number): number {
  const v = str(p, key);
  if (v === undefined) return dflt;
  if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(v)) throw new CliError(`--${key}: ${quote(v)} is not a non-negative integer`, EXIT_USAGE);
  // BigInt first: Number() of a value at or above 2^53 rounds it to a different integer.
  const big = BigInt(v);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new CliError(`--${key}: ${quote(v)} is too large (at most ${Number.MAX_SAFE_INTEGER}, 2^53-1)`, EXIT_USAGE);
  return Number(big);
}

/**
 * `name` if it is one of `choices`, else a usage error naming the option. Array
 * membership, never `name in obj`: `toString`, `__proto__` and `constructor` are "in"
 * every object literal.
 */
export function oneOf<T extends string>(name: string, choices: readonly T[], what: string): T {
  if ((choices as readonly string[]).includes(name)) return name as T;
  throw new CliError(`${what}: ${quote(name)} is not one of ${choices.join(', ')}`, EXIT_USAGE);
}

/** `table[name]` for an own property only (see {@link oneOf}), else a usage error naming the option. */
export function lookup<T>(table: Readonly<Record<string, T>>, name: string, what: string): T {
  if (Object.hasOwn(table, name)) return table[name]!;
  throw new CliError(`${what}: ${quote(name)} is not one of ${Object.keys(table).join(', ')}`, EXIT_USAGE);
}

/** A comma-separated option value as its non-empty items. */
export function listOpt(p: Parsed, key: string, dflt = ''): string[] {
  const v = str(p, key) ?? dflt;
  return v === '' ? [] : v.split(',').map((s) => s.trim()).filter(Boolean);
}

/** An unsigned 64-bit option (decimal or 0x hex) as a BigInt, with a usage error naming the option. */
export function u64Opt(p: Parsed, key: string, dflt: bigint): bigint {
  const v = str(p, key);
  if (v === undefined) return dflt;
  if (!/^(0x[0-9a-f]{1,16}|[0-9]{1,20})$/i.test(v)) throw new CliError(`--${key}: ${quote(v)} is not an unsigned 64-bit integer (decimal or 0x hex)`, EXIT_USAGE);
  const n = BigInt(v);
  if (n >= 1n << 64n) throw new CliError(`--${key}: ${quote(v)} does not fit in 64 bits`, EXIT_USAGE);
  return n;
}
