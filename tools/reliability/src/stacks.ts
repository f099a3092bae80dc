/**
 * Allocator stacks the reliability runs go through. The system allocator of core is the
 * bottom of every stack; plugins are layered over it as their packages land.
 */
import { assertAccounting, drainAll, type TableAllocator } from '@io-pgtable/allocator-api';
import { withBatching } from '@io-pgtable/batched';
import { PhysMemory, createSystemAllocator, type SystemAllocator } from '@io-pgtable/core';
import { withPagePool } from '@io-pgtable/page-pool';
import { createAdmission, withReservation, type Admission, type CountStrategy, type FreePolicy, type ReservationAllocator } from '@io-pgtable/reservation';
import { createScmMock, withSecureShare, type ScmMock } from '@io-pgtable/secure-share';

export interface StackOptions {
  /** Fault injection on the bottom allocator: fail the n-th backing allocation (0-based). */
  failWhen?: (callIndex: number, size: number) => boolean;
  /** Smallest block of the system allocator (64 packs small PGDs, 4096 is the kernel's). */
  minBlock?: number;
  /** Size of the system allocator's region. */
  limit?: number;
  /** Fault injection on the secure monitor (secure-share stacks): fail the n-th call. */
  scmFailWhen?: (callIndex: number, pageCount: number) => boolean | { leaveUnknown: boolean };
  /**
   * Fault injection between the bottom and the layers over it: what every layer (and, for
   * the bare system stack, the page table) allocates from instead of the system allocator
   * itself. It must forward to the system allocator; `stack.system` stays the real one.
   */
  wrapBottom?: (system: SystemAllocator) => TableAllocator;
}

export interface Stack {
  name: string;
  /** What the page table allocates from. */
  allocator: TableAllocator;
  /** The bottom of the stack. */
  system: SystemAllocator;
  memory: PhysMemory;
  /** Smallest block the bottom hands out. */
  minBlock: number;
  /** Every layer, top first, for the accounting identity. */
  layers: TableAllocator[];
  /** The driver's "flush done": pending frees become reusable. */
  flushDone(): void;
  /** Teardown: flush done, drain every idle page to the bottom. */
  drain(): void;
  /** Secure calls made so far (secure-share stacks), for fault injection on them. */
  secureCalls?(): number;
  /** The secure monitor (secure-share stacks). */
  scm?: ScmMock;
  /** Reservation stacks: the page table is a VM driven by VM_BIND jobs (see bind.ts). */
  bind?: BindSetup;
}

export interface BindSetup {
  /** The top of the stack. */
  reservation: ReservationAllocator;
  /** How the queue counts a job's reservation. */
  strategy: CountStrategy;
  /** Admission shared by every VM built on this stack (one per device). */
  admission: Admission;
}

export const SYSTEM_BASE = 0x8000_0000;

export function systemStack(opts: StackOptions = {}): Stack {
  const memory = new PhysMemory();
  const system = createSystemAllocator({
    memory,
    base: SYSTEM_BASE,
    limit: opts.limit ?? 0x1000_0000,
    minBlock: opts.minBlock ?? 4096,
    ...(opts.failWhen ? { failWhen: opts.failWhen } : {}),
  });
  return {
    name: 'system',
    allocator: opts.wrapBottom ? opts.wrapBottom(system) : system,
    system,
    memory,
    minBlock: opts.minBlock ?? 4096,
    layers: [system],
    flushDone: () => system.flushDone(),
    drain: () => system.flushDone(),
  };
}

/** Put `layers` (innermost first) over a system allocator. */
function layered(name: string, opts: StackOptions, build: (bottom: TableAllocator, extra: { scm?: ScmMock }) => TableAllocator[], bind?: Omit<BindSetup, 'reservation'>): Stack {
  const base = systemStack(opts);
  const extra: { scm?: ScmMock } = {};
  const over = build(base.allocator, extra);
  const top = over[over.length - 1]!;
  const stack: Stack = {
    ...base,
    name,
    allocator: top,
    layers: [...over].reverse().concat(base.system),
    flushDone: () => top.flushDone(),
    // A layer's drain may free into the layer below, whose deferred-free rule then holds
    // those pages until another flushDone (secure-share over page-pool does): drainAll
    // repeats flushDone + drain until no layer of the stack changes.
    drain: () => {
      drainAll(top);
    },
  };
  if (bind !== undefined) stack.bind = { ...bind, reservation: top as ReservationAllocator };
  if (extra.scm !== undefined) {
    const scm = extra.scm;
    stack.scm = scm;
    stack.secureCalls = () => scm.calls;
  }
  return stack;
}

