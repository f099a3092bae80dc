/**
 * The VM_BIND job protocol the reservation group drives: prepare (may allocate, may
 * fail) -> run (`ctx.phase = 'run'`, may only consume) -> release (exactly once), with
 * every step checked. Also the slot layout the random job sequences map into.
 */
import type { AllocCtx, TableAllocator } from '@io-pgtable/allocator-api';
import type { TableConfig } from '../configs.js';
import { asFailure, check, fail } from '../failure.js';
import { Harness, type Vm } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions, JobOp, ReservationAdapter, ReservationHandle, JobSplitPolicy } from '../options.js';
import { paFor, spans, type ScenarioOp } from '../scenario.js';

/** Panthor passes GFP_KERNEL into map_pages in the fence-signalling path: `mayBlock` must be ignored. */
export const RUN_CTX: AllocCtx = Object.freeze({ mayBlock: true, phase: 'run' });
export const RUN_ATOMIC_CTX: AllocCtx = Object.freeze({ mayBlock: false, phase: 'run' });

export interface JobSpec {
  readonly ops: readonly ScenarioOp[];
  readonly split?: JobSplitPolicy;
  readonly merge?: boolean;
}

export function jobOp(op: ScenarioOp): JobOp {
  return op.kind === 'map'
    ? { kind: 'map', iova: op.iova, size: op.pgsize * op.count, pgsize: op.pgsize }
    : { kind: 'unmap', iova: op.iova, size: op.size };
}

const hex = (n: number) => '0x' + n.toString(16);

export function describeOps(ops: readonly ScenarioOp[]): string {
  return ops.map((o) => (o.kind === 'map' ? `map ${hex(o.iova)} ${o.count} x ${o.pgsize}` : `unmap ${hex(o.iova)} +${hex(o.size)}`)).join(', ');
}

/** A harness that runs VM_BIND jobs through the reservation adapter. */
export class Jobs<A extends TableAllocator> {
  readonly h: Harness<A>;
  readonly adapter: ReservationAdapter<A>;
  /** Backing frees made while a run was active. */
  private runFrees = 0;

  constructor(factory: AllocatorFactory<A>, options: ConformanceOptions<A>) {
    if (options.reservation === undefined) throw new Error('[iopgt] [conformance] the reservation group needs options.reservation');
    this.adapter = options.reservation;
    // The generic harness map goes through the adapter; this group calls mapNow itself.
    this.h = new Harness(factory, options);
    this.h.backing.onRelease = () => {
      if (this.h.backing.inRun) this.runFrees++;
    };
  }

  vm(config: TableConfig): Vm {
    const vm = this.h.createVm(config);
    if (vm === null) fail('caps', `${config.label}: PGD allocation failed with a healthy backing store`);
    return vm;
  }

  /** The adapter's prepare; a throw that is not a typed allocator error propagates unchanged. */
  prepare(vm: Vm, spec: JobSpec, where: string): ReservationHandle | null | 'wait' {
    try {
      return this.adapter.prepare(this.h.instance, {
        pageTable: vm.pt,
        ops: spec.ops.map(jobOp),
        splitPolicy: spec.split ?? 'forbid',
        merge: spec.merge ?? false,
      });
    } catch (e) {
      throw asFailure(e, `${where}: prepare(${describeOps(spec.ops)})`);
    }
  }

  /** Prepare a job that must be admitted: nothing else outstanding, healthy backing store. */
  ready(vm: Vm, spec: JobSpec, where: string): ReservationHandle {
    const r = this.prepare(vm, spec, where);
    if (r === 'wait') fail('admission', `${where}: a job (${describeOps(spec.ops)}) was told to wait with no other reservation outstanding: it could never be admitted`);
    if (r === null) fail('caps', `${where}: prepare(${describeOps(spec.ops)}) failed with a healthy backing store`);
    this.counts(r, where);
    return r;
  }

  /** reserved and consumed are counts, consumed never above reserved (requirements 8, 18). */
  counts(handle: ReservationHandle, where: string): void {
    const { reserved, consumed } = handle;
    check(Number.isSafeInteger(reserved) && Number.isSafeInteger(consumed) && reserved >= 0 && consumed >= 0, 'reservation-count', () =>
      `${where}: handle reports reserved ${String(reserved)}, consumed ${String(consumed)}; both must be non-negative integers`,
    );
    check(consumed <= reserved, 'reservation-count', () => `${where}: consumed ${consumed} tables but reserved only ${reserved}: the count is not an upper bound`);
  }

