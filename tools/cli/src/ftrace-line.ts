/**
 * One line of iommu tracepoint text, read by field (the event name is the field after the
 * timestamp, never text found anywhere in the line: a line user space wrote to
 * trace_marker reads `tracing_mark_write: map: IOMMU: ...` and is not a map event).
 *
 * The message layouts (include/trace/events/iommu.h):
 *   v5.17+ (commit 94aedac49d92 added the range end):
 *     map:   IOMMU: iova=0x<16 hex> - 0x<16 hex> paddr=0x<16 hex> size=<dec>
 *     unmap: IOMMU: iova=0x<16 hex> - 0x<16 hex> size=<dec> unmapped_size=<dec>
 *   before v5.17:
 *     map:   IOMMU: iova=0x<16 hex> paddr=0x<16 hex> size=<dec>
 *     unmap: IOMMU: iova=0x<16 hex> size=<dec> unmapped_size=<dec>
 * The end is `iova + size` in u64 arithmetic (it wraps to 0 for a range ending at 2^64).
 *
 * Line prefixes: the tracefs `trace`/`trace_pipe` files (`comm-pid [cpu] flags ts:`, with
 * or without the irq-info flags and the `(tgid)` column), `trace-cmd report` (`comm-pid
 * [cpu] ts:`, the event name padded with spaces) and `perf script` (`comm pid [cpu] ts:
 * iommu:map:`).
 */

export type FtraceLine =
  | { kind: 'map'; iova: bigint; paddr: bigint; size: bigint; end?: bigint }
  | { kind: 'unmap'; iova: bigint; size: bigint; unmapped: bigint; end?: bigint }
  /** A `[LOST n EVENTS]` marker: the ring buffer overwrote or dropped events of this CPU. */
  | { kind: 'lost'; cpu: number; events: bigint | null }
  /** Anything else: headers, comments, other events, trace_marker text. */
  | { kind: 'other' };

/** A map/unmap event line whose message is not one of the kernel's layouts. */
export class FtraceLineError extends Error {
  override readonly name = 'FtraceLineError';
}

// comm (at most 32 characters: TASK_COMM_LEN is 16, so a match cannot reach into a
// trace_marker message), pid, optional (tgid), [cpu], optional flags, timestamp, event.
const PREFIX = /^\s*.{1,32}?[-\s](\d+)\s+(?:\(\s*[\d-]+\)\s+)?\[(\d+)\]\s+(?:\S+\s+)?\d+(?:\.\d+)?:\s+([\w:.-]+):(?:\s+(.*))?$/;
const LOST = /^\s*CPU:\s*(\d+)\s+\[(?:LOST\s+(\d+)\s+EVENTS|LOST\s+EVENTS|(\d+)\s+EVENTS\s+DROPPED)\]\s*$/;

const HEX = '0x([0-9a-fA-F]+)';
const DEC = '([0-9]+)';
const MAP_NEW = new RegExp(`^IOMMU:\\s+iova=${HEX}\\s+-\\s+${HEX}\\s+paddr=${HEX}\\s+size=${DEC}\\s*$`);
const MAP_OLD = new RegExp(`^IOMMU:\\s+iova=${HEX}\\s+paddr=${HEX}\\s+size=${DEC}\\s*$`);
const UNMAP_NEW = new RegExp(`^IOMMU:\\s+iova=${HEX}\\s+-\\s+${HEX}\\s+size=${DEC}\\s+unmapped_size=${DEC}\\s*$`);
const UNMAP_OLD = new RegExp(`^IOMMU:\\s+iova=${HEX}\\s+size=${DEC}\\s+unmapped_size=${DEC}\\s*$`);

const U64_MAX = (1n << 64n) - 1n;

function u64(digits: string, hex: boolean, field: string): bigint {
  // Checked before BigInt(): a huge digit string is neither converted nor echoed.
  if (digits.replace(/^0+/, '').length > (hex ? 16 : 20)) throw new FtraceLineError(`${field} does not fit in 64 bits`);
  const v = BigInt(hex ? '0x' + digits : digits);
  if (v > U64_MAX) throw new FtraceLineError(`${field} does not fit in 64 bits`);
  return v;
}

/** The event name as the tracers print it: `map`, or `iommu:map` (perf script). */
function eventKind(name: string): 'map' | 'unmap' | null {
  const n = name.startsWith('iommu:') ? name.slice(6) : name;
  return n === 'map' || n === 'unmap' ? n : null;
}

/** Read one line (without its line end). Throws {@link FtraceLineError} for a malformed map/unmap message. */
export function parseFtraceLine(line: string): FtraceLine {
  const lost = LOST.exec(line);
  if (lost) return { kind: 'lost', cpu: Number(lost[1]), events: lost[2] ?? lost[3] ? BigInt((lost[2] ?? lost[3])!) : null };
  const m = PREFIX.exec(line);
  if (!m) return { kind: 'other' };
  const kind = eventKind(m[3]!);
  const body = (m[4] ?? '').trim();
  // Another subsystem's event of the same name would not start with IOMMU:.
  if (kind === null || !body.startsWith('IOMMU:')) return { kind: 'other' };
  if (kind === 'map') {
    let f = MAP_NEW.exec(body);
    if (f) return { kind, iova: u64(f[1]!, true, 'iova'), end: u64(f[2]!, true, 'range end'), paddr: u64(f[3]!, true, 'paddr'), size: u64(f[4]!, false, 'size') };
    f = MAP_OLD.exec(body);
    if (f) return { kind, iova: u64(f[1]!, true, 'iova'), paddr: u64(f[2]!, true, 'paddr'), size: u64(f[3]!, false, 'size') };
    throw new FtraceLineError('map event is not "IOMMU: iova=0x... [- 0x...] paddr=0x... size=N"');
  }
  let f = UNMAP_NEW.exec(body);
  if (f) return { kind, iova: u64(f[1]!, true, 'iova'), end: u64(f[2]!, true, 'range end'), size: u64(f[3]!, false, 'size'), unmapped: u64(f[4]!, false, 'unmapped_size') };
  f = UNMAP_OLD.exec(body);
  if (f) return { kind, iova: u64(f[1]!, true, 'iova'), size: u64(f[2]!, false, 'size'), unmapped: u64(f[3]!, false, 'unmapped_size') };
  throw new FtraceLineError('unmap event is not "IOMMU: iova=0x... [- 0x...] size=N unmapped_size=N"');
}
