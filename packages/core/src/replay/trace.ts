/**
 * The reference-vector trace format (packages/vectors/FORMAT.md): parsing with line
 * numbers in every error. Integers may be hex strings, decimal strings or JSON numbers;
 * all are unsigned 64-bit.
 */
import { FORMATS, PROT_BY_NAME, Quirk, type FormatName, type ProtName } from '../constants.js';

export class TraceError extends Error {
  override readonly name = 'TraceError';
  constructor(
    readonly line: number,
    readonly detail: string,
    readonly file?: string,
  ) {
    super(`${file ? file + ':' : 'line '}${line}: ${detail}`);
  }
}

export interface TraceHeader {
  format: FormatName;
  pgsizeBitmap: bigint;
  ias: number;
  oas: number;
  quirks: string[];
  coherentWalk: boolean;
  allocBase: bigint;
  allocLimit: bigint;
  dumpEvery: boolean;
}

export type TraceOp =
  | { op: 'map'; iova: bigint; paddr: bigint; pgsize: bigint; pgcount: bigint; prot: ProtName[]; line: number }
  | { op: 'unmap'; iova: bigint; pgsize: bigint; pgcount: bigint; queued: boolean; line: number }
  | { op: 'iova_to_phys'; iova: bigint; line: number }
  | { op: 'free'; line: number };

export interface Trace {
  header: TraceHeader;
  ops: TraceOp[];
}

const U64_MAX = (1n << 64n) - 1n;

/**
 * The longest trace line accepted, in characters. Real lines are under 300; the cap keeps
 * memory bounded when a line (or a whole file) has no newline.
 */
export const MAX_TRACE_LINE = 1 << 20;

/** Characters of a bad value quoted in a message: a 200 MB value must not make a 200 MB message. */
const SHOWN_CHARS = 40;

/**
 * A value from the trace, for an error message: strings quoted (cut after
 * {@link SHOWN_CHARS} with their length), numbers as parsed, containers by kind only (a
 * recursive JSON.stringify of 100,000 nested arrays overflows the stack).
 */
export function showValue(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return v.length <= SHOWN_CHARS ? JSON.stringify(v) : `${JSON.stringify(v.slice(0, SHOWN_CHARS)).slice(0, -1)}…" (${v.length} characters)`;
    case 'number':
    case 'boolean':
      return String(v);
    case 'bigint':
      return '0x' + v.toString(16);
    case 'undefined':
      return 'undefined';
    default:
      return v === null ? 'null' : Array.isArray(v) ? '(an array)' : '(an object)';
  }
}

/** Own properties only: `toString` or `__proto__` must not pass for a name (issue 14). */
function has(table: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(table, key);
}

/** Parse an unsigned 64-bit integer written as a hex string, a decimal string or a JSON number. */
export function parseU64(v: unknown, what: string, line: number): bigint {
  let r: bigint;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new TraceError(line, `${what}: ${showValue(v)} is not an unsigned integer (numbers above 2^53 must be strings)`);
    r = BigInt(v);
  } else if (typeof v === 'string' && /^(0x[0-9a-fA-F]+|[0-9]+)$/.test(v)) {
    // A u64 has at most 16 hex or 20 decimal digits after leading zeros: reject longer
    // strings before BigInt() spends time on a huge one.
    const digits = v.startsWith('0x') ? v.slice(2).replace(/^0+/, '') : v.replace(/^0+/, '');
    if (digits.length > (v.startsWith('0x') ? 16 : 20)) throw new TraceError(line, `${what}: ${showValue(v)} does not fit in 64 bits`);
    r = BigInt(v);
  } else {
    throw new TraceError(line, `${what}: ${showValue(v)} is not an integer (hex string, decimal string or number)`);
  }
  if (r > U64_MAX) throw new TraceError(line, `${what}: ${showValue(v)} does not fit in 64 bits`);
  return r;
}

function smallInt(v: unknown, what: string, line: number, max: number): number {
  const r = parseU64(v, what, line);
  if (r > BigInt(max)) throw new TraceError(line, `${what}: ${showValue(v)} is larger than ${max}`);
  return Number(r);
}

function bool(v: unknown, what: string, line: number, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new TraceError(line, `${what} must be true or false, got ${showValue(v)}`);
  return v;
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], line: number, what: string): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw new TraceError(line, `unknown ${what} key ${showValue(k)}`);
}

function require(obj: Record<string, unknown>, key: string, line: number): unknown {
  if (!has(obj, key)) throw new TraceError(line, `missing required key ${JSON.stringify(key)}`);
  return obj[key];
}

/** An optional key: its own value, or undefined (never an inherited one). */
function opt(obj: Record<string, unknown>, key: string): unknown {
  return has(obj, key) ? obj[key] : undefined;
}

const HEADER_KEYS = ['format', 'pgsizeBitmap', 'ias', 'oas', 'quirks', 'coherentWalk', 'allocBase', 'allocLimit', 'dumpEvery'];
const OP_KEYS: Record<string, readonly string[]> = {
  map: ['op', 'iova', 'paddr', 'pgsize', 'pgcount', 'prot'],
  unmap: ['op', 'iova', 'pgsize', 'pgcount', 'queued'],
  iova_to_phys: ['op', 'iova'],
  free: ['op'],
};