  /** Run `fn` inside the reservation; the backing store must see no call (requirement 7). */
  run<T>(handle: ReservationHandle, where: string, fn: () => T): T {
    const b = this.h.backing;
    const calls = b.runCalls;
    const frees = this.runFrees;
    b.inRun = true;
    let out: T;
    try {
      out = handle.run(fn);
    } catch (e) {
      throw asFailure(e, `${where}: run`);
    } finally {
      b.inRun = false;
    }
    check(b.runCalls === calls && this.runFrees === frees, 'run-phase-backing-call', () =>
      `${where}: the run phase made ${b.runCalls - calls} alloc and ${this.runFrees - frees} free calls into the backing store; it may only consume its reservation, whatever ctx.mayBlock says`,
    );
    this.counts(handle, where);
    return out;
  }

  /** Perform `ops` (inside a run); the first map that fails returns its index. */
  perform(vm: Vm, ops: readonly ScenarioOp[], ctx: AllocCtx): number {
    for (const [i, op] of ops.entries()) {
      if (op.kind === 'map') {
        if (this.h.mapNow(vm, op.iova, paFor(op.iova), op.pgsize, op.count, ctx) === 'ENOMEM') return i;
      } else this.h.unmap(vm, op.iova, op.size, op.pgsize);
    }
    return -1;
  }

  /** Release, then the accounting identity (requirements 12, 27). */
  release(handle: ReservationHandle, where: string): void {
    try {
      handle.release();
    } catch (e) {
      fail('release-once', `${where}: release() threw: ${(e as Error)?.message ?? String(e)}`, e);
    }
    this.h.checkAccounting(`${where}, after release`);
  }

  /** A whole job that must fit its reservation: prepare, run every op, release. */
  job(vm: Vm, spec: JobSpec, where: string, ctx: AllocCtx = RUN_CTX): ReservationHandle {
    const handle = this.ready(vm, spec, where);
    const failed = this.run(handle, where, () => this.perform(vm, spec.ops, ctx));
    if (failed >= 0) {
      fail('reservation-count', `${where}: op ${failed} of (${describeOps(spec.ops)}) found the reservation empty (reserved ${handle.reserved}, consumed ${handle.consumed}): the count is not an upper bound`);
    }
    this.release(handle, where);
    return handle;
  }

  /** Is the allocator's VM marked unusable after an exhaustion (requirement 11)? */
  unusable(vm: Vm): boolean {
    return this.adapter.isUnusable?.(this.h.instance, vm.pt) === true;
  }

  teardown(): void {
    this.h.backing.onRelease = null;
    this.h.teardown();
  }
}

/** Windows per layout, tracked page slots per window (8 at its start, 8 at its end). */
export const WINDOWS = 4;
export const SLOTS_PER_WINDOW = 16;
export const SLOTS = WINDOWS * SLOTS_PER_WINDOW;

/**
 * Four consecutive leaf-table windows, straddling a level-1 boundary when the input
 * range allows (so jobs also need new level-2 tables). Slot `s` is a page: the first
 * eight and the last eight pages of window `s >> 4`, so runs of slots cross windows.
 */
export class SlotLayout {
  readonly G: number;
  readonly B2: number;
  readonly N: number;
  readonly base: number;
  constructor(vm: Vm) {
    const { G, B2, B1, far } = spans(vm);
    this.G = G;
    this.B2 = B2;
    this.N = B2 / G;
    this.base = far ? B1 - 2 * B2 : 0;
  }
  window(w: number): number {
    return this.base + w * this.B2;
  }
  iova(s: number): number {
    const k = s % SLOTS_PER_WINDOW;
    return this.window(Math.floor(s / SLOTS_PER_WINDOW)) + (k < 8 ? k : this.N - SLOTS_PER_WINDOW + k) * this.G;
  }
  /** End (exclusive) of the run of at most `n` slots from `s` that is contiguous in IOVA. */
  runEnd(s: number, n: number): number {
    let e = s + 1;
    while (e < s + n && e < SLOTS && e % SLOTS_PER_WINDOW !== 8) e++;
    return e;
  }
}
