/**
 * Terminal conventions shared by every command: exit codes, errors that name the file
 * and line, colour only when wanted (NO_COLOR, FORCE_COLOR), and progress that is a
 * redrawn bar on an interactive terminal but plain lines in logs and CI.
 */
import { isUtf8 } from 'node:buffer';
import { closeSync, constants as fsc, createReadStream, createWriteStream, fstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeFileSync, type WriteStream } from 'node:fs';
import { Socket } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';

/**
 * `mkdir -p` that always returns. Node 20's `mkdirSync(p, {recursive: true})` never returns
 * for a path under a pseudo file system that refuses new entries (`/proc/x` spins forever),
 * so each missing component is made on its own and the first failure is thrown as it is
 * (ENOENT, EACCES, EROFS; EEXIST or ENOTDIR when a file is in the way).
 */
export function makeDirs(path: string): void {
  const missing: string[] = [];
  for (let p = resolve(path); ; ) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      missing.push(p);
      const parent = dirname(p);
      if (parent === p) break;
      p = parent;
      continue;
    }
    // As mkdir says it: EEXIST for a file at the path itself, ENOTDIR for one above it.
    if (!isDir) throw Object.assign(new Error(`${p} is not a directory`), { code: missing.length === 0 ? 'EEXIST' : 'ENOTDIR' });
    break;
  }
  for (let i = missing.length - 1; i >= 0; i--) mkdirSync(missing[i]!);
}

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
    // Capped here, once: a message may quote what the user gave (a 200 MB value). A BigInt
    // formatted by a template elsewhere (`0x0n`) is shown as the hex number it is.
    super(capText(message.replace(BIGINT_LITERAL, '$1')));
  }
  /** `FILE:LINE: message`, the shape editors and CI annotators understand. */
  located(): string {
    if (this.file === undefined) return this.message;
    return `${this.file}${this.line !== undefined ? ':' + this.line : ''}: ${this.message}`;
  }
}

/** `0x1fn` / `123n`: a BigInt printed with its JavaScript suffix. */
const BIGINT_LITERAL = /\b(0x[0-9a-f]+|[0-9]+)n\b/gi;

/** Longest message the CLI prints for one error; longer ones are cut with a count. */
export const MAX_MESSAGE = 400;

/** `s` cut to `max` characters (UTF-16 units), saying how much was left out. */
export function capText(s: string, max = MAX_MESSAGE): string {
  if (s.length <= max) return s;
  return `${s.slice(0, max)}... (${(s.length - max).toLocaleString('en-US')} more characters)`;
}

/** A user-given value for a message: JSON-quoted and capped, so any value is safe to show. */
export function quote(v: unknown, max = 60): string {
  const s = typeof v === 'string' ? v : typeof v === 'bigint' ? '0x' + v.toString(16) : String(v);
  return JSON.stringify(s.length > max ? s.slice(0, max) : s) + (s.length > max ? `... (${(s.length - max).toLocaleString('en-US')} more characters)` : '');
}

/** Why a file-system call failed, in words (the code alone is cryptic to most users). */
const FS_REASONS: Readonly<Record<string, string>> = Object.freeze({
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory',
  ENOTDIR: 'a path component is not a directory',
  EEXIST: 'exists and is not a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'name too long',
  ELOOP: 'too many symbolic links',
  EIO: 'input/output error',
  ENXIO: 'no such device or address: a FIFO nobody reads, or a socket',
  EAGAIN: 'no data ready on a non-blocking input',
});

/** `CODE (why)` for an errno code, e.g. `EEXIST (exists and is not a directory)`. */
export function describeFsCode(code: string): string {
  return Object.hasOwn(FS_REASONS, code) ? `${code} (${FS_REASONS[code]})` : code;
}

/** A Node file-system error (it carries an errno code and, usually, the path). */
export function isFsError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === 'string' && typeof (e as NodeJS.ErrnoException).syscall === 'string';
}

