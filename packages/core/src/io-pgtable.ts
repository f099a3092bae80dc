/**
 * alloc_io_pgtable_ops / free_io_pgtable_ops and the public PageTable: input
 * conversion, the kernel's validation order, and (in `strict` mode) the checks the
 * kernel's iommu core performs around io-pgtable.
 */
import {
  BLOCKING_CTX,
  isPowerOfTwo,
  type FlushToken,
  type MapCtx,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';
import { TWO_32, TWO_52, hex, iovaToNumber, low52 } from './addr.js';
import {
  CUSTOM_ALLOCATOR_FORMATS,
  FORMATS,
  PROT_BY_NAME,
  Prot,
  Quirk,
  UNMODELLED_FORMATS,
  type FormatName,
  type ProtName,
  type QuirkName,
} from './constants.js';
import { LPAE_MAIR, configureLpae, type LpaeRegisters, type TcrFields, type VtcrFields } from './formats/lpae/format.js';
import { protToPte, pteToBigInt, pteToPaddr as pteAddr } from './formats/lpae/pte.js';
import {
  E_EXIST,
  E_INVAL,
  E_NOMEM,
  E_OK,
  LpaeEngine,
  UNMAP_ENOENT,
  type DirtyRecorder,
  type EngineHooks,
} from './formats/lpae/table.js';
import { FlushTracker } from './flush.js';
import { IotlbGather } from './gather.js';
import type { Geometry } from './geometry.js';
import { IoPgtableError, type MapErrno, type MapResult, type UnmapResult } from './errors.js';
import { PhysMemory } from './phys/memory.js';
import { TableRegistry } from './phys/registry.js';
import { createSystemAllocator } from './phys/system-allocator.js';
import type { AllocHook, DmaOps, FlushOps, FreeHook, Mode } from './types.js';

/** Integer inputs: a bigint, or a non-negative safe-integer number. */
export type U64 = bigint | number;

export interface PgtableCfg<C = unknown> {
  /** Page sizes requested (the kernel narrows them). */
  pgsizeBitmap: U64;
  ias: number;
  oas: number;
  /** Quirk bitmask or names (with or without the `IO_PGTABLE_QUIRK_` prefix). */
  quirks?: number | readonly string[];
  /** Is the table walker cache-coherent with the CPU? (default true) */
  coherentWalk?: boolean;
  /** Raw kernel hooks: both or neither, and only on formats with the custom-allocator capability. */
  alloc?: AllocHook<C>;
  free?: FreeHook<C>;
}

export interface PgtableEnv<C = unknown> {
  /** A plugin stack; becomes the cfg.alloc/cfg.free pair. */
  allocator?: TableAllocator;
  /** Where table memory lives; defaults to the allocator's memory. */
  memory?: PhysMemory;
  tlb?: FlushOps<C> | null;
  /** Observer of DMA map/unmap/sync on non-coherent walks (default: identity, silent). */
  dma?: DmaOps;
  /** Passed to the hooks and flush ops, as `alloc_io_pgtable_ops(fmt, cfg, cookie)` does. */
  cookie?: C;
  /** `strict` (default) or `kernel`; see the README's behaviour table. */
  mode?: Mode;
  /**
   * Verify allocations (zeroed, aligned, in range, no overlap). Default: on in `strict`
   * mode, off in `kernel` mode (the kernel checks none of them).
   */
  checkAllocations?: boolean;
  /** Share overlap detection between page tables that allocate from the same memory. */
  registry?: TableRegistry;
}

/** The caller's cfg after `alloc_io_pgtable_ops`: restricted values plus registers. */
export interface EffectiveCfg {
  format: FormatName;
  pgsizeBitmap: number;
  ias: number;
  oas: number;
  quirks: number;
  coherentWalk: boolean;
  /** S1: TTBR (PGD address), TCR fields and MAIR. */
  ttbr?: number;
  tcr?: TcrFields;
  mair?: bigint;
  /** S2: VTTBR and VTCR fields. */
  vttbr?: number;
  vtcr?: VtcrFields;
  /** Mali: TRANSTAB and MEMATTR. */
  transtab?: number;
  memattr?: number;
}

export type LookupResult =
  | { kind: 'mapped'; paddr: number; level: number; pte: bigint }
  | { kind: 'unmapped'; level: number };

export interface WalkResult {
  /** 0, or -22 (EINVAL) when an invalid entry was met. */
  ret: number;
  /** Descriptors on the path, by absolute level (start level .. leaf). */
  ptes: Array<bigint | undefined>;
}

export const IOMMU_DIRTY_NO_CLEAR = 1;

const SAFE = Number.MAX_SAFE_INTEGER;

/** Parse quirk names or a mask into a mask; unknown names are reported. */
export function parseQuirks(q: number | readonly string[] | undefined): { mask: number } | { error: string } {
  if (q === undefined) return { mask: 0 };
  if (typeof q === 'number') {
    if (!Number.isInteger(q) || q < 0 || q > 0xffffffff) return { error: `quirks must be a 32-bit mask, got ${q}` };
    return { mask: q };
  }
  if (!Array.isArray(q)) return { error: 'quirks must be a mask or an array of names' };
  let mask = 0;
  for (const raw of q) {
    const name = typeof raw === 'string' ? raw.replace(/^IO_PGTABLE_QUIRK_/, '') : '';
    if (!(name in Quirk)) return { error: `unknown quirk ${JSON.stringify(raw)}` };
    mask |= Quirk[name as QuirkName];
  }
  return { mask };
}

/** Parse prot names or a mask into a mask. */
export function parseProt(p: number | readonly string[]): { mask: number } | { error: string } {
  if (typeof p === 'number') {
    if (!Number.isInteger(p) || p < 0 || p > 0x3f) return { error: `prot must be a mask of IOMMU_* bits (0..0x3f), got ${p}` };
    return { mask: p };
  }
  if (!Array.isArray(p)) return { error: 'prot must be a mask or an array of names' };
  let mask = 0;
  for (const name of p) {
    const bit = typeof name === 'string' ? PROT_BY_NAME[name as ProtName] : undefined;
    if (bit === undefined) return { error: `unknown prot ${JSON.stringify(name)}` };
    mask |= bit;
  }
  return { mask };
}

/** A u64 input as a bigint, or null if it is not a valid unsigned 64-bit integer. */
export function toU64(v: unknown): bigint | null {
  if (typeof v === 'bigint') return v >= 0n && v < 1n << 64n ? v : null;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : null;
  return null;
}

/** Fast path for number inputs: a non-negative safe integer, else null (then use toU64). */
function num(v: unknown): number | null {
  return typeof v === 'number' && v >= 0 && v <= SAFE && Number.isInteger(v) ? v : null;
}

function describe(v: unknown): string {
  return typeof v === 'bigint' ? hex(v) + 'n' : typeof v === 'number' ? String(v) : typeof v;
}

/** 2^n as a bigint. */
const pow2 = (n: number): bigint => 1n << BigInt(n);

export type AllocResult<C> =
  | { ok: true; table: PageTable<C> }
  | { ok: false; code: 'EINVAL' | 'ENOMEM'; reason: string };

/**
 * alloc_io_pgtable_ops: validates the format and the allocator hooks, configures the
 * format, allocates the PGD last. Never throws for bad configuration: like the kernel it
 * fails (the kernel returns NULL; we also say why). Allocator faults do throw.
 */
export function allocIoPgtableOps<C = unknown>(format: string, cfg: PgtableCfg<C>, env: PgtableEnv<C> = {}): AllocResult<C> {
  const fail = (code: 'EINVAL' | 'ENOMEM', reason: string): AllocResult<C> => ({ ok: false, code, reason });
  if (!(FORMATS as readonly string[]).includes(format)) {
    return fail('EINVAL', UNMODELLED_FORMATS.has(format) ? `format ${format} is not modelled` : `unknown format ${JSON.stringify(format)}`);
  }
  const fmt = format as FormatName;
  if (cfg === null || typeof cfg !== 'object') return fail('EINVAL', 'cfg must be an object');
  const mode: Mode = env.mode ?? 'strict';
  if (mode !== 'kernel' && mode !== 'strict') return fail('EINVAL', `unknown mode ${JSON.stringify(mode)}`);

  // check_custom_allocator: both hooks or neither, and only where the format supports them.
  const hasAlloc = cfg.alloc !== undefined;
  const hasFree = cfg.free !== undefined;
  if (hasAlloc !== hasFree) return fail('EINVAL', 'cfg.alloc and cfg.free must be set together');
  if ((hasAlloc || env.allocator) && !CUSTOM_ALLOCATOR_FORMATS.has(fmt)) {
    return fail('EINVAL', `format ${fmt} does not support custom allocators`);
  }
  if (hasAlloc && env.allocator) return fail('EINVAL', 'pass either cfg.alloc/cfg.free or an allocator, not both');

  const quirks = parseQuirks(cfg.quirks);
  if ('error' in quirks) return fail('EINVAL', quirks.error);
  const bitmap = toU64(cfg.pgsizeBitmap);
  if (bitmap === null) return fail('EINVAL', `pgsizeBitmap ${describe(cfg.pgsizeBitmap)} is not an unsigned 64-bit integer`);
  for (const k of ['ias', 'oas'] as const) {
    const v = cfg[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 64) return fail('EINVAL', `${k} must be an integer in 0..64, got ${describe(v)}`);
  }
  if (cfg.coherentWalk !== undefined && typeof cfg.coherentWalk !== 'boolean') return fail('EINVAL', 'coherentWalk must be a boolean');
  const coherentWalk = cfg.coherentWalk ?? true;

  const setup = configureLpae({ fmt, quirks: quirks.mask, pgsizeBitmap: bitmap, ias: cfg.ias, oas: cfg.oas, coherentWalk });
  if (!setup.ok) return fail('EINVAL', setup.reason);

  // The hooks io-pgtable calls: raw kernel hooks, a plugin stack, or the default allocator.
  let hooks: EngineHooks;
  let memory = env.memory;
  const cookie = env.cookie as C;
  const tlb = (env.tlb ?? {}) as FlushOps<unknown>;
  if (tlb.deferred !== undefined && typeof tlb.deferred !== 'boolean') return fail('EINVAL', 'tlb.deferred must be a boolean');
  const deferred = tlb.deferred === true;
  let flushDone: ((t: FlushToken) => void) | undefined;
  if (hasAlloc) {
    const a = cfg.alloc!;
    const f = cfg.free!;
    hooks = { alloc: (size, ctx) => a(cookie, size, ctx), free: (p, size, ctx) => f(cookie, p, size, ctx), allocatorName: 'cfg.alloc' };
    if (memory === undefined) return fail('EINVAL', 'raw cfg.alloc/cfg.free hooks need env.memory');
  } else {
    const allocator = env.allocator ?? createSystemAllocator({ memory: memory ?? new PhysMemory() });
    // An allocator that recycles at once is safe only if the walk flush completes before free.
    if (mode === 'strict' && deferred && reusePolicy(allocator) === 'immediate') {
      return fail('EINVAL', `allocator ${allocator.caps.name} reuses freed tables immediately (caps.reuse 'immediate'), which is unsafe with deferred flush ops (tlb.deferred)`);
    }
    hooks = { alloc: (size, ctx) => allocator.alloc(size, ctx), free: (p, size, ctx) => allocator.free(p, size, ctx), allocatorName: allocator.caps.name };
    flushDone = (t) => allocator.flushDone(t);
    const m = memory ?? allocator.memory;
    if (!(m instanceof PhysMemory)) return fail('EINVAL', `allocator ${allocator.caps.name} does not expose a PhysMemory; pass env.memory`);
    memory = m;
  }

  const { geometry, pgsizeBitmap, regs } = setup.setup;
  const flush = new FlushTracker(deferred, tlb, cookie, flushDone, fmt);
  const engine = new LpaeEngine({
    fmt,
    quirks: quirks.mask,
    coherentWalk,
    geometry,
    memory,
    hooks,
    tlb,
    dma: env.dma ?? IDENTITY_DMA,
    cookie,
    checkAllocations: env.checkAllocations ?? mode === 'strict',
    registry: env.registry ?? registryFor(memory),
    flush,
  });
  // The kernel allocates the PGD with GFP_KERNEL.
  const pgd = engine.allocPages(geometry.pgdSize, BLOCKING_CTX, 'pgd', geometry.startLevel);
  if (pgd === null) return fail('ENOMEM', `could not allocate the ${geometry.pgdSize}-byte PGD`);
  engine.pgd = pgd;
  const eff = effectiveCfg(fmt, pgsizeBitmap, geometry, quirks.mask, coherentWalk, regs, pgd, mode);
  return { ok: true, table: new PageTable<C>(fmt, eff, engine, mode, flush) };
}

/** `caps.reuse`, or what the v1 `defersFree` flag implied before it existed. */
function reusePolicy(a: TableAllocator): 'after-flush' | 'immediate' {
  return a.caps.reuse ?? (a.caps.defersFree ? 'after-flush' : 'immediate');
}

const registries = new WeakMap<PhysMemory, TableRegistry>();
function registryFor(memory: PhysMemory): TableRegistry {
  let r = registries.get(memory);
  if (r === undefined) registries.set(memory, (r = new TableRegistry()));
  return r;
}

const IDENTITY_DMA: DmaOps = { map: (p) => p, unmap() {}, sync() {} };

function effectiveCfg(
  format: FormatName,
  pgsizeBitmap: number,
  g: Geometry,
  quirks: number,
  coherentWalk: boolean,
  regs: LpaeRegisters,
  pgd: number,
  mode: Mode,
): EffectiveCfg {
  const base = { format, pgsizeBitmap, ias: g.ias, oas: g.oas, quirks, coherentWalk };
  switch (regs.kind) {
    case 's1':
      return { ...base, ttbr: pgd, tcr: regs.tcr, mair: mode === 'kernel' ? regs.mair : LPAE_MAIR };
    case 's2':
      return { ...base, vttbr: pgd, vtcr: regs.vtcr };
    case 'mali':
      return { ...base, transtab: pgd + regs.transtabFlags, memattr: regs.memattr };
  }
}

/**
 * Create a page table, throwing {@link IoPgtableError} when the configuration is
 * rejected. `createPageTable('ARM_64_LPAE_S1', {pgsizeBitmap: 0x40201000, ias: 48, oas: 48}, {allocator})`.
 */
export function createPageTable<C = unknown>(format: FormatName, cfg: PgtableCfg<C>, env: PgtableEnv<C> = {}): PageTable<C> {
  const r = allocIoPgtableOps(format, cfg, env);
  if (!r.ok) throw new IoPgtableError(r.code, r.reason);
  return r.table;
}

/**
 * io_pgtable_ops for one LPAE page table. In `strict` mode (default) every call is
 * validated as the iommu core would (alignment, one page-size bit, the whole run inside
 * ias and oas, pgcount >= 1, no overlap) and rejected calls change nothing. In `kernel`
 * mode calls behave exactly as io-pgtable-arm.c, warts included.
 */
export class PageTable<C = unknown> {
  private freed = false;

  constructor(
    readonly format: FormatName,
    readonly cfg: EffectiveCfg,
    private readonly engine: LpaeEngine,
    readonly mode: Mode,
    private readonly flush: FlushTracker,
  ) {}

  get geometry(): Geometry {
    return this.engine.g;
  }
  /** Physical address of the PGD. */
  get pgd(): Paddr {
    return this.engine.pgd;
  }
  get memory(): PhysMemory {
    return this.engine.cfg.memory;
  }
  get isFreed(): boolean {
    return this.freed;
  }
  /**
   * Tables currently allocated by this page table, their allocated bytes, and the
   * gathers holding frees not yet synced ({@link unsyncedGathers}).
   */
  stats(): { liveTables: number; liveBytes: number; unsyncedGathers: number } {
    return { liveTables: this.engine.liveTables, liveBytes: this.engine.liveBytes, unsyncedGathers: this.flush.unsynced };
  }

  /**
   * Gathers (the page table's own included) holding table frees that no
   * {@link iotlbSync} has covered yet. Always 0 with synchronous flush ops.
   */
  get unsyncedGathers(): number {
    return this.flush.unsynced;
  }

  /** Does this page table's flush regime defer completion to `iotlbSync` (`tlb.deferred`)? */
  get deferredFlush(): boolean {
    return this.flush.deferred;
  }

  /**
   * iommu_iotlb_sync: run the driver's `tlbSync(gather)`, mark the gather's flush token
   * done, tell the allocator stack (`flushDone(token)`), and reset the gather with a fresh
   * token. Without a gather, syncs the page table's own: the one covering tables freed
   * with no gather (a block mapped over a table, an unmap with a null gather, `free()`).
   * Allowed after `free()`, which may leave frees to sync.
   */
  iotlbSync(gather?: IotlbGather): void {
    if (gather !== undefined && !(gather instanceof IotlbGather)) throw new IoPgtableError('EINVAL', 'gather must be an IotlbGather');
    this.flush.sync(gather);
  }

  /** Leaf templates by prot mask (0..0x3f), computed once: no allocation per map call. */
  private readonly templates: Array<{ lo: number; hi: number } | undefined> = [];
  private template(prot: number): { lo: number; hi: number } {
    return (this.templates[prot] ??= protToPte(this.format, this.cfg.quirks, prot));
  }

  private alive(): void {
    if (this.freed) throw new IoPgtableError('EINVAL', 'page table used after free()');
  }

  private get ttbr1(): boolean {
    return (this.cfg.quirks & Quirk.ARM_TTBR1) !== 0;
  }

  /** The kernel's start-address range check: (s64)iova >> ias must be 0 (all ones with TTBR1). */
  private iovaInRange(iova: bigint): boolean {
    const ext = BigInt.asIntN(64, iova) >> BigInt(this.cfg.ias);
    return this.ttbr1 ? ext === -1n : ext === 0n;
  }

  /**
   * map_pages: map up to `pgcount` pages of `pgsize` at `iova` -> `paddr`. One call maps
   * at most one table page's worth; loop on `mapped` as iommu_map does.
   */
  mapPages(iova: U64, paddr: U64, pgsize: U64, pgcount: number, prot: number | readonly ProtName[], ctx: MapCtx = BLOCKING_CTX): MapResult {
    this.alive();
    const e = this.engine;
    const strict = this.mode === 'strict';
    const err = (error: MapErrno, message: string): MapResult => ({ mapped: 0, error, message });

    // Fast path: all-number inputs already valid (the benchmarks' shape).
    let iv = num(iova);
    let pa = num(paddr);
    let ps = num(pgsize);
    const bitmap = this.cfg.pgsizeBitmap;
    if (ps === null || !isSubsetOf(ps, bitmap)) {
      const big = toU64(pgsize);
      if (big === null) return err('EINVAL', `pgsize ${describe(pgsize)} is not an unsigned 64-bit integer`);
      if (big === 0n || (big & BigInt(bitmap)) !== big) return err('EINVAL', `pgsize ${hex(big)} is not in the page-size bitmap ${hex(bitmap)}`);
      ps = Number(big);
    }
    if (ps === 0) return err('EINVAL', 'pgsize 0');
    if (strict && !isPowerOfTwo(ps)) return err('EINVAL', `pgsize ${hex(ps)} has more than one bit set`);
    if (typeof pgcount !== 'number' || !Number.isSafeInteger(pgcount) || pgcount < 0) return err('EINVAL', `pgcount ${describe(pgcount)} is not a count`);
    if (strict && pgcount < 1) return err('EINVAL', 'pgcount must be at least 1');

    // Range: start address only in the kernel; the whole run in strict mode.
    let ivBig: bigint | null = null;
    if (iv === null || iv >= 2 ** this.cfg.ias || this.ttbr1) {
      ivBig = toU64(iova);
      if (ivBig === null) return err('EINVAL', `iova ${describe(iova)} is not an unsigned 64-bit integer`);
      if (!this.iovaInRange(ivBig)) return err('ERANGE', `iova ${hex(ivBig)} is outside the ${this.cfg.ias}-bit input address space`);
      iv = iovaToNumber(ivBig)!;
    }
    if (pa === null || pa >= 2 ** this.cfg.oas) {
      const big = toU64(paddr);
      if (big === null) return err('EINVAL', `paddr ${describe(paddr)} is not an unsigned 64-bit integer`);
      if (big >> BigInt(this.cfg.oas) !== 0n) return err('ERANGE', `paddr ${hex(big)} is outside the ${this.cfg.oas}-bit output address space`);
      pa = Number(big);
    }
    const pm = parseProt(prot);
    if ('error' in pm) return err('EINVAL', pm.error);
    if (!(pm.mask & (Prot.READ | Prot.WRITE))) return err('EINVAL', 'prot has neither read nor write');

    if (strict) {
      const bad = this.strictRange(iv, pa, ps, pgcount);
      if (bad) return bad;
    }
    const t = this.template(pm.mask);
    e.mapped = 0;
    const ret = e.map(iv, low52(iv), pa, ps, pgcount, t.lo, t.hi, ctx, strict);
    const mapped = e.mapped;
    if (ret === E_OK) return { mapped };
    const error: MapErrno = ret === E_EXIST ? 'EEXIST' : ret === E_NOMEM ? 'ENOMEM' : ret === E_INVAL ? 'EINVAL' : 'ERANGE';
    const message =
      error === 'EEXIST' ? `iova ${hex(iv)} (or part of the run) is already mapped` : error === 'ENOMEM' ? 'the allocator could not provide a table' : `pgsize ${hex(ps)} cannot be mapped at any level of this table`;
    return { mapped, error, message };
  }

  /** Strict-mode checks on a decoded request: alignment and the whole run inside ias/oas. */
  private strictRange(iv: number, pa: number, ps: number, count: number): MapResult | null {
    if (iv % ps !== 0 || pa % ps !== 0) {
      return { mapped: 0, error: 'EINVAL', message: `unaligned: iova ${hex(iv)} pa ${hex(pa)} size ${hex(ps)}` };
    }
    const len = ps * count;
    const size = 2 ** this.cfg.ias;
    const start = this.ttbr1 ? iv + size : iv; // TTBR1: offset from the bottom of the upper region
    if (start + len > size) return { mapped: 0, error: 'ERANGE', message: `iova ${hex(iv)} + ${hex(len)} runs past the end of the input address space` };
    if (pa + len > 2 ** this.cfg.oas) return { mapped: 0, error: 'ERANGE', message: `paddr ${hex(pa)} + ${hex(len)} runs past the ${this.cfg.oas}-bit output address space` };
    if (this.geometry.blockSize[this.geometry.startLevel]! * this.geometry.pgdEntries < ps) {
      return { mapped: 0, error: 'EINVAL', message: `pgsize ${hex(ps)} is larger than the whole table` };
    }
    return null;
  }

  /**
   * unmap_pages: unmap up to `pgcount` entries of `pgsize` at `iova`. Unmapping with a
   * block size over a region mapped with smaller pages removes them all (kernel).
   */
  unmapPages(iova: U64, pgsize: U64, pgcount: number, gather: IotlbGather | null = null): UnmapResult {
    this.alive();
    const strict = this.mode === 'strict';
    const err = (error: UnmapResult['error'] & string, message: string): UnmapResult => ({ unmapped: 0, error, message });
    let ps = num(pgsize);
    const bitmap = this.cfg.pgsizeBitmap;
    if (ps === null || ps === 0 || !isSubsetOf(ps, bitmap)) {
      const big = toU64(pgsize);
      if (big === null) return err('EINVAL', `pgsize ${describe(pgsize)} is not an unsigned 64-bit integer`);
      if (big === 0n || (big & BigInt(bitmap)) !== big) return err('EINVAL', `pgsize ${hex(big)} is not in the page-size bitmap ${hex(bitmap)}`);
      ps = Number(big);
    }
    if (typeof pgcount !== 'number' || !Number.isSafeInteger(pgcount) || pgcount < 1) return err('EINVAL', `pgcount ${describe(pgcount)} must be at least 1`);
    if (strict && !isPowerOfTwo(ps)) return err('EINVAL', `pgsize ${hex(ps)} has more than one bit set`);
    let iv = num(iova);
    if (iv === null || iv >= 2 ** this.cfg.ias || this.ttbr1) {
      const big = toU64(iova);
      if (big === null) return err('EINVAL', `iova ${describe(iova)} is not an unsigned 64-bit integer`);
      if (!this.iovaInRange(big)) return err('ERANGE', `iova ${hex(big)} is outside the ${this.cfg.ias}-bit input address space`);
      iv = iovaToNumber(big)!;
    }
    if (gather !== null && !(gather instanceof IotlbGather)) return err('EINVAL', 'gather must be an IotlbGather or null');
    if (gather !== null && gather._pendingOn !== null && gather._pendingOn !== this.flush) {
      return err('EINVAL', 'this gather holds unsynced frees of another page table: call iotlbSync(gather) on that page table first');
    }
    if (strict) {
      if (iv % ps !== 0) return err('EINVAL', `unaligned: iova ${hex(iv)} size ${hex(ps)}`);
      const size = 2 ** this.cfg.ias;
      const start = this.ttbr1 ? iv + size : iv;
      if (start + ps * pgcount > size) return err('ERANGE', `iova ${hex(iv)} + ${hex(ps * pgcount)} runs past the end of the input address space`);
    }
    const r = this.engine.unmap(iv, low52(iv), ps, pgcount, gather, strict);
    if (r === UNMAP_ENOENT) return { unmapped: 0, error: 'ENOENT', message: `nothing is mapped at iova ${hex(iv)}` };
    if (r === 0) return { unmapped: 0, error: 'EINVAL', message: `iova ${hex(iv)} lies inside a larger block (partial unmap of a large IOPTE)` };
    return { unmapped: r };
  }

  /**
   * iova_to_phys: the physical address, or 0 when unmapped (ambiguous with PA 0; see
   * lookup). Not range-checked, as in Linux: addresses above ias alias. Throws
   * IoPgtableError (EINVAL) for input that is not an unsigned 64-bit integer.
   */
  iovaToPhys(iova: U64): number {
    this.alive();
    const i52 = typeof iova === 'number' && iova >= 0 && iova < TWO_52 && Number.isInteger(iova) ? iova : iovaLow52Checked(iova);
    if (i52 < 0) return 0;
    const pa = this.engine.translate(i52);
    return pa < 0 ? 0 : pa;
  }

  /** A tagged lookup: the leaf's output address, level and descriptor, or unmapped. */
  lookup(iova: U64): LookupResult {
    this.alive();
    const i52 = iovaLow52Checked(iova);
    if (i52 < 0) return { kind: 'unmapped', level: this.geometry.startLevel };
    const pa = this.engine.translate(i52);
    const e = this.engine;
    if (pa < 0) return { kind: 'unmapped', level: e.lastLevel };
    return { kind: 'mapped', paddr: pa, level: e.lastLevel, pte: pteToBigInt(e.lastLo, e.lastHi) };
  }

  /** arm_lpae_pgtable_walk: the descriptors on the path to `iova`. */
  pgtableWalk(iova: U64): WalkResult {
    this.alive();
    const i52 = iovaLow52Checked(iova);
    const raw: Array<[number, number] | undefined> = [];
    if (i52 < 0) return { ret: E_INVAL, ptes: [] };
    const ret = this.engine.walkPath(i52, raw);
    return { ret, ptes: raw.map((x) => (x ? pteToBigInt(x[0], x[1]) : undefined)) };
  }

  /**
   * read_and_clear_dirty (ARM_64_LPAE_S1 only): records writeable-dirty leaves in
   * `[iova, iova + size)`; clears them (sets AP[2]) unless `flags` has NO_CLEAR.
   * Returns 0 or -22 (EINVAL) as the kernel does.
   */
  readAndClearDirty(iova: U64, size: U64, flags: number, dirty: DirtyRecorder): number {
    this.alive();
    const iv = toU64(iova);
    const sz = toU64(size);
    if (iv === null || sz === null || sz === 0n) return E_INVAL;
    if (BigInt.asUintN(64, iv + sz - 1n) >> BigInt(this.cfg.ias) !== 0n) return E_INVAL;
    if (this.format !== 'ARM_64_LPAE_S1') return E_INVAL;
    if (typeof flags !== 'number' || typeof dirty?.record !== 'function') return E_INVAL;
    return this.engine.dirtyWalk(Number(iv), Number(sz), (flags & IOMMU_DIRTY_NO_CLEAR) !== 0, dirty);
  }

  /**
   * free_io_pgtable_ops: tlb_flush_all, then every table freed post-order. With
   * deferred flush ops the tables are freed under `gather`'s token (the page table's own
   * gather when omitted): complete it with `iotlbSync(gather)` as after an unmap.
   */
  free(gather?: IotlbGather): void {
    if (this.freed) return;
    if (gather !== undefined && !(gather instanceof IotlbGather)) throw new IoPgtableError('EINVAL', 'gather must be an IotlbGather');
    this.flush.check(gather ?? null);
    this.freed = true;
    this.engine.destroy(gather ?? null);
  }

  /**
   * Snapshot of every live table reachable from the PGD: address -> non-zero entries
   * (index -> descriptor). For dumps and tests; not a hot path.
   */
  tables(): Map<Paddr, Map<number, bigint>> {
    const out = new Map<Paddr, Map<number, bigint>>();
    if (this.freed) return out;
    const g = this.geometry;
    const visit = (level: number, table: Paddr, size: number) => {
      const entries = new Map<number, bigint>();
      out.set(table, entries);
      const w = this.engine.mem.peek(table);
      const base = PhysMemory.wordIndex(table);
      for (let i = 0; i < size / 8; i++) {
        const lo = w[base + 2 * i]!;
        const hi = w[base + 2 * i + 1]!;
        if (lo === 0 && hi === 0) continue;
        entries.set(i, pteToBigInt(lo, hi));
        if (level < 3 && !this.engine.isLeafLo(lo, level)) visit(level + 1, pteAddr(lo, hi, g.granule), g.granule);
      }
    };
    visit(g.startLevel, this.engine.pgd, Math.max(g.pgdSize, 64));
    return new Map([...out.entries()].sort((a, b) => a[0] - b[0]));
  }
}


/** Subset test on numbers above 2^32 (the bitmap may hold 4 TiB). */
function isSubsetOf(v: number, bitmap: number): boolean {
  const vl = v % TWO_32;
  const vh = Math.floor(v / TWO_32);
  const bl = bitmap % TWO_32;
  const bh = Math.floor(bitmap / TWO_32);
  return ((vl & ~bl) | (vh & ~bh)) === 0 && v > 0;
}

/**
 * Low 52 bits of a u64 IOVA input, or -1 for the all-ones address (undefined in the
 * kernel: the walk end `iova + 1` wraps). Throws IoPgtableError for anything that is not
 * an unsigned 64-bit integer.
 */
function iovaLow52Checked(iova: U64): number {
  const big = toU64(iova);
  if (big === null) throw new IoPgtableError('EINVAL', `iova ${describe(iova)} is not an unsigned 64-bit integer`);
  if (big === (1n << 64n) - 1n) return -1;
  return low52(big);
}

