/**
 * Convert the kernel's `iommu:map` / `iommu:unmap` tracepoint output into our trace
 * format (packages/vectors/FORMAT.md).
 *
 * The tracepoints fire once per iommu_map()/iommu_unmap() call with the whole range;
 * io-pgtable sees that range as a loop of map_pages/unmap_pages calls whose page size
 * and count iommu_map() chooses (largest size both addresses are aligned to, pages up to
 * the next larger size's boundary) and which stop short at every leaf-table boundary.
 * To emit exactly those calls we run them against a real page table while converting;
 * that also checks the capture (an unmap that unmaps less here than on the device means
 * events were lost).
 *
 * Accepted line shapes (ftrace `trace` file and `trace-cmd report`, kernels before and
 * after the iova range was added to the message in 5.16):
 *   <task>-<pid> [cpu] <flags> <ts>: map: IOMMU: iova=0x... - 0x... paddr=0x... size=N
 *   <task>-<pid> [cpu] <ts>: unmap: IOMMU: iova=0x... - 0x... size=N unmapped_size=N
 *   ...: map: IOMMU: iova=0x... paddr=0x... size=N                   (before 5.16)
 */
import { allocIoPgtableOps, createSystemAllocator, type FormatName, type ProtName } from '@io-pgtable/core';
import { IotlbGather } from '@io-pgtable/core';

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
}

export interface FtraceWarning {
  line: number;
  message: string;
}

export interface FtraceImport {
  /** The trace, one JSON line per element (header first). */
  lines: string[];
  /** iommu_map / iommu_unmap events read. */
  mapEvents: number;
  unmapEvents: number;
  /** map_pages / unmap_pages calls emitted. */
  ops: number;
  /** Lines that are not iommu map/unmap events (headers, other events). */
  ignoredLines: number;
  warnings: FtraceWarning[];
}

/** A line that looks like an iommu map/unmap event but cannot be read. */
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

const EVENT = /(?:^|\s)(?:iommu:)?(map|unmap):\s+IOMMU:\s+(.*)$/;

function fls(v: bigint): number {
  return v.toString(2).length - 1;
}
function ffs(v: bigint): number {
  return fls(v & -v);
}
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

function parseHexField(text: string, key: string, line: number, file?: string): bigint {
  const m = new RegExp(`(?:^|\\s)${key}=(0x[0-9a-fA-F]+)(?=\\s|$)`).exec(text);
  if (!m) throw new FtraceError(line, `${key}=0x... missing or not hexadecimal in ${JSON.stringify(text.trim())}`, file);
  return BigInt(m[1]!);
}
function parseDecField(text: string, key: string, line: number, file?: string): bigint {
  const m = new RegExp(`(?:^|\\s)${key}=([0-9]+)(?=\\s|$)`).exec(text);
  if (!m) throw new FtraceError(line, `${key}=N missing or not decimal in ${JSON.stringify(text.trim())}`, file);
  return BigInt(m[1]!);
}

const U64 = (1n << 64n) - 1n;