/** A file-system error as one line naming the path: `PATH: cannot read: EISDIR (is a directory)`. */
export function fsError(e: NodeJS.ErrnoException, path: string | undefined, verb: string): CliError {
  const code = e.code ?? 'EIO';
  const why = Object.hasOwn(FS_REASONS, code) ? ` (${FS_REASONS[code]})` : '';
  return new CliError(`cannot ${verb}: ${code}${why}`, EXIT_USAGE, path ?? e.path);
}

/**
 * An input file checked before reading, so a directory or a missing file is one clear
 * error naming the path (a read stream would report EISDIR late, mid-command).
 */
export function checkInputFile(abs: string, shown: string): void {
  let st;
  try {
    st = statSync(abs);
  } catch (e) {
    throw isFsError(e) ? fsError(e, shown, 'read') : e;
  }
  if (st.isDirectory()) throw new CliError('cannot read: EISDIR (is a directory)', EXIT_USAGE, shown);
}

/** Longest input line the streaming readers accept (a line without an end must not fill memory). */
export const MAX_LINE = 64 * 1024;

/**
 * Checks that a byte stream is text, chunk by chunk and in constant memory: valid UTF-8
 * and no NUL byte, or a CliError naming the line. Every input the CLI reads is text (JSON
 * traces and data files, tracefs output); decoding invalid bytes to U+FFFD instead would
 * turn them into a confusing error further on ("missing key"), or into accepted input.
 * A line end never falls inside a UTF-8 sequence, so at most 3 bytes are carried over.
 */
export class TextCheck {
  private carry: Buffer = Buffer.alloc(0);
  /** Lines ended before the bytes checked so far. */
  private lines = 0;
  /** Bytes of the line not ended yet. */
  private current = 0;

  /** `maxLine`: longest line in bytes (a line without an end must not be read whole). */
  constructor(
    private readonly shown: string,
    private readonly maxLine = Infinity,
  ) {}

  push(chunk: Buffer): void {
    const nul = chunk.indexOf(0);
    if (nul !== -1) throw new CliError('NUL byte: not a text file', EXIT_USAGE, this.shown, this.lines + 1 + countNewlines(chunk, 0, nul));
    const buf = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const cut = completeUpTo(buf);
    if (!isUtf8(buf.subarray(0, cut))) this.invalid(buf.subarray(0, cut));
    this.advance(buf, cut);
    this.carry = Buffer.from(buf.subarray(cut));
    if (this.carry.length > 3) this.invalid(this.carry);
  }

  /** Count the lines ended in `buf[0, to)`, checking each one's length. */
  private advance(buf: Buffer, to: number): void {
    let start = 0;
    for (let i = buf.indexOf(0x0a); i !== -1 && i < to; i = buf.indexOf(0x0a, i + 1)) {
      if (this.current + (i - start) > this.maxLine) this.tooLong();
      this.lines++;
      this.current = 0;
      start = i + 1;
    }
    this.current += to - start;
    if (this.current > this.maxLine) this.tooLong();
  }

  private tooLong(): never {
    throw new CliError(`line longer than ${this.maxLine.toLocaleString('en-US')} bytes`, EXIT_USAGE, this.shown, this.lines + 1);
  }

  /** At the end of the input: the carried bytes must be a whole character. */
  end(): void {
    if (this.carry.length && !isUtf8(this.carry)) this.invalid(this.carry);
  }

  private invalid(buf: Buffer): never {
    let line = this.lines + 1;
    for (let start = 0; start <= buf.length; ) {
      const nl = buf.indexOf(0x0a, start);
      const stop = nl === -1 ? buf.length : nl;
      if (!isUtf8(buf.subarray(start, stop)) || nl === -1) break;
      line++;
      start = nl + 1;
    }
    throw new CliError('not valid UTF-8 text', EXIT_USAGE, this.shown, line);
  }
}

/**
 * Length of the prefix of `buf` that holds whole characters only: everything, unless it
 * ends inside a multi-byte sequence that the next chunk may complete. (Invalid bytes are
 * left in the prefix, where the check finds them.)
 */
