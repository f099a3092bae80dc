/**
 * Replay a reference trace the way the kernel oracle ran it: kernel mode, the bump
 * allocator as cfg.alloc/cfg.free, every TLB and DMA call recorded as an event, and a
 * dump of every live allocation after each op. Output lines are in canonical form
 * (FORMAT.md: no whitespace, fixed key order, lowercase hex).
 */
import { hex, iovaToU64 } from '../addr.js';
import { createBumpAllocator, type BumpEvent } from '../phys/bump-allocator.js';
import { PhysMemory, storeOf } from '../phys/memory.js';
import { IotlbGather } from '../gather.js';
import { IoPgtableError } from '../errors.js';
import { allocIoPgtableOps, type PageTable } from '../io-pgtable.js';
import { parseTrace, type Trace, type TraceOp } from './trace.js';

type Event = string[];

const ENOENT_AS_SIZE_T = (1n << 64n) - 2n;
const ERRNO_OUT: Record<string, string> = { EINVAL: '-EINVAL', ERANGE: '-ERANGE', EEXIST: '-EEXIST', ENOMEM: '-ENOMEM', ENOENT: '-ENOENT' };

function q(s: string): string {
  return JSON.stringify(s);
}

function eventsJson(events: Event[]): string {
  return '[' + events.map((e) => '[' + e.map(q).join(',') + ']').join(',') + ']';
}

function fields(obj: Record<string, number>): string {
  return '{' + Object.entries(obj).map(([k, v]) => `${q(k)}:${q(hex(v))}`).join(',') + '}';
}

/** Run a parsed trace; returns the result lines (without trailing newlines). */
export function replayParsed(trace: Trace): string[] {
  const h = trace.header;
  const out: string[] = [];
  let events: Event[] = [];
  const memory = new PhysMemory();
  const bump = createBumpAllocator({
    memory,
    base: Number(h.allocBase),
    limit: Number(h.allocLimit),
    onEvent: (e: BumpEvent) => {
      events.push(e[0] === 'alloc_fail' ? [e[0], hex(e[1])] : e[0] === 'alloc' ? [e[0], hex(e[1]), hex(e[2])] : [e[0], hex(e[1]), hex(e[2])]);
    },
  });
  const coherent = h.coherentWalk;
  const res = allocIoPgtableOps(
    h.format,
    { pgsizeBitmap: h.pgsizeBitmap, ias: h.ias, oas: h.oas, quirks: h.quirks, coherentWalk: coherent },
    {
      allocator: bump,
      mode: 'kernel',
      tlb: {
        tlbFlushAll: () => events.push(['tlb_flush_all']),
        tlbFlushWalk: (iova, size, granule) => events.push(['tlb_flush_walk', hex(iovaToU64(iova)), hex(size), hex(granule)]),
        tlbAddPage: (_g, iova, granule) => events.push(['tlb_add_page', hex(iovaToU64(iova)), hex(granule)]),
      },
      dma: {
        map: (p, size) => (events.push(['dma_map', hex(p), hex(size)]), p),
        unmap: (p, size) => events.push(['dma_unmap', hex(p), hex(size)]),
        sync: (p, bytes) => events.push(['sync', hex(p), hex(bytes)]),
      },
    },
  );

  const dump = (): string => {
    const parts: string[] = [];
    for (const [addr, size] of bump.liveAllocations()) {
      const w = storeOf(memory).peek(addr);
      const base = PhysMemory.wordIndex(addr);
      const entries: string[] = [];
      for (let i = 0; i < size / 8; i++) {
        const lo = w[base + 2 * i]!;
        const hi = w[base + 2 * i + 1]!;
        if (lo !== 0 || hi !== 0) entries.push(`${q(String(i))}:${q(hex((BigInt(hi) << 32n) | BigInt(lo)))}`);
      }
      parts.push(`${q(hex(addr))}:{${entries.join(',')}}`);
    }
    return '{' + parts.join(',') + '}';
  };
  const withTables = (body: string): string => (h.dumpEvery ? `{${body},"tables":${dump()}}` : `{${body}}`);

  if (!res.ok) {
    out.push(`{"error":${q(events.some((e) => e[0] === 'alloc_fail') ? '-ENOMEM' : '-EINVAL')},"events":${eventsJson(events)}}`);
    out.push('{"final":{"tables":{}}}');
    return out;
  }
  const pt = res.table;
  const c = pt.cfg;
  const g = pt.geometry;
  let regs: string;
  if (c.tcr) regs = `"ttbr":${q(hex(c.ttbr!))},"tcr":${fields({ ...c.tcr })},"mair":${q(hex(c.mair!))}`;
  else if (c.vtcr) regs = `"vttbr":${q(hex(c.vttbr!))},"vtcr":${fields({ ...c.vtcr })}`;
  else regs = `"transtab":${q(hex(c.transtab!))},"memattr":${q(hex(c.memattr!))}`;
  const cfgJson =
    `{"format":${q(c.format)},"pgsizeBitmap":${q(hex(c.pgsizeBitmap))},"ias":${c.ias},"oas":${c.oas},` +
    `"quirks":${q(hex(c.quirks))},"coherentWalk":${c.coherentWalk},${regs}}`;
  const internal = `{"startLevel":${g.startLevel},"pgdBits":${g.pgdBits},"bitsPerLevel":${g.bitsPerLevel},"pgdSize":${q(hex(g.pgdSize))},"pgd":${q(hex(pt.pgd))}}`;
  out.push(withTables(`"cfg":${cfgJson},"internal":${internal},"events":${eventsJson(events)}`));
  events = [];

  for (const op of trace.ops) {
    let fatal: string | null;
    try {
      fatal = runOp(pt, op, (body) => {
        out.push(withTables(`${body},"events":${eventsJson(events)}`));
      });
    } catch (e) {
      if (!(e instanceof IoPgtableError)) throw e;
      fatal = e.reason;
    }
    if (fatal !== null) {
      out.push(`{"error":${q(fatal)},"events":${eventsJson(events)}}`);
      out.push('{"final":{"aborted":true}}');
      return out;
    }
    events = [];
  }
  out.push(`{"final":{"tables":${dump()}}}`);
  return out;
}

