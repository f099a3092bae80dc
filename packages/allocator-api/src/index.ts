export type {
  AllocCtx,
  AllocPhase,
  FlushToken,
  FreeCtx,
  MapCtx,
  ReusePolicy,
  TableKind,
  AllocatorCaps,
  AllocatorStats,
  Paddr,
  MemoryAccessKind,
  PhysMemoryAccess,
  TableAllocator,
  ZeroPolicy,
} from './allocator.js';
export {
  ATOMIC_CTX,
  BLOCKING_CTX,
  MIN_TABLE_ALLOC,
  PGD_CTX,
  allocSizeFor,
  isPowerOfTwo,
} from './allocator.js';
export type { AllocatorRule, Errno } from './errors.js';
export { AccountingError, AllocatorFaultError, AllocatorMisuseError, ERRNO_VALUE, asAllocatorError } from './errors.js';
export { EMPTY_STATS, accountedBytes, assertAccounting, drainAll, stackLayers } from './accounting.js';
export type { PluginParts } from './plugin.js';
export { definePlugin } from './plugin.js';
export type { FreeNoun, TableLedgerOptions } from './ledger.js';
export { TableLedger, freeSizeError, isFreeSize, notLiveError } from './ledger.js';
export type { AllocationProbe, AllocationRule, AllocationViolation } from './checks.js';
export { ALLOCATION_RULES, MAX_VALUE_CHARS, checkAllocation, describeValue, isPaddr } from './checks.js';
export type { PendingVisitor } from './pending.js';
export { COMPLETED_FLUSH, PendingFrees, flushedCtx, isFlushed } from './pending.js';
export { assertTableSize, isTableSize } from './sizes.js';
