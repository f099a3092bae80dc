/**
 * Replay of a reference trace the way the kernel oracle ran it (FORMAT.md): kernel mode,
 * the bump allocator as cfg.alloc/cfg.free, every TLB and DMA call recorded as an event,
 * and (with `dumpEvery`) a dump of every live allocation after each op. One op at a
 * time, so a caller can stream a trace of any length: the output of each step comes as
 * chunks of canonical text (no whitespace, fixed key order, lowercase hex), a table dump
 * one table per chunk, so even a huge dump is never one string.
 */
import { hex, iovaToU64 } from '../addr.js';
import { createBumpAllocator, type BumpAllocator, type BumpEvent } from '../phys/bump-allocator.js';
import { PhysMemory } from '../phys/memory.js';
import { IotlbGather } from '../gather.js';
import { IoPgtableError } from '../errors.js';
import { allocIoPgtableOps, type PageTable } from '../io-pgtable.js';
import { TraceError, type TraceHeader, type TraceOp } from './trace.js';

const ENOENT_AS_SIZE_T = (1n << 64n) - 2n;
const ERRNO_OUT: Readonly<Record<string, string>> = { EINVAL: '-EINVAL', ERANGE: '-ERANGE', EEXIST: '-EEXIST', ENOMEM: '-ENOMEM', ENOENT: '-ENOENT' };

/** `hex` without a BigInt round trip for the common case (a non-negative safe integer). */
function h(v: number | bigint): string {
  return typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER ? '0x' + v.toString(16) : hex(v);
}

/** A descriptor from its two 32-bit halves, as canonical hex. */
function h64(hi: number, lo: number): string {
  return hi === 0 ? '0x' + lo.toString(16) : '0x' + hi.toString(16) + lo.toString(16).padStart(8, '0');
}

