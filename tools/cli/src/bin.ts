import { isMainThread } from 'node:worker_threads';
import { main } from './main.js';

// Only the main thread runs the CLI (the worker pool's threads load the package entry).
if (isMainThread) {
  // A reader that stops early (`| head`) is not an error of ours.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });

  // Set the status instead of calling process.exit so that piped stdout is flushed first.
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`io-pgtable: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
