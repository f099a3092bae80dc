/** Entry point shared by the bin and the tests: dispatch, help, and error-to-exit-status mapping. */
import { commandHelp, parseCommandArgs, type Command } from './command.js';
import { commands } from './commands/index.js';
import { CliError, EXIT_FAIL, EXIT_OK, EXIT_USAGE, fsError, isFsError, processIo, quote, type Io } from './io.js';

export const VERSION = '0.1.0';

function globalHelp(): string {
  const w = Math.max(...commands.map((c) => c.name.length)) + 2;
  return [
    'io-pgtable — the Linux io-pgtable (ARM LPAE) model and its page-table allocator plugins',
    '',
    'Usage: io-pgtable <command> [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(w)}${c.summary}`),
    '',
    'Every command takes --help and --json. Exit status: 0 success, 1 a check failed, 2 bad input.',
    'Colour follows NO_COLOR / FORCE_COLOR; progress bars appear only on a terminal outside CI.',
    '',
  ].join('\n');
}

/** Run the CLI with `argv` (without node and script); returns the exit status. */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const target = name === 'help' && rest[0] ? commands.find((c) => c.name === rest[0]) : undefined;
    io.stdout.write(target ? commandHelp(target) : globalHelp());
    return name === undefined ? EXIT_USAGE : EXIT_OK;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`${VERSION}\n`);
    return EXIT_OK;
  }
  const cmd: Command | undefined = commands.find((c) => c.name === name);
  if (!cmd) return reportError(new CliError(`unknown command ${quote(name)}; commands: ${commands.map((c) => c.name).join(', ')}`, EXIT_USAGE), undefined, rest.includes('--json'), io);
  return runCommand(cmd, rest, io);
}

/**
 * Run one command with its arguments: the one place where options are parsed and every
 * error becomes a message and an exit status (see {@link toCliError}).
 */
export async function runCommand(cmd: Command, argv: string[], io: Io): Promise<number> {
  const wantsJson = argv.includes('--json');
  try {
    const args = parseCommandArgs(cmd, argv);
    if (args.values.help === true) {
      io.stdout.write(commandHelp(cmd));
      return EXIT_OK;
    }
    return await cmd.run(args, io);
  } catch (e) {
    return reportError(e, cmd, wantsJson, io);
  }
}

/** What a failed system call was doing, in words (`open` serves reads and writes alike). */
const FS_VERBS: Readonly<Record<string, string>> = Object.freeze(
  Object.assign(Object.create(null) as Record<string, string>, {
    open: 'open',
    read: 'read',
    scandir: 'read',
    stat: 'read',
    lstat: 'read',
    access: 'read',
    mkdir: 'create directory',
    write: 'write',
    rename: 'write',
    copyfile: 'write',
    unlink: 'remove',
    rmdir: 'remove',
  }),
);

/** Input errors thrown by the packages (they carry the line): bad input, exit 2. */
const INPUT_ERRORS = new Set(['TraceError', 'FtraceError', 'CountError']);

/**
 * Every failure, whatever threw it, becomes one line on stderr (and one JSON object with
 * --json) and an exit status: 2 for bad input or usage (a CliError, a file-system error,
 * a package's input error, input too deep for the stack), 1 for a bug. The stack trace
 * is printed only with IOPGT_DEBUG=1.
 */
export function toCliError(e: unknown): CliError {
  if (e instanceof CliError) return e;
  if (isFsError(e)) return fsError(e, e.path, FS_VERBS[e.syscall ?? ''] ?? 'access');
  if (e instanceof RangeError && /call stack/i.test(e.message)) return new CliError('input nested too deeply to process (maximum call stack size exceeded)', EXIT_USAGE);
  const err = e as { name?: unknown; message?: unknown; detail?: unknown; file?: unknown; line?: unknown };
  if (e instanceof Error && typeof err.name === 'string' && INPUT_ERRORS.has(err.name)) {
    const message = typeof err.detail === 'string' ? err.detail : e.message;
    return new CliError(message, EXIT_USAGE, typeof err.file === 'string' ? err.file : undefined, typeof err.line === 'number' && err.line > 0 ? err.line : undefined);
  }
  const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return new CliError(`internal error: ${firstLine(what)}`, EXIT_FAIL);
}

function firstLine(s: string): string {
  const nl = s.indexOf('\n');
  return nl === -1 ? s : s.slice(0, nl);
}

function reportError(e: unknown, cmd: Command | undefined, wantsJson: boolean, io: Io): number {
  const c = toCliError(e);
  const debug = io.env.IOPGT_DEBUG !== undefined && io.env.IOPGT_DEBUG !== '' && io.env.IOPGT_DEBUG !== '0';
  if (wantsJson) io.stdout.write(JSON.stringify({ error: c.message, file: c.file ?? null, line: c.line ?? null, exitCode: c.exitCode }) + '\n');
  const hint = c.exitCode === EXIT_FAIL && !(e instanceof CliError) && !debug ? ' (IOPGT_DEBUG=1 prints the stack trace)' : '';
  // One line: newlines inside a message would read as separate errors.
  io.stderr.write(`io-pgtable${cmd ? ' ' + cmd.name : ''}: ${c.located().replace(/\r?\n/g, ' ')}${hint}\n`);
  if (debug && e instanceof Error && e.stack) io.stderr.write(e.stack + '\n');
  return c.exitCode;
}
