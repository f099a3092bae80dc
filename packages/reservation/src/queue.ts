/**
 * A VM_BIND queue (drm_sched entity with credit limit 1, as Panthor and msm use):
 * `submit` counts and prepares a job (may wait for admission, may fail), jobs run in
 * submission order inside the signalling section, and `cleanup` releases finished
 * jobs' reservations out of the run path (Panthor's cleanup workqueue).
 */
import { tablesNeeded, type MergeStrategy } from './count.js';
import type { Admission, AdmissionTicket } from './admission.js';
import type { Reservation } from './reservation.js';
import { tablesNeededOnTree } from './tree-count.js';
import type { BindError, BindOp, RunResult, Vm } from './vm.js';

/** How a job's reservation is counted: a merge strategy, or `tree` (see tree-count.ts). */
export type CountStrategy = MergeStrategy | 'tree';

export type JobState = 'queued' | 'done' | 'failed' | 'cleaned';

export interface Job {
  readonly id: number;
  readonly ops: readonly BindOp[];
  /** Tables reserved for the job. */
  readonly count: number;
  readonly state: JobState;
  /** Set when the job was refused at prepare (backing failure, unusable VM) or failed in run. */
  readonly error: BindError | PrepareFailure | undefined;
  /** Tables the run consumed (after it ran). */
  readonly consumed: number;
  readonly result: RunResult | undefined;
}

/** Prepare could not reserve: the backing allocator failed, or the VM is unusable. */
export class PrepareFailure extends Error {
  override readonly name = 'PrepareFailure';
  constructor(
    readonly code: 'ENOMEM' | 'EINVAL',
    message: string,
  ) {
    super(`[iopgt] [reservation] ${code}: ${message}`);
  }
}

export interface QueueOptions {
  /** Default `per-op`. */
  readonly strategy?: CountStrategy;
  /** Shared admission control (one per device); none by default. */
  readonly admission?: Admission;
  /**
   * Count maps without a fixed pgsize by the pages they will really use (blocks where
   * iova and paddr allow) instead of the granule worst case. Default false (Panthor, msm).
   */
  readonly exactPageSizes?: boolean;
}

export interface QueueCounters {
  readonly submitted: number;
  readonly prepareFailures: number;
  readonly ran: number;
  readonly runFailures: number;
  /** Sum of reserved tables over jobs that ran. */
  readonly reserved: number;
  /** Sum of consumed tables over jobs that ran. */
  readonly consumed: number;
}

interface JobRec {
  id: number;
  ops: readonly BindOp[];
  count: number;
  state: JobState;
  error: BindError | PrepareFailure | undefined;
  consumed: number;
  result: RunResult | undefined;
  reservation: Reservation | null;
  ticket: AdmissionTicket | null;
}

export class VmBindQueue {
  readonly strategy: CountStrategy;
  readonly exactPageSizes: boolean;
  private readonly admission: Admission | undefined;
  private readonly queue: JobRec[] = [];
  private readonly finished: JobRec[] = [];
  private nextId = 1;
  private stats = { submitted: 0, prepareFailures: 0, ran: 0, runFailures: 0, reserved: 0, consumed: 0 };

  constructor(
    readonly vm: Vm,
    opts: QueueOptions = {},
  ) {
    this.strategy = opts.strategy ?? 'per-op';
    this.admission = opts.admission;
    this.exactPageSizes = opts.exactPageSizes ?? false;
  }

  /** Tables `ops` would reserve if submitted now (throws CountError for malformed ops). */
  count(ops: readonly BindOp[]): number {
    const vm = this.vm;
    const policy = { split: vm.split, pgsizeBitmap: vm.pgsizeBitmap };
    const exact = this.exactPageSizes;
    if (this.strategy === 'tree') {
      const ahead = this.queue.flatMap((j) => j.ops.map((op) => vm.countOp(op)));
      return tablesNeededOnTree(vm.pageTable, ops.flatMap((op) => vm.countOps(op, exact)), ahead, policy).total;
    }
    if (this.strategy === 'per-op' && exact) {
      // Each op alone, its page runs sharing their upper-level tables.
      let total = 0;
      for (const op of ops) total += tablesNeeded(vm.geometry, vm.countOps(op, true), { ...policy, merge: 'union' }).total;
      return total;
    }
    return tablesNeeded(vm.geometry, ops.flatMap((op) => vm.countOps(op, exact)), { ...policy, merge: this.strategy }).total;
  }