function completeUpTo(buf: Buffer): number {
  let p = buf.length - 1;
  while (p >= 0 && p >= buf.length - 3 && (buf[p]! & 0xc0) === 0x80) p--;
  if (p < 0) return buf.length;
  const lead = buf[p]!;
  if (lead < 0xc0 || lead >= 0xf8) return buf.length;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
  return buf.length - p >= need ? buf.length : p;
}

function countNewlines(buf: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = buf.indexOf(0x0a, from); i !== -1 && i < to; i = buf.indexOf(0x0a, i + 1)) n++;
  return n;
}

/**
 * The chunks of a byte stream, checked as text (see {@link TextCheck}); a stream error
 * (EACCES, EIO) is thrown as an {@link fsError} naming `shown`.
 */
export async function* checkedChunks(input: AsyncIterable<Buffer | string>, shown: string): AsyncGenerator<Buffer> {
  const check = new TextCheck(shown);
  const iter = input[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Buffer | string>;
    try {
      next = await iter.next();
    } catch (e) {
      throw isFsError(e) ? fsError(e, shown, 'read') : e;
    }
    if (next.done) break;
    const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
    check.push(chunk);
    yield chunk;
  }
  check.end();
}

/**
 * The lines of a stream, one at a time (constant memory whatever the size: a line longer
 * than `maxLine` is an error, not a buffer that grows), with `\r\n` treated as a line end
 * and a leading byte-order mark dropped. The bytes must be text ({@link TextCheck}).
 */
export async function* readLines(input: NodeJS.ReadableStream | AsyncIterable<Buffer | string>, shown: string, maxLine = MAX_LINE): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { ignoreBOM: false });
  let rest = '';
  let lineNo = 0;
  for await (const bytes of checkedChunks(input as AsyncIterable<Buffer | string>, shown)) {
    const chunk = decoder.decode(bytes, { stream: true });
    let start = 0;
    for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
      let line = rest + chunk.slice(start, nl);
      rest = '';
      start = nl + 1;
      lineNo++;
      if (line.length > maxLine) throw new CliError(`line longer than ${maxLine.toLocaleString('en-US')} characters`, EXIT_USAGE, shown, lineNo);
      if (line.endsWith('\r')) line = line.slice(0, -1);
      yield line;
    }
    rest += chunk.slice(start);
    if (rest.length > maxLine) throw new CliError(`line longer than ${maxLine.toLocaleString('en-US')} characters`, EXIT_USAGE, shown, lineNo + 1);
  }
  rest += decoder.decode();
  if (rest !== '') yield rest.endsWith('\r') ? rest.slice(0, -1) : rest;
}

const STDIN_PATH = '/dev/stdin';

/** Open `abs` for reading without blocking (a FIFO with no writer would block `open` forever). */
function openNonBlocking(abs: string, shown: string): { fd: number; fifo: boolean } {
  // stdin by name is fd 0 itself: reopening it through /proc fails for a socket (ENXIO),
  // which is what a parent process's pipe often is.
  if (abs === STDIN_PATH) return { fd: 0, fifo: true };
  let fd: number;
  try {
    fd = openSync(abs, fsc.O_RDONLY | fsc.O_NONBLOCK);
  } catch (e) {
    throw isFsError(e) ? fsError(e, shown, 'read') : e;
  }
  const st = fstatSync(fd);
  if (st.isDirectory()) {
    closeSync(fd);
    throw new CliError('cannot read: EISDIR (is a directory)', EXIT_USAGE, shown);
  }
  return { fd, fifo: st.isFIFO() || st.isSocket() };
}

/** One read of a non-blocking fd: the bytes, 0 at the end, or null when a live pipe has none yet. */
function readSome(fd: number, buf: Buffer, shown: string): number | null {
  try {
    return readSync(fd, buf, 0, buf.length, null);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return null;
    throw isFsError(e) ? fsError(e, shown, 'read') : e;
  }
}

