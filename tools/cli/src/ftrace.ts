/**
 * Convert the kernel's `iommu:map` / `iommu:unmap` tracepoint output into our trace
 * format (packages/vectors/FORMAT.md: a JSON header line, then one JSON line per call).
 *
 * The tracepoints fire once per iommu_map()/iommu_unmap() call with the whole range
 * (also for a zero-size range: the loops are skipped, the tracepoint still fires, so it
 * becomes no op). io-pgtable sees that range as a loop of map_pages/unmap_pages calls:
 * iommu_pgsize() picks the page size and count (largest size of the bitmap that both
 * addresses are aligned to and that fits, pages up to the next larger size's boundary),
 * and each call stops short at the end of a leaf table, so the loop calls again from
 * there. To emit exactly those calls the converter runs them against a real page table;
 * that also checks the capture (an unmap that unmaps less here than on the device means
 * events were lost). Since v5.14 (map_pages/pgcount) this is what the kernel calls.
 *
 * Streaming: {@link FtraceConverter} takes one line at a time and returns the trace lines
 * it becomes, so a capture of any size converts in memory bounded by the live mappings
 * and by `maxOpsPerEvent`.
 */
import { allocIoPgtableOps, createSystemAllocator, IotlbGather, type FormatName, type PageTable, type ProtName } from '@io-pgtable/core';
import { FtraceLineError, parseFtraceLine } from './ftrace-line.js';

export interface FtraceImportOptions {
  format: FormatName;
  pgsizeBitmap: bigint;
  ias: number;
  oas: number;
  quirks?: string[];
  coherentWalk?: boolean;
  /** prot for every map (the tracepoint does not record it). */
  prot?: ProtName[];
  /** Name used in error messages. */
  file?: string;
  /**
   * Most map_pages/unmap_pages calls one event may become (default
   * {@link DEFAULT_MAX_OPS_PER_EVENT}): a 60-byte line can describe a range that takes
   * hundreds of thousands of calls, and the page tables to back them.
   */
  maxOpsPerEvent?: number;
  /** Called for each warning as it is found (streaming); the result keeps the first {@link MAX_KEPT_WARNINGS}. */
  onWarning?: (w: FtraceWarning) => void;
}

/** 16,384 calls: a 32 GiB range of 4 KiB pages (512 pages per call), 64 MiB of level-3 tables. */
export const DEFAULT_MAX_OPS_PER_EVENT = 16_384;
/** Warnings kept in {@link FtraceImport.warnings} (all are counted and passed to `onWarning`). */
export const MAX_KEPT_WARNINGS = 1000;

export interface FtraceWarning {
  line: number;
  message: string;
}

export interface FtraceSummary {
  /** iommu_map / iommu_unmap events read. */
  mapEvents: number;
  unmapEvents: number;
  /** map_pages / unmap_pages calls emitted (and the final free). */
  ops: number;
  /** Lines that are not iommu map/unmap events (headers, other events, trace_marker text). */
  ignoredLines: number;
  /** Events the capture says were lost (`[LOST n EVENTS]`), when it gives a number. */
  lostEvents: number;
  /** The first {@link MAX_KEPT_WARNINGS} warnings; `warningCount` counts them all. */
  warnings: FtraceWarning[];
  warningCount: number;
}

export interface FtraceImport extends FtraceSummary {
  /** The trace, one JSON line per element (header first). */
  lines: string[];
}

/** A line that looks like an iommu map/unmap event but cannot be read or converted. */
export class FtraceError extends Error {
  override readonly name = 'FtraceError';
  constructor(
    readonly line: number,
    readonly detail: string,
    readonly file?: string,
  ) {
    super(`${file ?? '<stdin>'}:${line}: ${detail}`);
  }
}

function fls(v: bigint): number {
  return v.toString(2).length - 1;
}
function ffs(v: bigint): number {
  return fls(v & -v);
}
/** Hex as the trace format and the messages write it (never BigInt's `0x0n`). */
const hex = (v: bigint | number): string => '0x' + v.toString(16);

/**
 * iommu_pgsize(): the page size for the next map_pages/unmap_pages call and how many
 * pages of it to ask for.
 */
export function chooseLargestPgsize(bitmap: bigint, iova: bigint, paddr: bigint, size: bigint): { pgsize: bigint; count: bigint } {
  const addrMerge = iova | paddr;
  // Sizes that fit in what is left and that both addresses are aligned to.
  let candidates = bitmap & ((1n << BigInt(fls(size) + 1)) - 1n);
  if (addrMerge !== 0n) candidates &= (1n << BigInt(ffs(addrMerge) + 1)) - 1n;
  if (candidates === 0n) throw new RangeError(`no page size in ${hex(bitmap)} fits iova ${hex(iova)} paddr ${hex(paddr)} size ${hex(size)}`);
  const shift = fls(candidates);
  const pgsize = 1n << BigInt(shift);
  // Stop at the next larger size's boundary, where a bigger page can take over,
  // unless the two addresses are misaligned to each other for that size.
  const larger = bitmap & ~((1n << BigInt(shift + 1)) - 1n);
  let span = size;
  if (larger !== 0n) {
    const next = larger & -larger;
    if (((iova ^ paddr) & (next - 1n)) === 0n) {
      const toBoundary = next - (addrMerge & (next - 1n));
      if (toBoundary + next <= size) span = toBoundary;
    }
  }
  return { pgsize, count: span >> BigInt(shift) };
}

