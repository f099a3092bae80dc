/**
 * Admission control for reservations in flight (msm's VM_BIND throttle, done so that
 * the check and the add cannot be separated). A job asks for `count` pages; it is
 * admitted at once when the pages fit under `limit` and nobody is waiting ahead of it,
 * and otherwise waits, in FIFO order, until enough jobs have released. A job larger
 * than the limit is admitted alone, so outstanding pages never exceed
 * `max(limit, largest job)` <= `limit + one job`.
 */
import { describeValue } from '@io-pgtable/allocator-api';

/** Options of {@link createAdmission}. */
export interface AdmissionOptions {
  /** Pages that reservations in flight may hold together (>= 0). */
  readonly limit: number;
}

/** A job's admitted pages; `release()` gives them back once (idempotent). */
export interface AdmissionTicket {
  readonly count: number;
  readonly released: boolean;
  release(): void;
}

export interface AdmissionCounters {
  /** Pages held by admitted, unreleased tickets. */
  readonly outstanding: number;
  /** Highest `outstanding` seen. */
  readonly peak: number;
  /** Jobs waiting now. */
  readonly waiting: number;
  /** Jobs that had to wait at least once. */
  readonly waited: number;
  readonly admitted: number;
}

export interface Admission {
  readonly limit: number;
  /** Admit now or never: a ticket, or null when the job would have to wait. */
  tryAcquire(count: number): AdmissionTicket | null;
  /** Admit when it fits; resolves in FIFO order. */
  acquire(count: number): Promise<AdmissionTicket>;
  counters(): AdmissionCounters;
}

interface Waiter {
  count: number;
  resolve: (t: AdmissionTicket) => void;
}

export function createAdmission(opts: AdmissionOptions): Admission {
  const limit = opts.limit;
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`[iopgt] [reservation] admission limit must be a non-negative integer, got ${describeValue(limit)}`);
  let outstanding = 0;
  let peak = 0;
  let waited = 0;
  let admitted = 0;
  const queue: Waiter[] = [];

  const fits = (count: number) => outstanding === 0 || outstanding + count <= limit;

  /** Check and add in one synchronous step: nothing can run in between. */
  function admit(count: number): AdmissionTicket {
    outstanding += count;
    admitted++;
    if (outstanding > peak) peak = outstanding;
    let released = false;
    return {
      count,
      get released() {
        return released;
      },
      release() {
        if (released) return;
        released = true;
        outstanding -= count;
        wake();
      },
    };
  }

  function wake(): void {
    while (queue.length > 0 && fits(queue[0]!.count)) {
      const w = queue.shift()!;
      w.resolve(admit(w.count));
    }
  }

  function checkCount(count: number): void {
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`[iopgt] [reservation] admission count must be a non-negative integer, got ${describeValue(count)}`);
  }

  return {
    limit,
    tryAcquire(count) {
      checkCount(count);
      // Overtaking a waiter would starve large jobs.
      if (queue.length > 0 || !fits(count)) return null;
      return admit(count);
    },
    acquire(count) {
      checkCount(count);
      if (queue.length === 0 && fits(count)) return Promise.resolve(admit(count));
      waited++;
      return new Promise((resolve) => queue.push({ count, resolve }));
    },
    counters: () => ({ outstanding, peak, waiting: queue.length, waited, admitted }),
  };
}