  /**
   * Count, wait for admission, prepare and queue. Resolves with the job; a job whose
   * prepare failed resolves in state `failed` with a {@link PrepareFailure}.
   */
  async submit(ops: readonly BindOp[]): Promise<Job> {
    // `tree` counts depend on the jobs ahead, known only at enqueue: admit on the union
    // count (an upper bound of it) and count against the tree in the same step as queueing.
    const admitCount = this.strategy === 'tree' ? this.unionCount(ops) : this.count(ops);
    const ticket = this.admission ? await this.admission.acquire(admitCount) : null;
    return this.enqueue(ops, this.strategy === 'tree' ? this.count(ops) : admitCount, ticket);
  }

  private unionCount(ops: readonly BindOp[]): number {
    const vm = this.vm;
    return tablesNeeded(vm.geometry, ops.flatMap((op) => vm.countOps(op, this.exactPageSizes)), { split: vm.split, pgsizeBitmap: vm.pgsizeBitmap, merge: 'union' }).total;
  }

  /** Like submit, but `'wait'` instead of waiting when admission says the job does not fit. */
  trySubmit(ops: readonly BindOp[]): Job | 'wait' {
    const count = this.count(ops);
    let ticket: AdmissionTicket | null = null;
    if (this.admission) {
      ticket = this.admission.tryAcquire(this.strategy === 'tree' ? this.unionCount(ops) : count);
      if (ticket === null) return 'wait';
    }
    return this.enqueue(ops, count, ticket);
  }

  private enqueue(ops: readonly BindOp[], count: number, ticket: AdmissionTicket | null): Job {
    this.stats.submitted++;
    const rec: JobRec = { id: this.nextId++, ops, count, state: 'queued', error: undefined, consumed: 0, result: undefined, reservation: null, ticket };
    if (this.vm.unusable) return this.fail(rec, new PrepareFailure('EINVAL', 'the VM is unusable after an earlier failed run'));
    const r = this.vm.allocator.prepare(count, undefined, this.vm.geometry.granule);
    rec.reservation = r;
    if (r.state !== 'ready') return this.fail(rec, new PrepareFailure('ENOMEM', `the backing allocator could not provide ${count} tables`));
    this.queue.push(rec);
    return view(rec);
  }

  private fail(rec: JobRec, err: PrepareFailure): Job {
    this.stats.prepareFailures++;
    rec.state = 'failed';
    rec.error = err;
    this.finished.push(rec);
    return view(rec);
  }

  /** Jobs prepared and not yet run, in order. */
  get pending(): readonly Job[] {
    return this.queue.map(view);
  }

  /** Run the job at the head of the queue (inside its signalling section). */
  runNext(): Job | undefined {
    const rec = this.queue.shift();
    if (rec === undefined) return undefined;
    const before = rec.reservation!.consumed;
    const result = this.vm.run(rec.reservation!, rec.ops);
    rec.consumed = rec.reservation!.consumed - before;
    rec.result = result;
    rec.state = result.ok ? 'done' : 'failed';
    if (!result.ok) {
      rec.error = result.error;
      this.stats.runFailures++;
    }
    this.stats.ran++;
    this.stats.reserved += rec.count;
    this.stats.consumed += rec.consumed;
    this.finished.push(rec);
    return view(rec);
  }

  /** Run every queued job in order. */
  runAll(): Job[] {
    const out: Job[] = [];
    for (let j = this.runNext(); j !== undefined; j = this.runNext()) out.push(j);
    return out;
  }

  /**
   * Release finished jobs' reservations and admission tickets (out of the run path).
   * Returns the pages given back to the backing allocator.
   */
  cleanup(): number {
    let returned = 0;
    for (const rec of this.finished) {
      returned += rec.reservation?.release() ?? 0;
      rec.ticket?.release();
      rec.state = 'cleaned';
    }
    this.finished.length = 0;
    // Pages freed during runs and flushed inside the section go back now.
    this.vm.allocator.drain?.();
    return returned;
  }

  /** Drop queued jobs without running them (VM teardown): they are released like finished ones. */
  cancelAll(): number {
    for (const rec of this.queue.splice(0)) {
      rec.state = 'failed';
      this.finished.push(rec);
    }
    return this.cleanup();
  }

  counters(): QueueCounters {
    return { ...this.stats };
  }
}

function view(rec: JobRec): Job {
  return {
    id: rec.id,
    ops: rec.ops,
    get count() {
      return rec.count;
    },
    get state() {
      return rec.state;
    },
    get error() {
      return rec.error;
    },
    get consumed() {
      return rec.consumed;
    },
    get result() {
      return rec.result;
    },
  };
}