export type StackName =
  | 'system'
  | 'pool'
  | 'batched'
  | 'pool-over-batched'
  | 'batched-over-pool'
  | 'secure-share'
  | 'secure-over-pool-over-batched'
  | 'reservation'
  | 'reservation-over-secure-over-pool-over-batched';

/** Every stack the fault injection and the fuzzer drive (named apart from the CLI's `STACKS` of stack definitions). */
export const STACK_NAMES: readonly StackName[] = [
  'system',
  'pool',
  'batched',
  'pool-over-batched',
  'batched-over-pool',
  'secure-share',
  'secure-over-pool-over-batched',
  'reservation',
  'reservation-over-secure-over-pool-over-batched',
];

/**
 * The largest stack: a reservation allocator (VM_BIND jobs) over secure-share over a page
 * pool over a batched allocator over the system allocator.
 */
export const LARGEST_STACK: StackName = 'reservation-over-secure-over-pool-over-batched';

/** Stacks whose page table is driven as VM_BIND jobs (strict mode, TTBR0 configurations). */
export function isBindStack(name: StackName): boolean {
  return name.startsWith('reservation');
}

function reservation(inner: TableAllocator, freePolicy: FreePolicy): ReservationAllocator {
  return withReservation(inner, { freePolicy });
}

function secure(inner: TableAllocator, opts: StackOptions, extra: { scm?: ScmMock }, mode: 'share' | 'donate' = 'share', batch = 4, poolTarget = 4): TableAllocator {
  const scm = createScmMock(opts.scmFailWhen ? { failWhen: opts.scmFailWhen } : {});
  extra.scm = scm;
  return withSecureShare(inner, { scm, vmid: 9, batch, poolTarget, mode });
}

/**
 * Secure-share in donate mode ([VMID: RW]) over the system allocator: the host may not
 * write a table page, so every map that needs a table write is refused (src/donate.ts).
 * Not in {@link STACK_NAMES}: the model-based harness expects maps to succeed.
 */
export function donateStack(opts: StackOptions = {}): Stack {
  return layered('secure-donate', opts, (s, extra) => [secure(s, opts, extra, 'donate')]);
}

/**
 * Stacks only the fault matrix (src/matrix.ts) drives, beside {@link STACK_NAMES}: donate
 * mode alone and composed, the RFC's one secure call per table, and the CLI's reservation
 * over a page pool. The model-based harness cannot drive them (donate refuses maps).
 */
export type FaultOnlyStackName = 'secure-donate' | 'secure-donate-over-pool-over-batched' | 'secure-per-table' | 'reservation-over-pool' | 'reservation-merged-over-pool' | 'batched-partial';

export const FAULT_ONLY_STACK_NAMES: readonly FaultOnlyStackName[] = [
  'secure-donate',
  'secure-donate-over-pool-over-batched',
  'secure-per-table',
  'reservation-over-pool',
  'reservation-merged-over-pool',
  'batched-partial',
];