/**
 * A file opened for streaming reads: missing, a directory or unreadable is one error naming
 * it, before anything is read. A FIFO (or `<(cmd)`) is read as the pipe it is; one that has
 * no writer when it is opened is empty input, not a wait that never ends (Linux reports no
 * end on a FIFO that never had a writer).
 */
export function openInput(abs: string, shown: string): AsyncIterable<Buffer> & { destroy(): void } {
  if (abs === STDIN_PATH) return process.stdin as unknown as AsyncIterable<Buffer> & { destroy(): void };
  const { fd, fifo } = openNonBlocking(abs, shown);
  if (!fifo) return createReadStream('', { fd, highWaterMark: 1 << 16 }) as unknown as AsyncIterable<Buffer> & { destroy(): void };
  const first = Buffer.alloc(1 << 16);
  let n: number | null;
  try {
    n = readSome(fd, first, shown);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  if (n === 0) {
    closeSync(fd);
    return { async *[Symbol.asyncIterator]() {}, destroy() {} };
  }
  const sock = new Socket({ fd, readable: true, writable: false });
  const head = n === null ? null : first.subarray(0, n);
  return {
    async *[Symbol.asyncIterator]() {
      if (head) yield head;
      for await (const c of sock) yield c as Buffer;
    },
    destroy: () => sock.destroy(),
  };
}

/**
 * A whole text file read synchronously, bounded: more than `maxBytes`, or a line longer than
 * `maxLine`, is an error naming `what` (/dev/zero or a 1 GB line cannot fill memory), the bytes must be
 * text ({@link TextCheck}), and a leading byte-order mark is dropped.
 */
export function readTextFileSync(abs: string, shown: string, maxBytes: number, what: string, maxLine = Infinity): string {
  const { fd } = openNonBlocking(abs, shown);
  const check = new TextCheck(shown, maxLine);
  const parts: Buffer[] = [];
  let total = 0;
  try {
    for (;;) {
      const buf = Buffer.alloc(1 << 16);
      const n = readSome(fd, buf, shown);
      if (n === null) {
        // A live pipe with nothing yet: wait a little, as a blocking read would.
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        continue;
      }
      if (n === 0) break;
      total += n;
      if (total > maxBytes) throw new CliError(`larger than ${(maxBytes / 2 ** 20).toLocaleString('en-US')} MiB: too large for ${what}`, EXIT_USAGE, shown);
      const chunk = buf.subarray(0, n);
      check.push(chunk);
      parts.push(chunk);
    }
    check.end();
  } finally {
    if (fd !== 0) closeSync(fd);
  }
  const text = Buffer.concat(parts).toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * An output path that is an existing device, FIFO or socket (`-o /dev/null`, `/dev/stdout`,
 * a named pipe) opened for writing, else null. Such a path is written in place: renaming a
 * temporary over it would replace the device node with a regular file (as root, /dev/null
 * itself). A FIFO nobody reads is an error (ENXIO), not a wait that never ends.
 */
function openSpecialForWrite(abs: string): number | null {
  let st;
  try {
    st = statSync(abs);
  } catch {
    return null;
  }
  if (st.isFile() || st.isDirectory()) return null;
  if (st.isFIFO()) closeSync(openSync(abs, fsc.O_WRONLY | fsc.O_NONBLOCK)); // ENXIO without a reader
  return openSync(abs, 'w');
}

/** Write a whole file through a temporary renamed into place: a failure leaves neither a partial file nor a replaced one. */
export function writeFileAtomic(abs: string, text: string): void {
  const fd = openSpecialForWrite(abs);
  if (fd !== null) {
    try {
      writeFileSync(fd, text);
    } finally {
      closeSync(fd);
    }
    return;
  }
  const tmp = join(dirname(abs), `.${basename(abs)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text, { flag: 'wx' });
    renameSync(tmp, abs);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Refuse to read a command's input from an interactive terminal (it would wait silently
 * for Ctrl-D): say so, as `replay` does.
 */
export function requirePipedStdin(io: Io, what: string, cmd: string): void {
  if ((io.stdin as { isTTY?: boolean }).isTTY === true) throw new CliError(`reading ${what} from the terminal: pipe one in, or pass FILE (see 'io-pgtable ${cmd} --help')`, EXIT_USAGE);
}

/**
 * An output file written through a temporary beside it and renamed into place by
 * `commit()`: a failed command leaves no partial file behind (and no old file replaced).
 */
export class AtomicOutput {
  private readonly tmp: string | null;
  private readonly stream: WriteStream;
  private failure: NodeJS.ErrnoException | undefined;

  constructor(
    private readonly abs: string,
    private readonly shown: string,
  ) {
    let st;
    try {
      st = statSync(abs);
    } catch {
      /* a new file */
    }
    if (st?.isDirectory()) throw new CliError('cannot write: EISDIR (is a directory)', EXIT_USAGE, shown);
    let fd: number | null;
    try {
      fd = openSpecialForWrite(abs);
    } catch (e) {
      throw isFsError(e) ? fsError(e, shown, 'write') : e;
    }
    // A device or FIFO is written in place (nothing to rename; it cannot be taken back).
    this.tmp = fd !== null ? null : join(dirname(abs), `.${basename(abs)}.${process.pid}.tmp`);
    this.stream = fd !== null ? createWriteStream('', { fd }) : createWriteStream(this.tmp!, { flags: 'wx' });
    this.stream.on('error', (e: NodeJS.ErrnoException) => {
      this.failure ??= e;
    });
  }

  private check(): void {
    if (this.failure) throw fsError(this.failure, this.shown, 'write');
  }

  /** Write with backpressure (constant memory however much is written). */
  async write(text: string): Promise<void> {
    this.check();
    if (!this.stream.write(text)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.stream.off('drain', done);
          this.stream.off('error', done);
          resolve();
        };
        this.stream.on('drain', done);
        this.stream.on('error', done);
      });
    }
    this.check();
  }

  /** Flush, then move the file into place. */
  async commit(): Promise<void> {
    // The error of the last write may reach end()'s callback before the 'error' listener.
    await new Promise<void>((resolve) =>
      this.stream.end((e?: Error | null) => {
        if (e) this.failure ??= e as NodeJS.ErrnoException;
        resolve();
      }),
    );
    this.check();
    if (this.tmp === null) return;
    try {
      renameSync(this.tmp, this.abs);
    } catch (e) {
      this.abort();
      throw isFsError(e) ? fsError(e, this.shown, 'write') : e;
    }
  }

  /** Drop the temporary (after a failure). */
  abort(): void {
    this.stream.destroy();
    if (this.tmp === null) return;
    try {
      rmSync(this.tmp, { force: true });
    } catch {
      // The temporary could not be created in the first place (its directory is missing).
    }
  }
}

/**
 * Reject JSON nested deeper than `maxDepth` before parsing it: building an error message
 * for (or walking) a 100,000-deep value overflows the stack. Returns the 1-based line of
 * the first bracket past the limit, or 0 when the text is within it.
 */
export function jsonTooDeep(text: string, maxDepth = 256): number {
  let depth = 0;
  let line = 1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
      else if (c === 0x0a) line++;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x0a) line++;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) return line;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return 0;
}

/** JSON.parse with the nesting bounded (see {@link jsonTooDeep}); a syntax error is a CliError naming `file`. */
export function parseJsonBounded(text: string, file: string, maxDepth = 256): unknown {
  const deep = jsonTooDeep(text, maxDepth);
  if (deep) throw new CliError(`JSON nested deeper than ${maxDepth} levels`, EXIT_USAGE, file, deep);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CliError(`not valid JSON (${(e as Error).message.split('\n')[0]!.slice(0, 200)})`, EXIT_USAGE, file);
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