function parseHeader(obj: Record<string, unknown>, line: number): TraceHeader {
  checkKeys(obj, HEADER_KEYS, line, 'header');
  const format = require(obj, 'format', line);
  if (typeof format !== 'string' || !(FORMATS as readonly string[]).includes(format)) {
    throw new TraceError(line, `format ${showValue(format)} is not one of ${FORMATS.join(', ')}`);
  }
  const quirksRaw = opt(obj, 'quirks') ?? [];
  if (!Array.isArray(quirksRaw)) throw new TraceError(line, 'quirks must be an array of names');
  const quirks = quirksRaw.map((q: unknown) => {
    const name = typeof q === 'string' ? q.replace(/^IO_PGTABLE_QUIRK_/, '') : '';
    if (!has(Quirk, name)) throw new TraceError(line, `unknown quirk ${showValue(q)}`);
    return name;
  });
  return {
    format: format as FormatName,
    pgsizeBitmap: parseU64(require(obj, 'pgsizeBitmap', line), 'pgsizeBitmap', line),
    ias: smallInt(require(obj, 'ias', line), 'ias', line, 64),
    oas: smallInt(require(obj, 'oas', line), 'oas', line, 64),
    quirks,
    coherentWalk: bool(opt(obj, 'coherentWalk'), 'coherentWalk', line, true),
    allocBase: parseU64(opt(obj, 'allocBase') ?? '0x80000000', 'allocBase', line),
    allocLimit: parseU64(opt(obj, 'allocLimit') ?? '0x40000000', 'allocLimit', line),
    dumpEvery: bool(opt(obj, 'dumpEvery'), 'dumpEvery', line, true),
  };
}

function parseOp(obj: Record<string, unknown>, line: number): TraceOp {
  const op = opt(obj, 'op');
  if (typeof op !== 'string' || !has(OP_KEYS, op)) throw new TraceError(line, `unknown op ${showValue(op)} (map, unmap, iova_to_phys or free)`);
  checkKeys(obj, OP_KEYS[op]!, line, `${op}`);
  switch (op) {
    case 'map': {
      const prot = require(obj, 'prot', line);
      if (!Array.isArray(prot)) throw new TraceError(line, 'prot must be an array of names');
      for (const p of prot) if (typeof p !== 'string' || !has(PROT_BY_NAME, p)) throw new TraceError(line, `unknown prot ${showValue(p)}`);
      return {
        op,
        iova: parseU64(require(obj, 'iova', line), 'iova', line),
        paddr: parseU64(require(obj, 'paddr', line), 'paddr', line),
        pgsize: parseU64(require(obj, 'pgsize', line), 'pgsize', line),
        pgcount: parseU64(opt(obj, 'pgcount') ?? 1, 'pgcount', line),
        prot: prot as ProtName[],
        line,
      };
    }
    case 'unmap':
      return {
        op,
        iova: parseU64(require(obj, 'iova', line), 'iova', line),
        pgsize: parseU64(require(obj, 'pgsize', line), 'pgsize', line),
        pgcount: parseU64(opt(obj, 'pgcount') ?? 1, 'pgcount', line),
        queued: bool(opt(obj, 'queued'), 'queued', line, false),
        line,
      };
    case 'iova_to_phys':
      return { op, iova: parseU64(require(obj, 'iova', line), 'iova', line), line };
    default:
      return { op: 'free', line };
  }
}

/**
 * Line-at-a-time trace parsing, for streaming: feed each line with its 1-based number;
 * the first non-blank line is the header. Every problem throws {@link TraceError} naming
 * the file and line.
 */
export class TraceReader {
  private header: TraceHeader | null = null;
  private freed = false;
  /** Line number of the header (0 until it is read). */
  headerLine = 0;

  constructor(readonly file?: string) {}

  /** Parse one line (without its newline): the header, an op, or null for a blank line. */
  line(text: string, line: number): TraceHeader | TraceOp | null {
    try {
      if (text.length > MAX_TRACE_LINE) throw new TraceError(line, tooLong());
      const raw = text.trim();
      if (raw === '') return null;
      let obj: unknown;
      try {
        obj = JSON.parse(raw);
      } catch (e) {
        throw new TraceError(line, `not valid JSON (${clip((e as Error).message)})`);
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new TraceError(line, 'each line must be a JSON object');
      if (this.header === null) {
        this.header = parseHeader(obj as Record<string, unknown>, line);
        this.headerLine = line;
        return this.header;
      }
      if (this.freed) throw new TraceError(line, '"free" must be the last op');
      const op = parseOp(obj as Record<string, unknown>, line);
      if (op.op === 'free') this.freed = true;
      return op;
    } catch (e) {
      throw this.located(e);
    }
  }

  /** The input ended: a trace needs at least its header. */
  end(): void {
    if (this.header === null) throw new TraceError(1, 'empty trace: the first line must be the header', this.file);
  }

  /** A TraceError for `line` naming this reader's file. */
  error(line: number, detail: string): TraceError {
    return new TraceError(line, detail, this.file);
  }

  private located(e: unknown): unknown {
    return e instanceof TraceError && this.file !== undefined && e.file === undefined ? new TraceError(e.line, e.detail, this.file) : e;
  }
}

/** The message for a line over {@link MAX_TRACE_LINE}. */
export function tooLong(): string {
  return `line is longer than ${MAX_TRACE_LINE} characters (trace lines are a few hundred)`;
}

/** JSON.parse's own message may quote the input: keep it short. */
function clip(s: string): string {
  return s.length <= 120 ? s : s.slice(0, 120) + '…';
}

/** Parse a whole trace. Blank lines are skipped; any problem throws {@link TraceError}. */
export function parseTrace(text: string, file?: string): Trace {
  const reader = new TraceReader(file);
  let header: TraceHeader | null = null;
  const ops: TraceOp[] = [];
  let line = 0;
  for (let start = 0; start <= text.length; ) {
    let nl = text.indexOf('\n', start);
    if (nl < 0) nl = text.length;
    const item = reader.line(text.slice(start, nl), ++line);
    start = nl + 1;
    if (item === null) continue;
    if (header === null) header = item as TraceHeader;
    else ops.push(item as TraceOp);
  }
  reader.end();
  return { header: header!, ops };
}
