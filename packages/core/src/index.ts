export * from './constants.js';
export { alignDown, alignUp, hex, iovaToNumber, iovaToU64, isAligned, low52 } from './addr.js';
export { makeGeometry, levelIndex, maxEntries, tableSize, type Geometry } from './geometry.js';
export { PhysMemory, CHUNK_BYTES, type AccessGuard, type AccessKind, type Accessor, type HostAccessor } from './phys/memory.js';
export { TableRegistry } from './phys/registry.js';
export { createSystemAllocator, type SystemAllocator, type SystemAllocatorOptions } from './phys/system-allocator.js';
export { createBumpAllocator, type BumpAllocator, type BumpAllocatorOptions, type BumpEvent } from './phys/bump-allocator.js';
export * as pte from './formats/lpae/pte.js';
export { configureLpae, LPAE_MAIR, LPAE_MAIR_KERNEL, MALI_MEMATTR, type LpaeSetup, type TcrFields, type VtcrFields } from './formats/lpae/format.js';
export type { DirtyRecorder } from './formats/lpae/table.js';
export { GatherFlushToken, IotlbGather } from './gather.js';
export { IoPgtableError, type MapErrno, type MapResult, type UnmapErrno, type UnmapResult } from './errors.js';
export type { AllocHook, DmaOps, FlushOps, FreeHook, Mode } from './types.js';
export {
  IOMMU_DIRTY_NO_CLEAR,
  PageTable,
  allocIoPgtableOps,
  createPageTable,
  parseProt,
  parseQuirks,
  toU64,
  type AllocResult,
  type EffectiveCfg,
  type LookupResult,
  type PgtableCfg,
  type PgtableEnv,
  type U64,
  type WalkResult,
} from './io-pgtable.js';
export { TraceError, parseTrace, parseU64, type Trace, type TraceHeader, type TraceOp } from './replay/trace.js';
export { compareResults, replayParsed, replayTrace } from './replay/replay.js';
export * as hw from './hw/index.js';
export { mulberry32, xorshift32 } from './random.js';
