/**
 * Public option types of the conformance suite. These shapes are a contract with plugin
 * authors (and with the reservation and secure-share packages of this repo): extend them
 * only with optional members.
 */
import type { TableAllocator } from '@io-pgtable/allocator-api';
import type { PageTable, PhysMemory } from '@io-pgtable/core';

/**
 * What the suite hands a factory for every test. `backing` is a fresh core system
 * allocator over `memory` (the suite may wrap it to count calls or inject faults), so a
 * decorator plugin stacks itself on `env.backing`. A leaf allocator may ignore
 * `backing`, but must then allocate from `env.memory`: that is where the page tables and
 * the IOMMU model read descriptors.
 */
export interface ConformanceEnv {
  readonly backing: TableAllocator;
  readonly memory: PhysMemory;
}

/** Builds the allocator under test; called once per test (each test gets a fresh instance). */
export type AllocatorFactory<A extends TableAllocator = TableAllocator> = (env: ConformanceEnv) => A;

/** The page-table formats the suite drives through real tables. */
export type ConformanceFormat =
  | 'ARM_64_LPAE_S1'
  | 'ARM_64_LPAE_S2'
  | 'ARM_32_LPAE_S1'
  | 'ARM_32_LPAE_S2'
  | 'ARM_MALI_LPAE';

/** Translation granules, in bytes. */
export type ConformanceGranule = 4096 | 16384 | 65536;

/** Names of the test groups, as exported by the package (one `describe*` each). */
export type ConformanceGroup =
  | 'contract'
  | 'tables'
  | 'property'
  | 'misuse'
  | 'fault-injection'
  | 'flush-ordering'
  | 'long-lived'
  | 'accounting'
  | 'reservation'
  | 'secure-share';

export interface ConformanceOptions<A extends TableAllocator = TableAllocator> {
  /**
   * Runs per fast-check property (default 100). The no-double-hand-out property runs
   * `numRuns` sequences of `propertyOps / numRuns` map/unmap operations.
   */
  readonly numRuns?: number;
  /** fast-check seed (default: random). The seed of a failing run is printed in the error. */
  readonly seed?: number;
  /** Total random map/unmap operations in the no-double-hand-out property (default 100,000). */
  readonly propertyOps?: number;
  /**
   * Table allocations one allocator instance serves in each long-lived run (default
   * 10,000; one run per flush regime the allocator claims to be safe under).
   */
  readonly longLivedAllocations?: number;
  /** Formats to drive (default: all five). */
  readonly formats?: readonly ConformanceFormat[];
  /** Granules to drive (default: 4K, 16K and 64K; Mali only supports 4K and is skipped otherwise). */
  readonly granules?: readonly ConformanceGranule[];
  /** Groups to leave out, e.g. when a leaf allocator cannot fail on purpose. Default: none. */
  readonly skip?: readonly ConformanceGroup[];
  /**
   * Tear down one instance at the end of a test, before the suite checks that nothing is
   * outstanding. The suite has already freed every page table and called `flushDone()`
   * and `drain?.()`; use this for plugin-specific release (e.g. returning a per-VM pool).
   */
  readonly teardown?: (allocator: A, env: ConformanceEnv) => void;
  /**
   * Check the accounting identity across layers: what `env.backing` has handed out
   * equals the plugin's `outstanding` (default true). Set false when the factory returns
   * a stack of several plugins (each layer then only matches the layer right below it).
   */
  readonly crossLayer?: boolean;
  /** Switch on the two-phase reservation group (requirements 7-15, 18). */
  readonly reservation?: ReservationAdapter<A>;
  /** Switch on the secure-share ownership group (requirements 22-26). */
  readonly secureShare?: SecureShareAdapter<A>;
}

// ---------------------------------------------------------------------------------------
// Reservation (two-phase VM_BIND: prepare may sleep and fail, run may only consume)
// ---------------------------------------------------------------------------------------

/** One operation of a VM_BIND job. Addresses and sizes are byte numbers (IOVAs below 2^53). */
export type JobOp =
  | { readonly kind: 'map'; readonly iova: number; readonly size: number; readonly pgsize: number }
  | { readonly kind: 'unmap'; readonly iova: number; readonly size: number };

/**
 * How a job treats an unmap that cuts a block mapping. `forbid`: never split (the
 * kernel since v6.13), so unmaps reserve nothing. `allow`: reserve one leaf table per
 * ragged edge that cuts a block (requirement 9). The suite runs every policy the
 * adapter lists.
 */
export type JobSplitPolicy = 'forbid' | 'allow';

