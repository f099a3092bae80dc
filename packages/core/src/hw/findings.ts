/**
 * What the IOMMU model reports. Shared by the walk-cache model (`iommu.ts`) and the
 * free-window tracker (`generations.ts`), which report into the same kind of log.
 */
import type { AllocatorRule } from '@io-pgtable/allocator-api';
import type { FaultKind } from './walker.js';

/** What the model reports. Faults are outcomes of an access; the rest are hazards. */
export type FindingKind =
  | FaultKind
  /** A TLB hit whose translation differs from what the live tables say now. */
  | 'stale-tlb'
  /** A walk that started from a walk-cache entry and reached a different result than a fresh walk. */
  | 'stale-walk'
  /** A walk through a cached pointer to a table the page table has freed (memory not reused yet). */
  | 'walk-after-free'
  /** A walk through a cached pointer into memory that was freed and handed out again, or reassigned. */
  | 'walk-into-reused'
  /**
   * A freed table was handed out again, returned to the backing store or reassigned
   * before the flush covering its free completed (or while a walk-cache entry still
   * points to it).
   */
  | 'reuse-before-flush'
  /**
   * A freed table was written or zeroed by the CPU (the allocator: a free-list pointer,
   * zeroing inside `free`) before the flush covering its free completed, or while a
   * walk-cache entry still points to it: the device may still walk it.
   */
  | 'write-before-flush';

export interface Finding {
  readonly kind: FindingKind;
  /** Input address of the access (signed-64 number form), or NaN for memory events. */
  readonly iova: number;
  /** Physical address involved: the output of the access, or the table memory at fault. */
  readonly paddr?: number;
  readonly level?: number;
  /** The allocator rule this finding proves broken, when it is an allocator's doing. */
  readonly rule?: AllocatorRule;
  readonly message: string;
}

/** Thrown for findings listed in `throwOn`. */
export class IommuFindingError extends Error {
  override readonly name = 'IommuFindingError';
  constructor(readonly finding: Finding) {
    super(`[iopgt] [iommu] ${finding.rule ?? finding.kind}: ${finding.message}`);
  }
}
