/**
 * Streaming replay: trace text in, result text out, line by line, so memory stays
 * constant in the trace length (issue 14). The only unbounded output is the format's own:
 * with `dumpEvery` every line carries a dump of every live table, so the output grows
 * quadratically with the number of mapped tables; it still streams one table at a time.
 */
import { TraceReplayer } from './engine.js';
import { MAX_TRACE_LINE, TraceReader, tooLong, type TraceHeader, type TraceOp } from './trace.js';

/**
 * One trace, fed a line at a time: parses each line and runs it. `line` and `end`
 * yield the output text (newlines included) in chunks; a malformed line throws
 * TraceError naming the file and line. Lines after an initialisation failure or a fatal
 * op are still parsed (a malformed trace is reported as such wherever the problem is).
 */
export class ReplaySession {
  private readonly reader: TraceReader;
  private replayer: TraceReplayer | null = null;
  private lines = 0;

  constructor(readonly file?: string) {
    this.reader = new TraceReader(file);
  }

  /** Feed the next line (without its newline). */
  *line(text: string): Generator<string> {
    const item = this.reader.line(text, ++this.lines);
    if (item === null) return;
    if (this.replayer === null) {
      this.replayer = new TraceReplayer(item as TraceHeader, this.reader.headerLine, this.file);
      yield* this.replayer.start();
    } else yield* this.replayer.op(item as TraceOp);
  }

  /** The input ended: the final line. */
  *end(): Generator<string> {
    this.reader.end();
    yield* this.replayer!.finish();
  }

  /** The error for a line that is too long to read ({@link MAX_TRACE_LINE}), at the next line number. */
  lineTooLong(): Error {
    return this.reader.error(this.lines + 1, tooLong());
  }
}

export interface ReplayStreamOptions {
  /** Names the input in errors (`FILE:LINE: ...`). */
  file?: string;
  /** Output is yielded in pieces of about this many characters (default 64 KiB). */
  chunkChars?: number;
}

/**
 * Replay a trace read from `input` (text or UTF-8 bytes, in pieces of any size), yielding
 * the result text as it is produced. Memory is bounded by one input piece, one line (at
 * most {@link MAX_TRACE_LINE} characters) and one output piece, plus the page table
 * itself. Throws TraceError for malformed input, possibly after some output was yielded.
 */
export async function* replayStream(input: AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>, opts: ReplayStreamOptions = {}): AsyncGenerator<string, void, undefined> {
  const session = new ReplaySession(opts.file);
  const high = opts.chunkChars ?? 1 << 16;
  const decoder = new TextDecoder();
  let out: string[] = [];
  let size = 0;
  let partial = '';
  const take = (): string => {
    const s = out.join('');
    out = [];
    size = 0;
    return s;
  };

  function* lines(text: string): Generator<string> {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) {
        if (partial.length + text.length - start > MAX_TRACE_LINE) throw session.lineTooLong();
        partial += text.slice(start);
        return;
      }
      const line = partial === '' ? text.slice(start, nl) : partial + text.slice(start, nl);
      partial = '';
      start = nl + 1;
      yield* session.line(line);
    }
  }

  function* rest(): Generator<string> {
    yield* lines(decoder.decode());
    if (partial !== '') yield* session.line(partial);
    yield* session.end();
  }

  for await (const piece of input) {
    for (const chunk of lines(typeof piece === 'string' ? piece : decoder.decode(piece, { stream: true }))) {
      out.push(chunk);
      size += chunk.length;
      if (size >= high) yield take();
    }
    // Hand over what this piece produced: a piped trace gets its answers as it goes.
    if (size > 0) yield take();
  }
  for (const chunk of rest()) {
    out.push(chunk);
    size += chunk.length;
    if (size >= high) yield take();
  }
  if (size > 0) yield take();
}
