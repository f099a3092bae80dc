/** Entry point shared by the bin and the tests: dispatch, help, and error-to-exit-status mapping. */
import { commandHelp, parseCommandArgs, type Command } from './command.js';
import { commands } from './commands/index.js';
import { CliError, EXIT_OK, EXIT_USAGE, processIo, type Io } from './io.js';

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
  const wantsJson = rest.includes('--json');
  try {
    if (!cmd) throw new CliError(`unknown command ${JSON.stringify(name)}; commands: ${commands.map((c) => c.name).join(', ')}`, EXIT_USAGE);
    const args = parseCommandArgs(cmd, rest);
    if (args.values.help === true) {
      io.stdout.write(commandHelp(cmd));
      return EXIT_OK;
    }
    return await cmd.run(args, io);
  } catch (e) {
    if (e instanceof CliError) {
      if (wantsJson) {
        io.stdout.write(JSON.stringify({ error: e.message, file: e.file ?? null, line: e.line ?? null, exitCode: e.exitCode }) + '\n');
      }
      io.stderr.write(`io-pgtable${cmd ? ' ' + cmd.name : ''}: ${e.located()}\n`);
      return e.exitCode;
    }
    // A bug or an allocator fault: say so plainly with the stack, status 1.
    io.stderr.write(`io-pgtable${cmd ? ' ' + cmd.name : ''}: internal error: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}
