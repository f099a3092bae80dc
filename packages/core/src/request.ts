/**
 * Request decoding for map_pages and unmap_pages: one decoder for both, in the kernel's
 * validation order, plus (strict mode) the checks the iommu core makes around
 * io-pgtable. Inputs are `bigint | number`; the common all-number case is decided with
 * 32-bit integer tests, and a decoded request lands in a struct the page table reuses.
 */
import { isPowerOfTwo, type MapCtx } from '@io-pgtable/allocator-api';
import { TWO_32, hex, iovaToNumber, low52 } from './addr.js';
import { Prot, type ProtName } from './constants.js';
import type { MapErrno, UnmapErrno } from './errors.js';
import { MapRequest, UnmapRequest } from './formats/lpae/table.js';
import { describe, parseProt, toU64 } from './names.js';

/** What a decoder knows about the page table: fixed at creation. */
export class RequestLimits {
  readonly bitmapLo: number;
  readonly bitmapHi: number;
  readonly iasSize: number;
  readonly oasSize: number;
  constructor(
    readonly bitmap: number,
    readonly ias: number,
    readonly oas: number,
    readonly ttbr1: boolean,
    readonly strict: boolean,
    /** The largest size the whole table maps (strict mode refuses larger pages). */
    readonly span: number,
  ) {
    this.bitmapLo = (bitmap % TWO_32) | 0;
    this.bitmapHi = Math.floor(bitmap / TWO_32) | 0;
    this.iasSize = 2 ** ias;
    this.oasSize = 2 ** oas;
  }
}

/** A rejected request: nothing was changed. */
export interface RequestError<E extends string> {
  readonly error: E;
  readonly message: string;
}

function reject<E extends string>(error: E, message: string): RequestError<E> {
  return { error, message };
}

// Each decoder below is a small test for the common input (a number in range) and a call
// to its `...Slow` twin for everything else: the slow paths (bigints, messages) are most of
// the bytecode, and outlined, the fast paths are small enough for V8 to inline them into
// the page table's hot calls (W4 spends a third of its time outside the tables).

/** Page size: in the bitmap (both modes), one bit (strict). Returns the size, or an error. */
function decodePgsize(v: unknown, lim: RequestLimits): number | RequestError<'EINVAL'> {
  // A number of at most 1 GiB whose bits are all in the bitmap's low word (one bit in strict mode).
  if (typeof v === 'number' && v > 0 && v <= 0x4000_0000 && (v & lim.bitmapLo) === v && (!lim.strict || (v & (v - 1)) === 0)) return v;
  return decodePgsizeSlow(v, lim);
}

function decodePgsizeSlow(v: unknown, lim: RequestLimits): number | RequestError<'EINVAL'> {
  const big = toU64(v);
  if (big === null) return reject('EINVAL', `pgsize ${describe(v)} is not an unsigned 64-bit integer`);
  if (big === 0n || (big & BigInt(lim.bitmap)) !== big) return reject('EINVAL', `pgsize ${hex(big)} is not in the page-size bitmap ${hex(lim.bitmap)}`);
  const ps = Number(big);
  if (lim.strict && !isPowerOfTwo(ps)) return reject('EINVAL', `pgsize ${hex(ps)} has more than one bit set`);
  return ps;
}

/** The kernel's start-address range check: (s64)iova >> ias must be 0 (all ones with TTBR1). */
function decodeIova(v: unknown, lim: RequestLimits): number | RequestError<'EINVAL' | 'ERANGE'> {
  if (typeof v === 'number' && v >= 0 && v < lim.iasSize && !lim.ttbr1 && Number.isInteger(v)) return v;
  return decodeIovaSlow(v, lim);
}

function decodeIovaSlow(v: unknown, lim: RequestLimits): number | RequestError<'EINVAL' | 'ERANGE'> {
  const big = toU64(v);
  if (big === null) return reject('EINVAL', `iova ${describe(v)} is not an unsigned 64-bit integer`);
  const ext = BigInt.asIntN(64, big) >> BigInt(lim.ias);
  if (lim.ttbr1 ? ext !== -1n : ext !== 0n) return reject('ERANGE', `iova ${hex(big)} is outside the ${lim.ias}-bit input address space`);
  return iovaToNumber(big)!;
}

