/**
 * Terminal conventions shared by every command: exit codes, errors that name the file
 * and line, colour only when wanted (NO_COLOR, FORCE_COLOR), and progress that is a
 * redrawn bar on an interactive terminal but plain lines in logs and CI.
 */
import type { Writable } from 'node:stream';

/** Exit statuses: 0 success, 1 a check failed, 2 bad input or usage. */
export const EXIT_OK = 0;
export const EXIT_FAIL = 1;
export const EXIT_USAGE = 2;

/** An error the CLI reports and exits on; `file`/`line` locate bad input. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT_USAGE,
    readonly file?: string,
    readonly line?: number,
  ) {
    super(message);
  }
  /** `FILE:LINE: message`, the shape editors and CI annotators understand. */
  located(): string {
    if (this.file === undefined) return this.message;
    return `${this.file}${this.line !== undefined ? ':' + this.line : ''}: ${this.message}`;
  }
}

export interface Io {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean; columns?: number };
  stdin: NodeJS.ReadableStream;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function processIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() };
}

/** Is the environment a CI run (any non-empty CI other than "false"/"0")? */
export function isCi(env: NodeJS.ProcessEnv): boolean {
  const v = env.CI;
  return v !== undefined && v !== '' && v !== 'false' && v !== '0';
}

/**
 * Colour only on a terminal, never with NO_COLOR set to anything non-empty (no-color.org,
 * which wins over everything); FORCE_COLOR turns it on for pipes (CI logs that render it).
 */
export function useColor(io: Io): boolean {
  if (io.env.NO_COLOR !== undefined && io.env.NO_COLOR !== '') return false;
  if (io.env.FORCE_COLOR !== undefined && io.env.FORCE_COLOR !== '0' && io.env.FORCE_COLOR !== 'false') return true;
  return io.stdout.isTTY === true && io.env.TERM !== 'dumb';
}

export interface Paint {
  red(s: string): string;
  green(s: string): string;
  bold(s: string): string;
  dim(s: string): string;
}

export function paint(on: boolean): Paint {
  const w = (open: number, close: number) => (s: string) => (on ? `\x1b[${open}m${s}\x1b[${close}m` : s);
  return { red: w(31, 39), green: w(32, 39), bold: w(1, 22), dim: w(2, 22) };
}

/**
 * Progress for work of `total` steps. On a TTY (and not in CI) it draws a bar on
 * stderr, but only once the work has run for `delayMs` (a second by default) so quick
 * commands stay silent. Otherwise, when `plain` is set, it prints one plain line per
 * step; log readers get a record without carriage returns or escape codes.
 */
export class Progress {
  private readonly tty: boolean;
  private readonly start = performance.now();
  private done = 0;
  private drawn = false;
  private lastDraw = 0;

  constructor(
    private readonly io: Io,
    private readonly label: string,
    private readonly total: number,
    private readonly opts: { plain?: boolean; delayMs?: number } = {},
  ) {
    this.tty = io.stderr.isTTY === true && !isCi(io.env) && io.env.TERM !== 'dumb';
  }

  /** One step finished; `what` names it. */
  tick(what: string): void {
    this.done++;
    const now = performance.now();
    if (this.tty) {
      if (now - this.start < (this.opts.delayMs ?? 1000)) return;
      if (this.drawn && now - this.lastDraw < 50 && this.done < this.total) return;
      this.lastDraw = now;
      this.drawn = true;
      const width = Math.max(10, Math.min(40, (this.io.stderr.columns ?? 80) - 40));
      const filled = Math.round((this.done / this.total) * width);
      const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
      const pct = Math.floor((this.done / this.total) * 100);
      this.io.stderr.write(`\r\x1b[2K${this.label} [${bar}] ${pct}% ${this.done}/${this.total} ${what}`.slice(0, (this.io.stderr.columns ?? 120) + 8));
    } else if (this.opts.plain) {
      this.io.stderr.write(`${this.label} ${this.done}/${this.total} ${what}\n`);
    }
  }

  /** Clear the bar (TTY) so the command's own output starts on a clean line. */
  end(): void {
    if (this.tty && this.drawn) this.io.stderr.write('\r\x1b[2K');
  }
}

/** Read a whole stream as UTF-8. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** Write and wait until the data is handed to the OS (pipes to a closed reader do not hang). */
export function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve) => {
    if (stream.write(text)) resolve();
    else stream.once('drain', resolve);
  });
}
