/**
 * The wasm ABI of `include/io_pgtable_alloc.h`, on the host side: export and import names
 * and flag bits. Everything here mirrors a `#define` of the header; change both together
 * (the ABI version guards against a header/loader mismatch).
 */
import type { AllocCtx, FreeCtx } from '@io-pgtable/allocator-api';
import type { WasmMemory } from './wasm.js';

export const ABI_VERSION = 1;

/** Functions `IOPGT_REGISTER(ops)` exports; a module without all of them is not one of ours. */
export const REQUIRED_EXPORTS = [
  'memory',
  'iopgt_abi_version',
  'iopgt_abi_scratch',
  'iopgt_abi_name',
  'iopgt_abi_cap',
  'iopgt_abi_features',
  'iopgt_abi_init',
  'iopgt_abi_alloc',
  'iopgt_abi_free',
  'iopgt_abi_flush_done',
  'iopgt_abi_stats',
  'iopgt_abi_drain',
  'iopgt_abi_reserve',
  'iopgt_abi_run_begin',
  'iopgt_abi_run_end',
  'iopgt_abi_release',
  'iopgt_abi_consumed',
] as const;

/** The import module every host call lives in, and the calls the host provides. */
export const IMPORT_MODULE = 'iopgt';
export const HOST_IMPORTS = [
  'backing_alloc',
  'backing_free',
  'mem_zero',
  'mem_clean',
  'mem_is_zero',
  'mem_write64',
  'mem_read64',
  'log',
  'assert_fail',
] as const;

export interface AbiExports {
  memory: WasmMemory;
  iopgt_abi_version(): number;
  iopgt_abi_scratch(): number;
  iopgt_abi_name(): number;
  iopgt_abi_cap(i: number): number;
  iopgt_abi_features(): number;
  iopgt_abi_init(): void;
  iopgt_abi_alloc(size: number, gfp: number): void;
  iopgt_abi_free(lo: number, hi: number, size: number, flags: number, tlo: number, thi: number): void;
  iopgt_abi_flush_done(tlo: number, thi: number): void;
  iopgt_abi_stats(): void;
  iopgt_abi_drain(): void;
  iopgt_abi_reserve(tables: number, size: number): number;
  iopgt_abi_run_begin(job: number): void;
  iopgt_abi_run_end(job: number): void;
  iopgt_abi_release(job: number): void;
  iopgt_abi_consumed(job: number): number;
}

/** `iopgt_abi_cap(i)` indices. */
export const CAP_MIN_SIZE = 0;
export const CAP_MAX_SIZE = 1;
export const CAP_REUSE = 2;
export const CAP_ZEROES = 3;
export const CAP_MAY_FAIL = 4;

export const FEATURE_DRAIN = 0x1;
export const FEATURE_RESERVE = 0x2;

export const GFP_KERNEL = 0x1;
export const GFP_PGD = 0x2;
export const GFP_PREPARE = 0x4;
export const GFP_RUN = 0x8;
export const GFP_HAS_LEVEL = 0x80;
export const GFP_LEVEL_SHIFT = 8;
export const FREE_FLUSHED = 0x10;
export const FREE_NO_TOKEN = 0x20;

export const REUSE_POLICIES = ['after-flush', 'immediate'] as const;
export const ZERO_POLICIES = ['on-alloc', 'on-free', 'backing'] as const;

/** `AllocCtx` -> gfp bits: mayBlock, kind, phase and level. */
export function gfpOf(ctx: AllocCtx): number {
  let gfp = ctx.mayBlock ? GFP_KERNEL : 0;
  if (ctx.kind === 'pgd') gfp |= GFP_PGD;
  if (ctx.phase === 'run') gfp |= GFP_RUN;
  else if (ctx.phase === 'prepare') gfp |= GFP_PREPARE;
  if (ctx.level !== undefined) gfp |= GFP_HAS_LEVEL | ((ctx.level & 0xf) << GFP_LEVEL_SHIFT);
  return gfp;
}

/** gfp bits -> `AllocCtx`, for the calls the C code makes to the backing store. */
export function ctxOf(gfp: number): AllocCtx {
  const phase = gfp & GFP_RUN ? 'run' : gfp & GFP_PREPARE ? 'prepare' : undefined;
  const level = gfp & GFP_HAS_LEVEL ? (gfp >>> GFP_LEVEL_SHIFT) & 0xf : undefined;
  return Object.freeze({
    mayBlock: (gfp & GFP_KERNEL) !== 0,
    kind: gfp & GFP_PGD ? 'pgd' : 'table',
    ...(phase !== undefined ? { phase } : {}),
    ...(level !== undefined ? { level } : {}),
  });
}

/** `FreeCtx` -> free flags (no context: the kernel-faithful path, IOPGT_FREE_NO_TOKEN). */
export function freeFlagsOf(ctx: FreeCtx | undefined): number {
  if (ctx === undefined) return FREE_NO_TOKEN;
  let flags = GFP_HAS_LEVEL | ((ctx.level & 0xf) << GFP_LEVEL_SHIFT);
  if (ctx.kind === 'pgd') flags |= GFP_PGD;
  if (ctx.flush.done) flags |= FREE_FLUSHED;
  return flags;
}