/** Convert tracepoint text; throws {@link FtraceError} on an unreadable event line. */
export function importFtrace(text: string, opts: FtraceImportOptions): FtraceImport {
  const file = opts.file;
  const prot = opts.prot ?? ['read', 'write', 'cache'];
  const quirks = opts.quirks ?? [];
  const coherentWalk = opts.coherentWalk ?? true;
  const res = allocIoPgtableOps(
    opts.format,
    { pgsizeBitmap: opts.pgsizeBitmap, ias: opts.ias, oas: opts.oas, quirks, coherentWalk },
    { allocator: createSystemAllocator({ limit: 0x4000_0000 }), mode: 'kernel' },
  );
  if (!res.ok) throw new FtraceError(0, `the page-table configuration is rejected: ${res.reason}`, file);
  const pt = res.table;
  const bitmap = BigInt(pt.cfg.pgsizeBitmap);
  const minPage = bitmap & -bitmap;
  // The replay's bump allocator never reuses memory, so give it all the output address
  // space above its base (sparse memory costs nothing), capped at 1 TiB.
  const memoryLimit = Math.min(2 ** pt.cfg.oas - 0x8000_0000, 2 ** 40);

  const header = {
    format: opts.format,
    pgsizeBitmap: hex(opts.pgsizeBitmap),
    ias: opts.ias,
    oas: opts.oas,
    quirks,
    coherentWalk,
    allocLimit: hex(memoryLimit),
    dumpEvery: false,
  };
  const out: string[] = [JSON.stringify(header)];
  const warnings: FtraceWarning[] = [];
  let mapEvents = 0;
  let unmapEvents = 0;
  let ignored = 0;
  const src = text.split('\n');
  for (let i = 0; i < src.length; i++) {
    const lineNo = i + 1;
    const raw = src[i]!;
    const m = EVENT.exec(raw);
    if (!m) {
      if (raw.trim() !== '') ignored++;
      continue;
    }
    const kind = m[1]!;
    const body = m[2]!;
    const iova = parseHexField(body, 'iova', lineNo, file);
    const size = parseDecField(body, 'size', lineNo, file);
    if (iova > U64 || size > U64) throw new FtraceError(lineNo, 'value does not fit in 64 bits', file);
    const range = /iova=0x[0-9a-fA-F]+\s+-\s+(0x[0-9a-fA-F]+)/.exec(body);
    if (range && BigInt(range[1]!) !== ((iova + size) & U64)) {
      throw new FtraceError(lineNo, `range end ${range[1]} is not iova + size (${hex((iova + size) & U64)})`, file);
    }
    if (size === 0n) throw new FtraceError(lineNo, 'size=0: iommu_map/iommu_unmap never trace an empty range', file);
    if (kind === 'map') {
      mapEvents++;
      const paddr = parseHexField(body, 'paddr', lineNo, file);
      if ((iova | paddr | size) & (minPage - 1n)) {
        throw new FtraceError(lineNo, `iova ${hex(iova)}, paddr ${hex(paddr)} and size ${hex(size)} must be aligned to the smallest page size ${hex(minPage)} (iommu_map refuses this)`, file);
      }
      let done = 0n;
      while (done < size) {
        const { pgsize, count } = chooseLargestPgsize(bitmap, iova + done, paddr + done, size - done);
        out.push(JSON.stringify({ op: 'map', iova: hex(iova + done), paddr: hex(paddr + done), pgsize: hex(pgsize), pgcount: Number(count), prot }));
        const r = pt.mapPages(iova + done, paddr + done, pgsize, Number(count), prot);
        done += BigInt(r.mapped);
        if (r.error) {
          warnings.push({ line: lineNo, message: `map of ${hex(iova)} + ${hex(size)} fails here with ${r.error} after ${hex(done)} bytes (${r.message ?? 'no detail'}); was an unmap lost from the capture?` });
          break;
        }
      }
    } else {
      unmapEvents++;
      const unmappedOnDevice = parseDecField(body, 'unmapped_size', lineNo, file);
      if (iova & (minPage - 1n) || size & (minPage - 1n)) {
        throw new FtraceError(lineNo, `iova ${hex(iova)} and size ${hex(size)} must be aligned to the smallest page size ${hex(minPage)} (iommu_unmap refuses this)`, file);
      }
      let done = 0n;
      while (done < size) {
        const { pgsize, count } = chooseLargestPgsize(bitmap, iova + done, iova + done, size - done);
        out.push(JSON.stringify({ op: 'unmap', iova: hex(iova + done), pgsize: hex(pgsize), pgcount: Number(count) }));
        const r = pt.unmapPages(iova + done, pgsize, Number(count), new IotlbGather());
        if (r.error || r.unmapped === 0) break;
        done += BigInt(r.unmapped);
      }
      if (done !== unmappedOnDevice) {
        warnings.push({ line: lineNo, message: `unmap of ${hex(iova)} + ${hex(size)} unmaps ${hex(done)} here but ${hex(unmappedOnDevice)} on the device; the capture may have lost events` });
      }
    }
  }
  if (mapEvents + unmapEvents === 0) throw new FtraceError(src.length, 'no iommu map/unmap events found (enable events/iommu/map and events/iommu/unmap)', file);
  out.push(JSON.stringify({ op: 'free' }));
  pt.free();
  return { lines: out, mapEvents, unmapEvents, ops: out.length - 1, ignoredLines: ignored, warnings };
}