/** The output address: inside oas (both modes: the kernel refuses it too). */
function decodePaddr(v: unknown, lim: RequestLimits): number | RequestError<'EINVAL' | 'ERANGE'> {
  if (typeof v === 'number' && v >= 0 && v < lim.oasSize && Number.isInteger(v)) return v;
  return decodePaddrSlow(v, lim);
}

function decodePaddrSlow(v: unknown, lim: RequestLimits): number | RequestError<'EINVAL' | 'ERANGE'> {
  const big = toU64(v);
  if (big === null) return reject('EINVAL', `paddr ${describe(v)} is not an unsigned 64-bit integer`);
  if (big >> BigInt(lim.oas) !== 0n) return reject('ERANGE', `paddr ${hex(big)} is outside the ${lim.oas}-bit output address space`);
  return Number(big);
}

/** The prot mask of a number or a list of names, with read or write in it. */
function decodeProt(v: unknown): number | RequestError<'EINVAL'> {
  if (typeof v === 'number' && (v | 0) === v && v >= 0 && v <= 0x3f && (v & RW) !== 0) return v;
  return decodeProtSlow(v);
}

function decodeProtSlow(v: unknown): number | RequestError<'EINVAL'> {
  let mask: number;
  if (typeof v === 'number' && (v | 0) === v && v >= 0 && v <= 0x3f) mask = v;
  else {
    const pm = parseProt(v as number | readonly ProtName[]);
    if ('error' in pm) return reject('EINVAL', pm.error);
    mask = pm.mask;
  }
  if (!(mask & RW)) return reject('EINVAL', 'prot has neither read nor write');
  return mask;
}

/** An int32 count of at least 1: the common pgcount, decided without a call. */
function smallCount(v: unknown): boolean {
  return typeof v === 'number' && (v | 0) === v && v >= 1;
}

/** map's pgcount: a safe integer, at least 1 in strict mode (0 maps nothing in the kernel). */
function mapCountError(v: unknown, lim: RequestLimits): RequestError<'EINVAL'> | null {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return reject('EINVAL', `pgcount ${describe(v)} is not a count`);
  if (lim.strict && v < 1) return reject('EINVAL', 'pgcount must be at least 1');
  return null;
}

/** unmap's pgcount: a safe integer, at least 1. */
function unmapCountError(v: unknown): RequestError<'EINVAL'> | null {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) return reject('EINVAL', `pgcount ${describe(v)} must be at least 1`);
  return null;
}

/** Low 52 bits of a decoded IOVA (TTBR1 addresses are negative). */
function index52(iv: number): number {
  return iv >= 0 ? iv : low52(iv);
}

/** Is `v` a multiple of the power of two `ps`? (32-bit test for ps <= 2^31; `v` may be negative.) */
function aligned(v: number, ps: number): boolean {
  return ps <= 0x8000_0000 ? ((v >>> 0) & (ps - 1)) === 0 : v % ps === 0;
}

/** Strict: the whole run inside the input address space. */
function runPastIas(iv: number, len: number, lim: RequestLimits): boolean {
  const start = lim.ttbr1 ? iv + lim.iasSize : iv; // TTBR1: offset from the bottom of the upper region
  return start + len > lim.iasSize;
}

const RW = Prot.READ | Prot.WRITE;

/**
 * Strict mode's checks of a map around io-pgtable (the iommu core's): alignment, the run
 * inside ias and oas, a page no larger than the table. The decoder tests the common case
 * inline; this says which check failed, or null when they all pass (a page above 1 GiB).
 */
function strictMapError(iv: number, pa: number, ps: number, pgcount: number, lim: RequestLimits): RequestError<MapErrno> | null {
  if (!aligned(iv, ps) || !aligned(pa, ps)) return reject('EINVAL', `unaligned: iova ${hex(iv)} pa ${hex(pa)} size ${hex(ps)}`);
  const len = ps * pgcount;
  if (runPastIas(iv, len, lim)) return reject('ERANGE', `iova ${hex(iv)} + ${hex(len)} runs past the end of the input address space`);
  if (pa + len > lim.oasSize) return reject('ERANGE', `paddr ${hex(pa)} + ${hex(len)} runs past the ${lim.oas}-bit output address space`);
  if (lim.span < ps) return reject('EINVAL', `pgsize ${hex(ps)} is larger than the whole table`);
  return null;
}

