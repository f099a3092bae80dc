import { isMainThread } from 'node:worker_threads';
import { fsError } from './io.js';
import { main, toCliError } from './main.js';

// Only the main thread runs the CLI (the worker pool's threads load the package entry).
if (isMainThread) {
  // A reader that stops early (`| head`) is not an error of ours.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    // ENOSPC (> /dev/full), EIO: name the stream, which has no path of its own.
    throw fsError(e, '<stdout>', 'write');
  });

  // Set the status instead of calling process.exit so that piped stdout is flushed first.
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => fail(e),
  );

  // main() turns every error of a command into a status; this is the backstop for an error
  // thrown outside it (an event handler): still one line, the stack only with IOPGT_DEBUG.
  process.on('uncaughtException', fail);
}

function fail(e: unknown): void {
  const c = toCliError(e);
  process.stderr.write(`io-pgtable: ${c.located().replace(/\r?\n/g, ' ')}\n`);
  if (process.env.IOPGT_DEBUG && process.env.IOPGT_DEBUG !== '0' && e instanceof Error) process.stderr.write(`${e.stack}\n`);
  process.exit(c.exitCode);
}
