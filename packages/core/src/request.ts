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
import type { MapRequest, UnmapRequest } from './formats/lpae/table.js';
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

/** Page size: in the bitmap (both modes), one bit (strict). Returns the size, or an error. */
function decodePgsize(v: unknown, lim: RequestLimits): number | RequestError<'EINVAL'> {
  // Fast path: a number of at most 1 GiB whose bits are all in the bitmap's low word.
  if (typeof v === 'number' && v > 0 && v <= 0x4000_0000 && (v & lim.bitmapLo) === v) {
    if (lim.strict && (v & (v - 1)) !== 0) return reject('EINVAL', `pgsize ${hex(v)} has more than one bit set`);
    return v;
  }
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
  const big = toU64(v);
  if (big === null) return reject('EINVAL', `iova ${describe(v)} is not an unsigned 64-bit integer`);
  const ext = BigInt.asIntN(64, big) >> BigInt(lim.ias);
  if (lim.ttbr1 ? ext !== -1n : ext !== 0n) return reject('ERANGE', `iova ${hex(big)} is outside the ${lim.ias}-bit input address space`);
  return iovaToNumber(big)!;
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
 * map_pages arguments into `req`, or why they are refused. `template(prot)` gives the
 * leaf attributes of a prot mask.
 */
export function decodeMap(
  lim: RequestLimits,
  iova: unknown,
  paddr: unknown,
  pgsize: unknown,
  pgcount: unknown,
  prot: unknown,
  ctx: MapCtx,
  req: MapRequest,
  template: (prot: number) => { lo: number; hi: number },
): RequestError<MapErrno> | null {
  const ps = decodePgsize(pgsize, lim);
  if (typeof ps !== 'number') return ps;
  if (typeof pgcount !== 'number' || !Number.isSafeInteger(pgcount) || pgcount < 0) return reject('EINVAL', `pgcount ${describe(pgcount)} is not a count`);
  if (lim.strict && pgcount < 1) return reject('EINVAL', 'pgcount must be at least 1');
  const iv = decodeIova(iova, lim);
  if (typeof iv !== 'number') return iv;
  let pa: number;
  if (typeof paddr === 'number' && paddr >= 0 && paddr < lim.oasSize && Number.isInteger(paddr)) pa = paddr;
  else {
    const big = toU64(paddr);
    if (big === null) return reject('EINVAL', `paddr ${describe(paddr)} is not an unsigned 64-bit integer`);
    if (big >> BigInt(lim.oas) !== 0n) return reject('ERANGE', `paddr ${hex(big)} is outside the ${lim.oas}-bit output address space`);
    pa = Number(big);
  }
  let mask: number;
  if (typeof prot === 'number' && (prot | 0) === prot && prot >= 0 && prot <= 0x3f) mask = prot;
  else {
    const pm = parseProt(prot as number | readonly ProtName[]);
    if ('error' in pm) return reject('EINVAL', pm.error);
    mask = pm.mask;
  }
  if (!(mask & RW)) return reject('EINVAL', 'prot has neither read nor write');
  if (lim.strict) {
    if (!aligned(iv, ps) || !aligned(pa, ps)) return reject('EINVAL', `unaligned: iova ${hex(iv)} pa ${hex(pa)} size ${hex(ps)}`);
    const len = ps * pgcount;
    if (runPastIas(iv, len, lim)) return reject('ERANGE', `iova ${hex(iv)} + ${hex(len)} runs past the end of the input address space`);
    if (pa + len > lim.oasSize) return reject('ERANGE', `paddr ${hex(pa)} + ${hex(len)} runs past the ${lim.oas}-bit output address space`);
    if (lim.span < ps) return reject('EINVAL', `pgsize ${hex(ps)} is larger than the whole table`);
  }
  const t = template(mask);
  req.iova = iv;
  req.i52 = index52(iv);
  req.paddr = pa;
  req.pgsize = ps;
  req.pgcount = pgcount;
  req.tLo = t.lo;
  req.tHi = t.hi;
  req.ctx = ctx;
  req.strict = lim.strict;
  return null;
}

/** unmap_pages arguments (the gather is checked by the caller) into `req`, or why they are refused. */
export function decodeUnmap(lim: RequestLimits, iova: unknown, pgsize: unknown, pgcount: unknown, req: UnmapRequest): RequestError<UnmapErrno> | null {
  const ps = decodePgsize(pgsize, lim);
  if (typeof ps !== 'number') return ps;
  if (typeof pgcount !== 'number' || !Number.isSafeInteger(pgcount) || pgcount < 1) return reject('EINVAL', `pgcount ${describe(pgcount)} must be at least 1`);
  const iv = decodeIova(iova, lim);
  if (typeof iv !== 'number') return iv;
  if (lim.strict) {
    if (!aligned(iv, ps)) return reject('EINVAL', `unaligned: iova ${hex(iv)} size ${hex(ps)}`);
    if (runPastIas(iv, ps * pgcount, lim)) return reject('ERANGE', `iova ${hex(iv)} + ${hex(ps * pgcount)} runs past the end of the input address space`);
  }
  req.iova = iv;
  req.i52 = index52(iv);
  req.pgsize = ps;
  req.pgcount = pgcount;
  req.strict = lim.strict;
  return null;
}
