/**
 * alloc_io_pgtable_ops: configuration of a page table. Validates the format, the cfg and
 * the allocator hooks in the kernel's order, configures the format (its ops record), wires
 * the allocator and flush regime, allocates the PGD last, and reports the effective cfg.
 * The table itself is page-table.ts; request decoding is request.ts.
 */
import { BLOCKING_CTX, describeValue, type FlushToken, type TableAllocator } from '@io-pgtable/allocator-api';
import { CUSTOM_ALLOCATOR_FORMATS, UNMODELLED_FORMATS, type FormatName } from './constants.js';
import { LPAE_MAIR, configureLpae, type LpaeRegisters, type TcrFields, type VtcrFields } from './formats/lpae/format.js';
import { formatOps } from './formats/lpae/ops.js';
import { LpaeEngine, type EngineHooks } from './formats/lpae/table.js';
import { FlushTracker } from './flush.js';
import { IoPgtableError } from './errors.js';
import { describe, parseQuirks, toU64 } from './names.js';
import { PageTable, type U64 } from './page-table.js';
export { PageTable, type U64 } from './page-table.js';
import { PhysMemory, storeOf } from './phys/memory.js';
import { TableRegistry } from './phys/registry.js';
import { createSystemAllocator } from './phys/system-allocator.js';
import type { AllocHook, DmaOps, FlushOps, FreeHook, Mode } from './types.js';

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
  const ops = formatOps(format);
  if (ops === undefined) {
    return fail('EINVAL', UNMODELLED_FORMATS.has(format) ? `format ${format} is not modelled` : `unknown format ${describeValue(format)}`);
  }
  const fmt = ops.name;
  if (cfg === null || typeof cfg !== 'object') return fail('EINVAL', 'cfg must be an object');
  const mode: Mode = env.mode ?? 'strict';
  if (mode !== 'kernel' && mode !== 'strict') return fail('EINVAL', `unknown mode ${describeValue(mode)}`);

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
    ops,
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
  // One more page table lives on this memory (walk caches are used only by a lone one).
  storeOf(memory).tables++;
  const eff = effectiveCfg({ format: fmt, pgsizeBitmap, ias: geometry.ias, oas: geometry.oas, quirks: quirks.mask, coherentWalk }, regs, pgd, mode);
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

/** The configuration fields every format shares, then its registers pointing at the PGD. */
function effectiveCfg(base: Pick<EffectiveCfg, 'format' | 'pgsizeBitmap' | 'ias' | 'oas' | 'quirks' | 'coherentWalk'>, regs: LpaeRegisters, pgd: number, mode: Mode): EffectiveCfg {
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