function count(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

function fields(obj: Record<string, number>): string {
  let s = '';
  for (const k in obj) s += `${s ? ',' : ''}"${k}":"${h(obj[k]!)}"`;
  return `{${s}}`;
}

/**
 * One trace's replay. Call {@link start} once, {@link op} for each op in order (ops after
 * an initialisation failure or a fatal op are ignored, as the oracle ignores them), then
 * {@link finish}. Each yields the text of its output line(s), newline included.
 */
export class TraceReplayer {
  private readonly memory = new PhysMemory();
  private readonly bump: BumpAllocator;
  /** Events of the current step, each already rendered as a JSON array. */
  private events: string[] = [];
  private pt: PageTable | null = null;
  /** Set once the output is complete (init failure or a fatal op): later ops are ignored. */
  private closed = false;

  /**
   * @param headerLine where the header is, for errors about it
   * @throws TraceError when the header asks for something the model cannot represent
   *   (an allocBase + allocLimit past 2^53)
   */
  constructor(
    private readonly header: TraceHeader,
    headerLine = 1,
    file?: string,
  ) {
    const onEvent = (e: BumpEvent) => {
      this.events.push(e[0] === 'alloc_fail' ? `["alloc_fail","${h(e[1])}"]` : `["${e[0]}","${h(e[1])}","${h(e[2])}"]`);
    };
    try {
      this.bump = createBumpAllocator({ memory: this.memory, base: header.allocBase, limit: header.allocLimit, onEvent });
    } catch (e) {
      if (!(e instanceof IoPgtableError)) throw e;
      throw new TraceError(
        headerLine,
        `allocBase ${hex(header.allocBase)} with allocLimit ${hex(header.allocLimit)} reaches past 2^53, the largest physical address the model represents exactly`,
        file,
      );
    }
  }

  /** The initialisation line (two lines, and the trace is closed, when the kernel returns NULL). */
  *start(): Generator<string> {
    const hd = this.header;
    const res = allocIoPgtableOps(
      hd.format,
      { pgsizeBitmap: hd.pgsizeBitmap, ias: hd.ias, oas: hd.oas, quirks: hd.quirks, coherentWalk: hd.coherentWalk },
      {
        allocator: this.bump,
        mode: 'kernel',
        tlb: {
          tlbFlushAll: () => this.events.push('["tlb_flush_all"]'),
          tlbFlushWalk: (iova, size, granule) => this.events.push(`["tlb_flush_walk","${hex(iovaToU64(iova))}","${h(size)}","${h(granule)}"]`),
          tlbAddPage: (_g, iova, granule) => this.events.push(`["tlb_add_page","${hex(iovaToU64(iova))}","${h(granule)}"]`),
        },
        dma: {
          map: (p, size) => (this.events.push(`["dma_map","${h(p)}","${h(size)}"]`), p),
          unmap: (p, size) => this.events.push(`["dma_unmap","${h(p)}","${h(size)}"]`),
          sync: (p, bytes) => this.events.push(`["sync","${h(p)}","${h(bytes)}"]`),
        },
      },
    );
    if (!res.ok) {
      const enomem = this.events.some((e) => e.startsWith('["alloc_fail"'));
      yield `{"error":"${enomem ? '-ENOMEM' : '-EINVAL'}","events":${this.takeEvents()}}\n{"final":{"tables":{}}}\n`;
      this.closed = true;
      return;
    }
    const pt = (this.pt = res.table);
    const c = pt.cfg;
    const g = pt.geometry;
    let regs: string;
    if (c.tcr) regs = `"ttbr":"${h(c.ttbr!)}","tcr":${fields({ ...c.tcr })},"mair":"${h(c.mair!)}"`;
    else if (c.vtcr) regs = `"vttbr":"${h(c.vttbr!)}","vtcr":${fields({ ...c.vtcr })}`;
    else regs = `"transtab":"${h(c.transtab!)}","memattr":"${h(c.memattr!)}"`;
    const cfg =
      `{"format":"${c.format}","pgsizeBitmap":"${h(c.pgsizeBitmap)}","ias":${c.ias},"oas":${c.oas},` +
      `"quirks":"${h(c.quirks)}","coherentWalk":${c.coherentWalk},${regs}}`;
    const internal = `{"startLevel":${g.startLevel},"pgdBits":${g.pgdBits},"bitsPerLevel":${g.bitsPerLevel},"pgdSize":"${h(g.pgdSize)}","pgd":"${h(pt.pgd)}"}`;
    yield* this.line(`"cfg":${cfg},"internal":${internal},"events":${this.takeEvents()}`);
  }

  /** One op's line; a fatal op (the oracle's crash cases) writes its error and the aborted final line. */
  *op(op: TraceOp): Generator<string> {
    if (this.closed || this.pt === null) return;
    let body: string;
    try {
      body = this.run(this.pt, op);
    } catch (e) {
      if (!(e instanceof IoPgtableError)) throw e;
      body = `"error":${JSON.stringify(e.reason)}`;
    }
    if (body.startsWith('"error"')) {
      yield `{${body},"events":${this.takeEvents()}}\n{"final":{"aborted":true}}\n`;
      this.closed = true;
      return;
    }
    yield* this.line(`${body},"events":${this.takeEvents()}`);
  }

  /** The final line (nothing when the output was already closed). */
  *finish(): Generator<string> {
    if (this.closed) return;
    this.closed = true;
    yield '{"final":{"tables":';
    yield* this.dump();
    yield '}}\n';
  }

  private *line(body: string): Generator<string> {
    if (!this.header.dumpEvery) {
      yield `{${body}}\n`;
      return;
    }
    yield `{${body},"tables":`;
    yield* this.dump();
    yield '}\n';
  }

  private takeEvents(): string {
    const s = `[${this.events.join(',')}]`;
    this.events = [];
    return s;
  }

  /** Every live allocation's non-zero entries, one chunk per allocation. */
  private *dump(): Generator<string> {
    let first = true;
    yield '{';
    for (const [addr, size] of this.bump.liveAllocations()) {
      const w = this.memory.readWords(addr, size);
      let entries = '';
      for (let i = 0; i < w.length; i += 2) {
        const lo = w[i]!;
        const hi = w[i + 1]!;
        if (lo !== 0 || hi !== 0) entries += `${entries ? ',' : ''}"${i >>> 1}":"${h64(hi, lo)}"`;
      }
      yield `${first ? '' : ','}"${h(addr)}":{${entries}}`;
      first = false;
    }
    yield '}';
  }

  /** Run one op; returns the line body before "events" (`"error":...` for a fatal op). */
  private run(pt: PageTable, op: TraceOp): string {
    switch (op.op) {
      case 'map': {
        const r = pt.mapPages(op.iova, op.paddr, op.pgsize, count(op.pgcount), op.prot);
        return `"ret":${r.error ? `"${ERRNO_OUT[r.error]!}"` : 0},"mapped":"${h(r.mapped)}"`;
      }
      case 'unmap': {
        const r = pt.unmapPages(op.iova, op.pgsize, count(op.pgcount), new IotlbGather({ queued: op.queued }));
        return r.error === 'ENOENT' ? `"ret":"-ENOENT","unmapped":"${hex(ENOENT_AS_SIZE_T)}"` : `"ret":0,"unmapped":"${h(r.unmapped)}"`;
      }
      case 'iova_to_phys':
        if (op.iova === (1n << 64n) - 1n) {
          return '"error":"undefined-behaviour: iova_to_phys(0xffffffffffffffff) walks nothing (iova + 1 wraps) and reads an uninitialised result"';
        }
        return `"ret":0,"phys":"${h(pt.iovaToPhys(op.iova))}"`;
      case 'free':
        pt.free();
        return '"ret":0';
    }
  }
}
