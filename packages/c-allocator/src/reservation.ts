/**
 * The conformance suite's reservation adapter (`options.reservation` of
 * `describeAllocatorConformance`) for a C allocator that implements the reservation ops.
 * Written structurally, so this package does not depend on the suite at run time.
 */
import type { CAllocator, CReservation } from './allocator.js';
import { tablesForJob, type CountGeometry, type CountOp } from './count.js';

/** A job as the suite describes it. */
export interface CReservationJob {
  readonly pageTable: { readonly geometry: CountGeometry };
  readonly ops: readonly CountOp[];
  readonly splitPolicy: 'forbid' | 'allow';
  readonly merge: boolean;
}

export interface CReservationAdapter {
  prepare(allocator: CAllocator, job: CReservationJob): CReservation | null;
  readonly splitPolicies: readonly 'forbid'[];
  readonly merges: false;
}

/**
 * Count each job with {@link tablesForJob} (Panthor's count) and reserve that many
 * granule-sized tables through the C `reserve` op. Only the `forbid` split policy: the
 * count reserves nothing for unmaps.
 */
export function cReservationAdapter(): CReservationAdapter {
  return {
    splitPolicies: ['forbid'],
    merges: false,
    prepare(allocator, job) {
      const g = job.pageTable.geometry;
      return allocator.reserve(tablesForJob(g, job.ops), g.granule);
    },
  };
}
