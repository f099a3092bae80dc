/** Entry point shared by the bin and the tests: dispatch, help, and error-to-exit-status mapping. */
import { commandHelp, parseCommandArgs, type Command } from './command.js';
import { commands } from './commands/index.js';
import { CliError, EXIT_FAIL, EXIT_OK, EXIT_USAGE, processIo, quote, toCliError, type Io } from './io.js';

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

// toCliError lives in io.ts (commands use it too; importing main.ts from a command is a cycle).
export { toCliError };

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
