/**
 * Whole-text replay (the result as an array of lines) over the streaming engine, and
 * the comparison of results with the kernel's expected lines.
 */
import { TraceReplayer } from './engine.js';
import { ReplaySession } from './stream.js';
import type { Trace } from './trace.js';

function toLines(chunks: Iterable<string>): string[] {
  let text = '';
  for (const c of chunks) text += c;
  return text.split('\n').slice(0, -1);
}

/** Run a parsed trace; returns the result lines (without trailing newlines). */
export function replayParsed(trace: Trace, file?: string): string[] {
  const r = new TraceReplayer(trace.header, 1, file);
  return toLines(
    (function* () {
      yield* r.start();
      for (const op of trace.ops) yield* r.op(op);
      yield* r.finish();
    })(),
  );
}

/** Parse and replay a trace text. Throws TraceError for malformed input. */
export function replayTrace(text: string, file?: string): string[] {
  const session = new ReplaySession(file);
  return toLines(
    (function* () {
      for (let start = 0; start <= text.length; ) {
        let nl = text.indexOf('\n', start);
        if (nl < 0) nl = text.length;
        yield* session.line(text.slice(start, nl));
        start = nl + 1;
      }
      yield* session.end();
    })(),
  );
}

/**
 * Compare result lines with expected lines as parsed JSON. Returns null when equal, or
 * the first differing line (1-based) with both sides.
 */
export function compareResults(actual: string[], expected: string[]): { line: number; expected: string; actual: string } | null {
  const n = Math.max(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    const a = actual[i];
    const e = expected[i];
    if (a === undefined || e === undefined || !deepEqual(JSON.parse(a), JSON.parse(e))) {
      return { line: i + 1, expected: e ?? '<missing>', actual: a ?? '<missing>' };
    }
  }
  return null;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