/** Strict mode's checks of an unmap: alignment, the run inside ias (as for a map). */
function strictUnmapError(iv: number, ps: number, pgcount: number, lim: RequestLimits): RequestError<UnmapErrno> | null {
  if (!aligned(iv, ps)) return reject('EINVAL', `unaligned: iova ${hex(iv)} size ${hex(ps)}`);
  if (runPastIas(iv, ps * pgcount, lim)) return reject('ERANGE', `iova ${hex(iv)} + ${hex(ps * pgcount)} runs past the end of the input address space`);
  return null;
}

/**
 * A page table's request decoder: its limits, its leaf templates, and the two request
 * structs it fills (one each, reused: no allocation per call).
 */
export class RequestDecoder {
  readonly mapReq = new MapRequest();
  readonly unmapReq = new UnmapRequest();

  constructor(
    readonly lim: RequestLimits,
    /** The leaf attributes of a prot mask (arm_lpae_prot_to_pte). */
    private readonly template: (prot: number) => { lo: number; hi: number },
  ) {}

  /** map_pages arguments into `mapReq`, or why they are refused. */
  map(iova: unknown, paddr: unknown, pgsize: unknown, pgcount: unknown, prot: unknown, ctx: MapCtx): RequestError<MapErrno> | null {
    const lim = this.lim;
    const req = this.mapReq;
    const ps = decodePgsize(pgsize, lim);
    if (typeof ps !== 'number') return ps;
    if (!smallCount(pgcount)) {
      const bad = mapCountError(pgcount, lim);
      if (bad !== null) return bad;
    }
    const n = pgcount as number;
    const iv = decodeIova(iova, lim);
    if (typeof iv !== 'number') return iv;
    const pa = decodePaddr(paddr, lim);
    if (typeof pa !== 'number') return pa;
    const mask = decodeProt(prot);
    if (typeof mask !== 'number') return mask;
    // Strict mode's checks, written out: a call here would box iv and pa (doubles) per map.
    // Pages above 1 GiB take strictMapError's full checks.
    if (
      lim.strict &&
      !(
        ps <= 0x4000_0000 &&
        ((iv >>> 0) & (ps - 1)) === 0 &&
        ((pa >>> 0) & (ps - 1)) === 0 &&
        (lim.ttbr1 ? iv + lim.iasSize : iv) + ps * n <= lim.iasSize &&
        pa + ps * n <= lim.oasSize &&
        lim.span >= ps
      )
    ) {
      const bad = strictMapError(iv, pa, ps, n, lim);
      if (bad !== null) return bad;
    }
    const t = this.template(mask);
    req.iova = iv;
    req.i52 = index52(iv);
    req.paddr = pa;
    req.pgsize = ps;
    req.pgcount = n;
    req.tLo = t.lo;
    req.tHi = t.hi;
    req.ctx = ctx;
    req.strict = lim.strict;
    return null;
  }

  /** unmap_pages arguments (the gather is checked by the caller) into `unmapReq`, or why they are refused. */
  unmap(iova: unknown, pgsize: unknown, pgcount: unknown): RequestError<UnmapErrno> | null {
    const lim = this.lim;
    const req = this.unmapReq;
    const ps = decodePgsize(pgsize, lim);
    if (typeof ps !== 'number') return ps;
    if (!smallCount(pgcount)) {
      const bad = unmapCountError(pgcount);
      if (bad !== null) return bad;
    }
    const n = pgcount as number;
    const iv = decodeIova(iova, lim);
    if (typeof iv !== 'number') return iv;
    if (lim.strict && !(ps <= 0x4000_0000 && ((iv >>> 0) & (ps - 1)) === 0 && (lim.ttbr1 ? iv + lim.iasSize : iv) + ps * n <= lim.iasSize)) {
      const bad = strictUnmapError(iv, ps, n, lim);
      if (bad !== null) return bad;
    }
    req.iova = iv;
    req.i52 = index52(iv);
    req.pgsize = ps;
    req.pgcount = n;
    req.strict = lim.strict;
    return null;
  }
}