function count(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** Run one op; `emit` gets the result body. Returns a fatal-error message or null. */
function runOp(pt: PageTable, op: TraceOp, emit: (body: string) => void): string | null {
  switch (op.op) {
    case 'map': {
      const r = pt.mapPages(op.iova, op.paddr, op.pgsize, count(op.pgcount), op.prot);
      emit(`"ret":${r.error ? q(ERRNO_OUT[r.error]!) : 0},"mapped":${q(hex(r.mapped))}`);
      return null;
    }
    case 'unmap': {
      const r = pt.unmapPages(op.iova, op.pgsize, count(op.pgcount), new IotlbGather({ queued: op.queued }));
      if (r.error === 'ENOENT') emit(`"ret":"-ENOENT","unmapped":${q(hex(ENOENT_AS_SIZE_T))}`);
      else emit(`"ret":0,"unmapped":${q(hex(r.unmapped))}`);
      return null;
    }
    case 'iova_to_phys': {
      if (op.iova === (1n << 64n) - 1n) {
        return 'undefined-behaviour: iova_to_phys(0xffffffffffffffff) walks nothing (iova + 1 wraps) and reads an uninitialised result';
      }
      emit(`"ret":0,"phys":${q(hex(pt.iovaToPhys(op.iova)))}`);
      return null;
    }
    case 'free': {
      pt.free();
      emit('"ret":0');
      return null;
    }
  }
}

/** Parse and replay a trace text. Throws TraceError for malformed input. */
export function replayTrace(text: string, file?: string): string[] {
  return replayParsed(parseTrace(text, file));
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
