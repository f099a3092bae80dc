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

/** Parse an unsigned 64-bit integer written as a hex string, a decimal string or a JSON number. */
export function parseU64(v: unknown, what: string, line: number): bigint {
  let r: bigint;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || v < 0) throw new TraceError(line, `${what}: ${v} is not an unsigned integer (numbers above 2^53 must be strings)`);
    r = BigInt(v);
  } else if (typeof v === 'string' && /^0x[0-9a-fA-F]+$/.test(v)) {
    r = BigInt(v);
  } else if (typeof v === 'string' && /^[0-9]+$/.test(v)) {
    r = BigInt(v);
  } else {
    throw new TraceError(line, `${what}: ${JSON.stringify(v) ?? String(v)} is not an integer (hex string, decimal string or number)`);
  }
  if (r > U64_MAX) throw new TraceError(line, `${what}: ${v} does not fit in 64 bits`);
  return r;
}

function smallInt(v: unknown, what: string, line: number, max: number): number {
  const r = parseU64(v, what, line);
  if (r > BigInt(max)) throw new TraceError(line, `${what}: ${v} is larger than ${max}`);
  return Number(r);
}

function bool(v: unknown, what: string, line: number, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new TraceError(line, `${what} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function checkKeys(obj: Record<string, unknown>, allowed: readonly string[], line: number, what: string): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw new TraceError(line, `unknown ${what} key ${JSON.stringify(k)}`);
}

function require(obj: Record<string, unknown>, key: string, line: number): unknown {
  if (!(key in obj)) throw new TraceError(line, `missing required key ${JSON.stringify(key)}`);
  return obj[key];
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
    throw new TraceError(line, `format ${JSON.stringify(format)} is not one of ${FORMATS.join(', ')}`);
  }
  const quirksRaw = obj.quirks ?? [];
  if (!Array.isArray(quirksRaw)) throw new TraceError(line, 'quirks must be an array of names');
  const quirks = quirksRaw.map((q) => {
    const name = typeof q === 'string' ? q.replace(/^IO_PGTABLE_QUIRK_/, '') : '';
    if (!(name in Quirk)) throw new TraceError(line, `unknown quirk ${JSON.stringify(q)}`);
    return name;
  });
  return {
    format: format as FormatName,
    pgsizeBitmap: parseU64(require(obj, 'pgsizeBitmap', line), 'pgsizeBitmap', line),
    ias: smallInt(require(obj, 'ias', line), 'ias', line, 64),
    oas: smallInt(require(obj, 'oas', line), 'oas', line, 64),
    quirks,
    coherentWalk: bool(obj.coherentWalk, 'coherentWalk', line, true),
    allocBase: parseU64(obj.allocBase ?? '0x80000000', 'allocBase', line),
    allocLimit: parseU64(obj.allocLimit ?? '0x40000000', 'allocLimit', line),
    dumpEvery: bool(obj.dumpEvery, 'dumpEvery', line, true),
  };
}

function parseOp(obj: Record<string, unknown>, line: number): TraceOp {
  const op = obj.op;
  if (typeof op !== 'string' || !(op in OP_KEYS)) throw new TraceError(line, `unknown op ${JSON.stringify(op)} (map, unmap, iova_to_phys or free)`);
  checkKeys(obj, OP_KEYS[op]!, line, `${op}`);
  switch (op) {
    case 'map': {
      const prot = require(obj, 'prot', line);
      if (!Array.isArray(prot)) throw new TraceError(line, 'prot must be an array of names');
      for (const p of prot) if (typeof p !== 'string' || !(p in PROT_BY_NAME)) throw new TraceError(line, `unknown prot ${JSON.stringify(p)}`);
      return {
        op,
        iova: parseU64(require(obj, 'iova', line), 'iova', line),
        paddr: parseU64(require(obj, 'paddr', line), 'paddr', line),
        pgsize: parseU64(require(obj, 'pgsize', line), 'pgsize', line),
        pgcount: parseU64(obj.pgcount ?? 1, 'pgcount', line),
        prot: prot as ProtName[],
        line,
      };
    }
    case 'unmap':
      return {
        op,
        iova: parseU64(require(obj, 'iova', line), 'iova', line),
        pgsize: parseU64(require(obj, 'pgsize', line), 'pgsize', line),
        pgcount: parseU64(obj.pgcount ?? 1, 'pgcount', line),
        queued: bool(obj.queued, 'queued', line, false),
        line,
      };
    case 'iova_to_phys':
      return { op, iova: parseU64(require(obj, 'iova', line), 'iova', line), line };
    default:
      return { op: 'free', line };
  }
}

/** Parse a whole trace. Blank lines are skipped; any problem throws {@link TraceError}. */
export function parseTrace(text: string, file?: string): Trace {
  const lines = text.split('\n');
  let header: TraceHeader | null = null;
  const ops: TraceOp[] = [];
  let freed = false;
  try {
    for (let i = 0; i < lines.length; i++) {
      const raw = lines[i]!.trim();
      if (raw === '') continue;
      const line = i + 1;
      let obj: unknown;
      try {
        obj = JSON.parse(raw);
      } catch (e) {
        throw new TraceError(line, `not valid JSON (${(e as Error).message})`);
      }
      if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new TraceError(line, 'each line must be a JSON object');
      if (header === null) {
        header = parseHeader(obj as Record<string, unknown>, line);
        continue;
      }
      if (freed) throw new TraceError(line, '"free" must be the last op');
      const op = parseOp(obj as Record<string, unknown>, line);
      if (op.op === 'free') freed = true;
      ops.push(op);
    }
  } catch (e) {
    if (e instanceof TraceError && file) throw new TraceError(e.line, e.detail, file);
    throw e;
  }
  if (header === null) throw new TraceError(1, 'empty trace: the first line must be the header', file);
  return { header, ops };
}