const U64 = (1n << 64n) - 1n;
const TOP = 1n << 64n;

/** Converts capture lines to trace lines, one line at a time. */
export class FtraceConverter {
  /** The trace header line (write it first). */
  readonly header: string;
  private readonly pt: PageTable;
  private readonly bitmap: bigint;
  private readonly minPage: bigint;
  private readonly prot: ProtName[];
  private readonly file: string | undefined;
  private readonly maxOps: number;
  private readonly onWarning: ((w: FtraceWarning) => void) | undefined;
  private readonly s: FtraceSummary = { mapEvents: 0, unmapEvents: 0, ops: 0, ignoredLines: 0, lostEvents: 0, warnings: [], warningCount: 0 };
  private ended = false;

  constructor(opts: FtraceImportOptions) {
    this.file = opts.file;
    this.prot = opts.prot ?? ['read', 'write', 'cache'];
    this.maxOps = opts.maxOpsPerEvent ?? DEFAULT_MAX_OPS_PER_EVENT;
    this.onWarning = opts.onWarning;
    if (opts.pgsizeBitmap < 0n || opts.pgsizeBitmap > U64) throw new FtraceError(0, `pgsizeBitmap ${hex(opts.pgsizeBitmap)} does not fit in 64 bits`, this.file);
    const quirks = opts.quirks ?? [];
    const coherentWalk = opts.coherentWalk ?? true;
    const res = allocIoPgtableOps(
      opts.format,
      { pgsizeBitmap: opts.pgsizeBitmap, ias: opts.ias, oas: opts.oas, quirks, coherentWalk },
      { allocator: createSystemAllocator({ limit: 0x4000_0000 }), mode: 'kernel' },
    );
    if (!res.ok) throw new FtraceError(0, `the page-table configuration is rejected: ${res.reason.replace(/\b(0x[0-9a-f]+)n\b/g, '$1')}`, this.file);
    this.pt = res.table;
    this.bitmap = BigInt(this.pt.cfg.pgsizeBitmap);
    this.minPage = this.bitmap & -this.bitmap;
    // The replay's bump allocator never reuses memory, so give it all the output address
    // space above its base (sparse memory costs nothing), capped at 1 TiB.
    const memoryLimit = Math.min(2 ** this.pt.cfg.oas - 0x8000_0000, 2 ** 40);
    this.header = JSON.stringify({
      format: opts.format,
      pgsizeBitmap: hex(opts.pgsizeBitmap),
      ias: opts.ias,
      oas: opts.oas,
      quirks,
      coherentWalk,
      allocLimit: hex(memoryLimit),
      dumpEvery: false,
    });
  }

  private warn(line: number, message: string): void {
    const w = { line, message };
    this.s.warningCount++;
    if (this.s.warnings.length < MAX_KEPT_WARNINGS) this.s.warnings.push(w);
    this.onWarning?.(w);
  }

  private fail(line: number, detail: string): never {
    throw new FtraceError(line, detail, this.file);
  }

  /** Counts so far. */
  summary(): FtraceSummary {
    return { ...this.s, warnings: [...this.s.warnings] };
  }

  /** One capture line (without its line end); returns the trace lines it becomes. Throws {@link FtraceError}. */
  push(raw: string, lineNo: number): string[] {
    let ev;
    try {
      ev = parseFtraceLine(raw);
    } catch (e) {
      if (e instanceof FtraceLineError) this.fail(lineNo, e.message);
      throw e;
    }
    switch (ev.kind) {
      case 'other':
        if (raw.trim() !== '') this.s.ignoredLines++;
        return [];
      case 'lost':
        if (ev.events !== null) this.s.lostEvents += Number(ev.events);
        this.warn(lineNo, `CPU ${ev.cpu} lost ${ev.events === null ? 'some' : ev.events.toString()} events here (ring buffer overrun): maps or unmaps may be missing, so later events may not replay as on the device`);
        return [];
      case 'map':
        this.s.mapEvents++;
        return this.map(ev.iova, ev.paddr, ev.size, ev.end, lineNo);
      case 'unmap':
        this.s.unmapEvents++;
        return this.unmap(ev.iova, ev.size, ev.unmapped, ev.end, lineNo);
    }
  }

