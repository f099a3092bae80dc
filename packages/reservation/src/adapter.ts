/**
 * The conformance suite's reservation adapter (`@io-pgtable/conformance`,
 * `options.reservation`), written structurally so this package does not depend on the
 * suite at run time. The suite hands a page table and ops; the adapter counts with
 * {@link tablesNeeded}, applies admission control and prepares.
 */
import type { PageTable } from '@io-pgtable/core';
import { createAdmission, type Admission } from './admission.js';
import { tablesNeeded, type CountOp } from './count.js';
import type { ReservationAllocator } from './reservation.js';

/** A job as the suite describes it. */
export interface ConformanceJobLike {
  readonly pageTable: PageTable;
  readonly ops: readonly CountOp[];
  readonly splitPolicy: 'forbid' | 'allow';
  readonly merge: boolean;
}

export interface ConformanceHandleLike {
  readonly reserved: number;
  readonly consumed: number;
  run<T>(fn: () => T): T;
  release(): void;
}

export interface ReservationConformanceAdapter {
  prepare(allocator: ReservationAllocator, job: ConformanceJobLike): ConformanceHandleLike | null | 'wait';
  readonly splitPolicies: readonly ('forbid' | 'allow')[];
  readonly merges: boolean;
  readonly admissionLimit?: number;
  isUnusable?(allocator: ReservationAllocator, pageTable: PageTable): boolean;
}

/**
 * Build the adapter. With `admissionLimit`, each allocator gets its own admission
 * control and prepares that do not fit return `'wait'`. `isUnusable` is reported for
 * allocators created with `markUnusable: true`.
 */
export function reservationConformanceAdapter(opts: { admissionLimit?: number } = {}): ReservationConformanceAdapter {
  const admissions = new WeakMap<ReservationAllocator, Admission>();
  const admissionFor = (a: ReservationAllocator): Admission | undefined => {
    if (opts.admissionLimit === undefined) return undefined;
    let adm = admissions.get(a);
    if (adm === undefined) admissions.set(a, (adm = createAdmission({ limit: opts.admissionLimit })));
    return adm;
  };
  const adapter: ReservationConformanceAdapter = {
    splitPolicies: ['forbid', 'allow'],
    merges: true,
    prepare(allocator, job) {
      const pt = job.pageTable;
      const count = tablesNeeded(pt.geometry, job.ops, {
        split: job.splitPolicy === 'allow' ? 'split' : 'none',
        merge: job.merge ? 'msm' : 'per-op',
        pgsizeBitmap: pt.cfg.pgsizeBitmap,
      }).total;
      const ticket = admissionFor(allocator)?.tryAcquire(count);
      if (ticket === null) return 'wait';
      const r = allocator.prepare(count, undefined, pt.geometry.granule);
      if (r.state !== 'ready') {
        ticket?.release();
        return null;
      }
      return {
        get reserved() {
          return r.reserved;
        },
        get consumed() {
          return r.consumed;
        },
        run: (fn) => r.run(fn),
        release() {
          r.release();
          ticket?.release();
        },
      };
    },
    isUnusable: (allocator) => allocator.unusable,
  };
  if (opts.admissionLimit !== undefined) return { ...adapter, admissionLimit: opts.admissionLimit };
  return adapter;
}