/** A job as the suite hands it to {@link ReservationAdapter.prepare}. */
export interface ReservationJob {
  /** The page table the job will run against (geometry, current tree). */
  readonly pageTable: PageTable;
  readonly ops: readonly JobOp[];
  readonly splitPolicy: JobSplitPolicy;
  /** Ask the plugin to merge ops that share a leaf table when counting (requirement 10). */
  readonly merge: boolean;
}

/** A prepared reservation: the handle a job carries from prepare to release. */
export interface ReservationHandle {
  /** Tables reserved by prepare. */
  readonly reserved: number;
  /** Tables taken from this reservation so far by run-phase allocations. */
  readonly consumed: number;
  /**
   * Run `fn` with this reservation active. Inside, the suite calls `mapPages`/`unmapPages`
   * with `ctx.phase = 'run'` (and sometimes `mayBlock: true`, which must be ignored);
   * every table allocation must come from the reservation, none from the backing store.
   */
  run<T>(fn: () => T): T;
  /** Return unused pages, exactly once. Idempotent; safe after a failed or never-run job. */
  release(): void;
}

/**
 * Adapter a reservation plugin implements so the suite can exercise prepare/run/release.
 * `A` is the allocator type the factory returns.
 */
export interface ReservationAdapter<A extends TableAllocator = TableAllocator> {
  /**
   * Reserve for `job`, as the driver's prepare step does (may sleep, allocate, fail).
   * Returns `null` when a backing allocation failed (everything taken so far must be
   * returned), or `'wait'` when admission control says the job does not fit yet
   * (requirement 15: jobs wait rather than fail).
   */
  prepare(allocator: A, job: ReservationJob): ReservationHandle | null | 'wait';
  /** Split policies the plugin supports (default `['forbid']`). */
  readonly splitPolicies?: readonly JobSplitPolicy[];
  /** Does the plugin support merged counting (requirement 10)? Default false. */
  readonly merges?: boolean;
  /**
   * Admission limit in tables, when the plugin enforces one (requirement 15): the suite
   * checks that tables reserved and not yet released never exceed `limit + one job's count`.
   */
  readonly admissionLimit?: number;
  /**
   * True once a run-phase exhaustion marked the VM of `pageTable` unusable (requirement
   * 11, optional policy). When provided, the suite checks later prepares are refused.
   */
  isUnusable?(allocator: A, pageTable: PageTable): boolean;
}

// ---------------------------------------------------------------------------------------
// Secure-share (ownership of table pages, modelled on Qualcomm's SCM assign calls)
// ---------------------------------------------------------------------------------------

/** Access one VM has to a page. */
export type SharePerm = 'r' | 'rw' | 'rwx';

/** Ownership of one page as the mock SCM records it. */
export interface PageOwnership {
  /** Owning VMIDs (HLOS included when it still has access), ascending. */
  readonly owners: readonly number[];
  /** Permission of each owner. */
  readonly perms: Readonly<Record<number, SharePerm>>;
}

/**
 * Adapter a secure-share plugin implements so the suite can check the ownership rules.
 * All functions receive the allocator the factory returned.
 */
export interface SecureShareAdapter<A extends TableAllocator = TableAllocator> {
  /** VMID of the host OS (HLOS). */
  readonly hlos: number;
  /** At least two VMIDs to share tables with (requirement 26 needs two). */
  readonly vmids: readonly number[];
  /** The allocator to use for page tables shared with `vmid`. */
  forVmid(allocator: A, vmid: number): TableAllocator;
  /** Current ownership of the page containing `paddr`. */
  ownership(allocator: A, paddr: number): PageOwnership;
  /** Number of SCM (assign) calls made so far, successful or not. */
  smcCalls(allocator: A): number;
  /** Make the next `n` assign calls fail (the reassign-on-free path, requirement 24). */
  failNextAssigns(allocator: A, n: number): void;
  /**
   * Optional "donate" configuration (HLOS absent from the destination, requirement 25).
   * The suite builds one and expects CPU writes to its pages to be reported by
   * {@link violations}, or thrown as an `AllocatorMisuseError` with rule `access-violation`.
   */
  donating?(env: ConformanceEnv): A;
  /** Access violations the mock has recorded so far (requirement 25). */
  violations?(allocator: A): number;
}

/** Default formats and granules, exported for callers that narrow them. */
export const ALL_FORMATS: readonly ConformanceFormat[] = Object.freeze([
  'ARM_64_LPAE_S1',
  'ARM_64_LPAE_S2',
  'ARM_32_LPAE_S1',
  'ARM_32_LPAE_S2',
  'ARM_MALI_LPAE',
]);
export const ALL_GRANULES: readonly ConformanceGranule[] = Object.freeze([4096, 16384, 65536]);