  private checkRange(iova: bigint, size: bigint, end: bigint | undefined, line: number, paddr?: bigint): void {
    if (end !== undefined && end !== ((iova + size) & U64)) this.fail(line, `range end ${hex(end)} is not iova + size (${hex((iova + size) & U64)})`);
    // A wrapping range cannot be a run of map_pages calls (and replay refuses the iovas).
    if (iova + size > TOP) this.fail(line, `iova ${hex(iova)} + size ${hex(size)} wraps past 2^64`);
    if (paddr !== undefined && paddr + size > TOP) this.fail(line, `paddr ${hex(paddr)} + size ${hex(size)} wraps past 2^64`);
  }

  private tooMany(line: number, kind: string, iova: bigint, size: bigint): never {
    this.fail(line, `${kind} of ${hex(iova)} + ${hex(size)} becomes more than ${this.maxOps.toLocaleString('en-US')} ${kind}_pages calls; raise the limit with --max-ops-per-event N if the capture is real`);
  }

  private map(iova: bigint, paddr: bigint, size: bigint, end: bigint | undefined, line: number): string[] {
    this.checkRange(iova, size, end, line, paddr);
    if ((iova | paddr | size) & (this.minPage - 1n)) {
      this.fail(line, `iova ${hex(iova)}, paddr ${hex(paddr)} and size ${hex(size)} must be aligned to the smallest page size ${hex(this.minPage)} (iommu_map refuses this; is --bitmap right?)`);
    }
    const out: string[] = [];
    let done = 0n;
    while (done < size) {
      if (out.length >= this.maxOps) this.tooMany(line, 'map', iova, size);
      const { pgsize, count } = chooseLargestPgsize(this.bitmap, iova + done, paddr + done, size - done);
      out.push(JSON.stringify({ op: 'map', iova: hex(iova + done), paddr: hex(paddr + done), pgsize: hex(pgsize), pgcount: Number(count), prot: this.prot }));
      const r = this.pt.mapPages(iova + done, paddr + done, pgsize, Number(count), this.prot);
      done += BigInt(r.mapped);
      if (r.error || r.mapped === 0) {
        this.warn(line, `map of ${hex(iova)} + ${hex(size)} fails here with ${r.error ?? 'nothing mapped'} after ${hex(done)} bytes (${r.message ?? 'no detail'}); was an unmap lost from the capture?`);
        break;
      }
    }
    this.s.ops += out.length;
    return out;
  }

  private unmap(iova: bigint, size: bigint, unmappedOnDevice: bigint, end: bigint | undefined, line: number): string[] {
    this.checkRange(iova, size, end, line);
    if ((iova | size) & (this.minPage - 1n)) {
      this.fail(line, `iova ${hex(iova)} and size ${hex(size)} must be aligned to the smallest page size ${hex(this.minPage)} (iommu_unmap refuses this; is --bitmap right?)`);
    }
    const out: string[] = [];
    let done = 0n;
    while (done < size) {
      if (out.length >= this.maxOps) this.tooMany(line, 'unmap', iova, size);
      const { pgsize, count } = chooseLargestPgsize(this.bitmap, iova + done, iova + done, size - done);
      out.push(JSON.stringify({ op: 'unmap', iova: hex(iova + done), pgsize: hex(pgsize), pgcount: Number(count) }));
      const r = this.pt.unmapPages(iova + done, pgsize, Number(count), new IotlbGather());
      // iommu_unmap stops only when a call unmaps nothing.
      if (r.unmapped === 0) break;
      done += BigInt(r.unmapped);
    }
    if (done !== unmappedOnDevice) {
      this.warn(line, `unmap of ${hex(iova)} + ${hex(size)} unmaps ${hex(done)} here but ${hex(unmappedOnDevice)} on the device; the capture may have lost events`);
    }
    this.s.ops += out.length;
    return out;
  }

  /** End of input (`lastLine` = lines read): the closing free. Throws when the capture held no event. */
  end(lastLine: number): string[] {
    if (this.ended) return [];
    this.ended = true;
    this.pt.free();
    if (this.s.mapEvents + this.s.unmapEvents === 0) this.fail(lastLine, 'no iommu map/unmap events found (enable events/iommu/map and events/iommu/unmap)');
    this.s.ops++;
    return [JSON.stringify({ op: 'free' })];
  }
}

/** Convert a whole capture held in memory (see {@link FtraceConverter} to stream one). */
export function importFtrace(text: string, opts: FtraceImportOptions): FtraceImport {
  const conv = new FtraceConverter(opts);
  const lines = [conv.header];
  const src = text.split('\n');
  if (src.at(-1) === '') src.pop();
  for (let i = 0; i < src.length; i++) {
    const raw = src[i]!;
    for (const l of conv.push(raw.endsWith('\r') ? raw.slice(0, -1) : raw, i + 1)) lines.push(l);
  }
  for (const l of conv.end(src.length)) lines.push(l);
  return { lines, ...conv.summary() };
}
