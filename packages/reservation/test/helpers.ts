import { configureLpae, createSystemAllocator, type FormatName, type Geometry, type PgtableCfg, type SystemAllocator } from '@io-pgtable/core';
import { withReservation, createVm, type ReservationAllocatorOptions, type Vm, type VmOptions } from '../src/index.js';

export const SZ_4K = 0x1000;
export const SZ_2M = 0x200000;
export const SZ_1G = 0x40000000;
/** Panthor's VM: ARM_64_LPAE_S1, 4K|2M, 48-bit. */
export const PANTHOR_BITMAP = SZ_4K + SZ_2M;

export function geometry(fmt: FormatName, pgsizeBitmap: number, ias: number, oas: number): Geometry {
  const r = configureLpae({ fmt, quirks: 0, pgsizeBitmap: BigInt(pgsizeBitmap), ias, oas, coherentWalk: true });
  if (!r.ok) throw new Error(r.reason);
  return r.setup.geometry;
}

/** A table shape to drive: format, cfg. */
export interface Shape {
  readonly label: string;
  readonly format: FormatName;
  readonly cfg: PgtableCfg;
}

export const SHAPES: readonly Shape[] = [
  { label: 'S1 4K ias48 (Panthor)', format: 'ARM_64_LPAE_S1', cfg: { pgsizeBitmap: PANTHOR_BITMAP, ias: 48, oas: 48 } },
  { label: 'S1 4K ias39 4K|2M|1G', format: 'ARM_64_LPAE_S1', cfg: { pgsizeBitmap: SZ_4K + SZ_2M + SZ_1G, ias: 39, oas: 40 } },
  { label: 'S2 4K ias40 concatenated PGD', format: 'ARM_64_LPAE_S2', cfg: { pgsizeBitmap: SZ_4K + SZ_2M + SZ_1G, ias: 40, oas: 40 } },
  { label: 'S1 16K ias36', format: 'ARM_64_LPAE_S1', cfg: { pgsizeBitmap: 0x4000 + 0x2000000, ias: 36, oas: 40 } },
  { label: 'S1 64K ias48', format: 'ARM_64_LPAE_S1', cfg: { pgsizeBitmap: 0x10000 + 0x20000000, ias: 48, oas: 48 } },
  { label: 'Mali ias33 (forced 4 levels)', format: 'ARM_MALI_LPAE', cfg: { pgsizeBitmap: PANTHOR_BITMAP, ias: 33, oas: 40 } },
  { label: '32-bit S1 ias32', format: 'ARM_32_LPAE_S1', cfg: { pgsizeBitmap: PANTHOR_BITMAP, ias: 32, oas: 40 } },
];

export interface Rig {
  backing: SystemAllocator;
  allocator: ReturnType<typeof withReservation>;
  vm: Vm;
}

export function rig(shape: Shape, opts: ReservationAllocatorOptions & Partial<VmOptions> = {}, failWhen?: (i: number, size: number) => boolean): Rig {
  const backing = createSystemAllocator({ limit: 0x4000_0000, ...(failWhen ? { failWhen } : {}) });
  const g = geometry(shape.format, Number(shape.cfg.pgsizeBitmap), shape.cfg.ias, shape.cfg.oas);
  const allocator = withReservation(backing, { pageSize: g.granule, ...opts });
  const vm = createVm(allocator, { format: shape.format, cfg: shape.cfg, ...opts });
  return { backing, allocator, vm };
}