export function makeFaultOnlyStack(name: FaultOnlyStackName, opts: StackOptions = {}): Stack {
  switch (name) {
    case 'secure-donate':
      return donateStack(opts);
    case 'secure-donate-over-pool-over-batched':
      return layered(name, opts, (s, extra) => {
        const b = withBatching(s, { batch: 4 });
        const p = withPagePool(b, { highWatermark: 8 });
        return [b, p, secure(p, opts, extra, 'donate')];
      });
    case 'secure-per-table':
      // The RFC's shape (the CLI's secure-per-table): one secure call per table and per free.
      return layered(name, opts, (s, extra) => [secure(s, opts, extra, 'share', 1, 0)]);
    case 'reservation-over-pool':
      // The CLI's reserve-per-op: a reservation per job over a page pool, default free policy.
      return layered(name, opts, reservationOverPool, { strategy: 'per-op', admission: createAdmission({ limit: 64 }) });
    case 'reservation-merged-over-pool':
      // The CLI's reserve-merged: the job's tables counted once over its merged ops (union).
      return layered(name, opts, reservationOverPool, { strategy: 'union', admission: createAdmission({ limit: 64 }) });
    case 'batched-partial':
      // The CLI's batched: 16 pages a refill, a short refill keeps what it got.
      return layered(name, opts, (s) => [withBatching(s, { batch: 16, mode: 'partial' })]);
  }
}

export function makeStack(name: StackName, opts: StackOptions = {}): Stack {
  switch (name) {
    case 'system':
      return systemStack(opts);
    case 'pool':
      return layered(name, opts, (s) => [withPagePool(s, { highWatermark: 8 })]);
    case 'batched':
      return layered(name, opts, (s) => [withBatching(s, { batch: 4 })]);
    case 'pool-over-batched': {
      return layered(name, opts, (s) => {
        const b = withBatching(s, { batch: 4 });
        return [b, withPagePool(b, { highWatermark: 8 })];
      });
    }
    case 'batched-over-pool':
      return layered(name, opts, (s) => {
        const p = withPagePool(s, { highWatermark: 8 });
        return [p, withBatching(p, { batch: 4 })];
      });
    case 'secure-share':
      return layered(name, opts, (s, extra) => [secure(s, opts, extra)]);
    case 'secure-over-pool-over-batched':
      return layered(name, opts, (s, extra) => {
        const b = withBatching(s, { batch: 4 });
        const p = withPagePool(b, { highWatermark: 8 });
        return [b, p, secure(p, opts, extra)];
      });
    case 'reservation':
      // Policy `reservation`: tables freed during a run go back to the job (KVM-like).
      return layered(name, opts, (s) => [reservation(s, 'reservation')], { strategy: 'per-op', admission: createAdmission({ limit: 64 }) });
    case 'reservation-over-secure-over-pool-over-batched':
      // Policy `backing` (Panthor, msm), counted against the tree as queued jobs allow.
      return layered(
        name,
        opts,
        (s, extra) => {
          const b = withBatching(s, { batch: 4 });
          const p = withPagePool(b, { highWatermark: 8 });
          const sec = secure(p, opts, extra);
          return [b, p, sec, reservation(sec, 'backing')];
        },
        { strategy: 'tree', admission: createAdmission({ limit: 256 }) },
      );
  }
}

/** The accounting identity on every layer. */
export function assertStackAccounting(stack: Stack): void {
  for (const l of stack.layers) assertAccounting(l);
}

/**
 * After teardown and drain: no layer holds a table, a cached, reserved or pending page;
 * the bottom has every page back except the ones a layer quarantined forever.
 */
export function assertStackEmpty(stack: Stack): string | null {
  // Bytes a layer above quarantined forever: still live in every layer below it.
  let quarantined = 0;
  for (const l of stack.layers) {
    const s = l.stats();
    if (l === stack.system) {
      if (s.outstanding !== quarantined) return `system: ${s.outstanding} bytes outstanding after drain (${quarantined} quarantined above it)`;
      break;
    }
    if (s.live !== quarantined || (quarantined === 0 && s.liveTables !== 0)) {
      return `${l.caps.name}: ${s.liveTables} tables (${s.live} bytes) still live after teardown (${quarantined} bytes quarantined above it)`;
    }
    const held = s.cached + s.reserved + s.pendingFlush;
    if (held !== 0) return `${l.caps.name}: ${held} bytes still cached/reserved/pending after drain`;
    quarantined += s.quarantined;
  }
  return null;
}

/** A reservation over a small page pool: the layers of both reserve stacks (they differ in how a job is counted). */
function reservationOverPool(s: TableAllocator): TableAllocator[] {
  const p = withPagePool(s, { highWatermark: 8 });
  return [p, withReservation(p, {})];
}
