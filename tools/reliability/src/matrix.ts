/**
 * The fault matrix: every stack the project ships x every fault kind x every call index k
 * a seeded workload reaches (map/unmap churn with gathers and syncs, flushDone, reclaim and
 * drain in the middle, then pt.free, flushDone, reclaim, drain). A run injects exactly one
 * fault, drives the workload through it like a driver would (an error is data: note it and
 * go on), tears down, retries what the errors reported as not given back, and then asserts:
 *
 *  - every error surfaced through the page table's API is one of the project's typed errors
 *    (a driver-level call into the allocator stack, such as drain, may also pass the
 *    injected fault itself through unchanged), never a TypeError or any other crash;
 *  - a call that failed changed no translation and removed no table (compared on pt.tables()
 *    snapshots decoded independently; tables a failed map allocated on the way down may
 *    stay, empty, as in the kernel);
 *  - the page table's own count of live tables is the reachable tables plus the ones a
 *    TableFreeError reported, and the accounting identity holds on every layer after every
 *    step;
 *  - after teardown every page the bottom allocator handed out is back, except blocks a
 *    layer quarantined, and those only when a secure call failed (the reason); the monitor
 *    tracks no page outside a quarantined block (no page is still donated or shared).
 */
import { AccountingError, AllocatorFaultError, AllocatorMisuseError, COMPLETED_FLUSH, assertAccounting, drainAll, type AllocCtx, type FreeCtx, type Paddr, type TableAllocator } from '@io-pgtable/allocator-api';
import { FlushCallbackError, IotlbGather, IoPgtableError, TableFreeError, allocIoPgtableOps, hw, mulberry32, type DmaOps, type FlushOps, type PageTable, type SystemAllocator, type TableFreeFailure } from '@io-pgtable/core';
import { BindError, PrepareFailure, type BindOp } from '@io-pgtable/reservation';
import type { SecureShareAllocator } from '@io-pgtable/secure-share';
import { createBindVm, type BindVm } from './bind.js';
import { cPoolStack } from './c-stack.js';
import { usableSizes } from './commands.js';
import { nameHash, type FuzzConfig } from './configs.js';
import { walkSnapshot, type DescCtx } from './decode.js';
import { refShape, type RefShape } from './ref-geometry.js';
import { FAULT_ONLY_STACK_NAMES, STACK_NAMES, assertStackEmpty, isBindStack, makeFaultOnlyStack, makeStack, type FaultOnlyStackName, type Stack, type StackName, type StackOptions } from './stacks.js';

/** Every stack of the matrix: the model-checked ones, the fault-only ones, and the C allocator. */
export type MatrixStackName = StackName | FaultOnlyStackName | 'c-pool';
export const MATRIX_STACKS: readonly MatrixStackName[] = [...STACK_NAMES, ...FAULT_ONLY_STACK_NAMES, 'c-pool'];

export function buildMatrixStack(name: MatrixStackName, opts: StackOptions): Stack {
  if (name === 'c-pool') return cPoolStack(opts);
  if ((FAULT_ONLY_STACK_NAMES as readonly string[]).includes(name)) return makeFaultOnlyStack(name as FaultOnlyStackName, opts);
  return makeStack(name as StackName, opts);
}

function isMatrixBind(name: MatrixStackName): boolean {
  return isBindStack(name as StackName);
}

/**
 * Where a fault is injected and what it does:
 *  - `alloc-null` / `alloc-throw`: the k-th allocation from the bottom (system) allocator
 *    returns null / throws (under a plugin, the plugin's call into its backing);
 *  - `free-throw`: the k-th free into the bottom allocator throws;
 *  - `pt-free-throw`: the k-th call of the page table's free hook throws (the allocator at
 *    the top of the stack never takes the table back);
 *  - `flush-throw`: the k-th TLB callback (tlbFlushAll, tlbFlushWalk, tlbAddPage, tlbSync) throws;
 *  - `scm-assign-fail` / `scm-unassign-fail`: the k-th secure call (an assign to the VM, or
 *    one back to the host) fails with no state change; the `-unknown` variants leave the
 *    call's pages in the state the firmware does not report (they must be quarantined);
 *  - `dma-map-fail` / `dma-map-moved`: the k-th DMA map of a table (non-coherent walks)
 *    fails / returns a DMA address other than the physical one (the kernel's "Cannot
 *    accommodate DMA translation": the table is given back, the map fails with ENOMEM).
 */
export type FaultKind =
  | 'alloc-null'
  | 'alloc-throw'
  | 'free-throw'
  | 'pt-free-throw'
  | 'flush-throw'
  | 'scm-assign-fail'
  | 'scm-assign-fail-unknown'
  | 'scm-unassign-fail'
  | 'scm-unassign-fail-unknown'
  | 'dma-map-fail'
  | 'dma-map-moved';

export const FAULT_KINDS: readonly FaultKind[] = [
  'alloc-null',
  'alloc-throw',
  'free-throw',
  'pt-free-throw',
  'flush-throw',
  'scm-assign-fail',
  'scm-assign-fail-unknown',
  'scm-unassign-fail',
  'scm-unassign-fail-unknown',
  'dma-map-fail',
  'dma-map-moved',
];

type Site = 'alloc' | 'free' | 'ptFree' | 'flush' | 'dma' | 'scm';

function siteOf(kind: FaultKind): Site {
  if (kind === 'alloc-null' || kind === 'alloc-throw') return 'alloc';
  if (kind === 'free-throw') return 'free';
  if (kind === 'pt-free-throw') return 'ptFree';
  if (kind === 'flush-throw') return 'flush';
  if (kind === 'dma-map-fail' || kind === 'dma-map-moved') return 'dma';
  return 'scm';
}

/** The fault a test injects: a plain Error, as a buggy hook or driver callback would throw. */
export class InjectedFault extends Error {
  override readonly name = 'InjectedFault';
}

export interface FaultPlan {
  kind: FaultKind;
  k: number;
}

/** Counts the calls at every site and fires the plan's fault once, while armed. */
class Injector {
  readonly n: Record<Site, number> = { alloc: 0, free: 0, ptFree: 0, flush: 0, dma: 0, scm: 0 };
  /** Secure calls of the run, as assign (to the VM) or unassign (back to the host). */
  readonly scmKinds: Array<'assign' | 'unassign'> = [];
  fired: string | null = null;
  armed = true;
  constructor(readonly plan: FaultPlan | null) {}

  at(site: Site, index?: number): boolean {
    const i = index ?? this.n[site];
    this.n[site] = i + 1;
    const p = this.plan;
    if (!this.armed || p === null || siteOf(p.kind) !== site || p.k !== i) return false;
    this.fired = `${p.kind} #${i}`;
    return true;
  }

  fault(what: string): InjectedFault {
    return new InjectedFault(`injected: ${what} (${this.plan!.kind} #${this.plan!.k})`);
  }
}

/** The bottom as the layers see it: forwards to the system allocator, with alloc/free faults. */
function faultyBottom(system: SystemAllocator, inj: Injector): TableAllocator {
  return {
    caps: { ...system.caps, mayFail: true },
    inner: system,
    memory: system.memory,
    alloc(size: number, ctx: AllocCtx): Paddr | null {
      if (inj.at('alloc')) {
        if (inj.plan!.kind === 'alloc-null') return null;
        throw inj.fault(`alloc(${size})`);
      }
      return system.alloc(size, ctx);
    },
    free(paddr: Paddr, size: number, ctx?: FreeCtx): void {
      if (inj.at('free')) throw inj.fault(`free(0x${paddr.toString(16)})`);
      system.free(paddr, size, ctx);
    },
    flushDone: (t) => system.flushDone(t),
    stats: () => system.stats(),
  };
}

/** What the page table allocates from: the top of the stack, with the free hook failing once. */
function faultyTop(top: TableAllocator, inj: Injector): TableAllocator {
  return {
    caps: top.caps,
    inner: top,
    memory: top.memory,
    alloc: (size, ctx) => top.alloc(size, ctx),
    free(paddr: Paddr, size: number, ctx?: FreeCtx): void {
      if (inj.at('ptFree')) throw inj.fault(`page-table free(0x${paddr.toString(16)})`);
      top.free(paddr, size, ctx);
    },
    flushDone: (t) => top.flushDone(t),
    stats: () => top.stats(),
    ...(top.drain ? { drain: () => top.drain!() } : {}),
  };
}

function faultyTlb(inj: Injector): FlushOps {
  const cb =
    (name: string) =>
    (): void => {
      if (inj.at('flush')) throw inj.fault(name);
    };
  return { tlbFlushAll: cb('tlbFlushAll'), tlbFlushWalk: cb('tlbFlushWalk'), tlbAddPage: cb('tlbAddPage'), tlbSync: cb('tlbSync') };
}

function faultyDma(inj: Injector): DmaOps {
  return { map: (p, size) => (inj.at('dma') ? (inj.plan!.kind === 'dma-map-fail' ? -1 : p + Math.max(size, 64)) : p), unmap() {}, sync() {} };
}

// ---- the workload ---------------------------------------------------------------

export type WorkOp =
  | { k: 'map'; iova: number; pa: number; pgsize: number; count: number; prot: number }
  | { k: 'unmap'; iova: number; pgsize: number; count: number }
  | { k: 'flushDone' }
  | { k: 'reclaim' }
  | { k: 'drain' };

/** A small seeded generator (core's mulberry32), so every run of a cell sees the same workload. */
export const rng = mulberry32;

/**
 * `length` operations over a few PGD windows: maps of 1-3 pages of every usable size below
 * the window, unmaps of earlier maps, unmaps of a whole window's block (frees its tables),
 * and flushDone, reclaim and drain in between.
 */
export function workload(shape: RefShape, seed: number, length = 24): WorkOp[] {
  const r = rng(seed);
  const pick = (n: number) => Math.floor(r() * n);
  const window = shape.blockSize[shape.startLevel]!;
  const windows = Math.max(1, Math.min(3, shape.pgdEntries));
  const sizes = usableSizes(shape).filter((s) => s < window);
  const block = sizes[sizes.length - 1]!;
  const maps: Array<Extract<WorkOp, { k: 'map' }>> = [];
  const ops: WorkOp[] = [];
  while (ops.length < length) {
    const x = r();
    if (x < 0.5 || maps.length === 0) {
      // Mostly the smallest page (it needs the most tables), sometimes a larger one.
      const pgsize = r() < 0.7 ? sizes[0]! : sizes[pick(sizes.length)]!;
      const count = 1 + pick(3);
      const slots = Math.min(16, window / pgsize - count);
      const iova = pick(windows) * window + pick(Math.max(1, slots)) * pgsize;
      const room = Math.max(1, Math.min(64, Math.floor(2 ** Math.min(shape.oas, 48) / pgsize) - count - 1));
      const m = { k: 'map' as const, iova, pa: (1 + pick(room)) * pgsize, pgsize, count, prot: 1 | (r() < 0.5 ? 2 : 0) };
      maps.push(m);
      ops.push(m);
    } else if (x < 0.72) {
      const m = maps[pick(maps.length)]!;
      ops.push({ k: 'unmap', iova: m.iova, pgsize: m.pgsize, count: m.count });
    } else if (x < 0.82) {
      const m = maps[pick(maps.length)]!;
      ops.push({ k: 'unmap', iova: m.iova - (m.iova % block), pgsize: block, count: 1 });
    } else if (x < 0.9) ops.push({ k: 'flushDone' });
    else if (x < 0.95) ops.push({ k: 'reclaim' });
    else ops.push({ k: 'drain' });
  }
  return ops;
}

// ---- one run ---------------------------------------------------------------------

export interface MatrixRun {
  /** Why the run broke a rule (null: it held). */
  failure: string | null;
  /** Calls made at every site (the clean run's give the k to inject). */
  calls: Record<Site, number>;
  scmKinds: Array<'assign' | 'unassign'>;
  fired: string | null;
  /** Errors surfaced, by class name. */
  errors: Record<string, number>;
  /** Bytes quarantined at the end. */
  quarantined: number;
}

const TYPED = [IoPgtableError, TableFreeError, FlushCallbackError, AllocatorFaultError, AllocatorMisuseError, AccountingError, BindError, PrepareFailure] as const;

function isTyped(e: unknown): boolean {
  return TYPED.some((c) => e instanceof c);
}

/** An error a driver-level call into the stack may surface: typed, the injected fault itself, or a list of those. */
function isHonest(e: unknown): boolean {
  if (isTyped(e) || e instanceof InjectedFault) return true;
  return e instanceof AggregateError && e.errors.length > 0 && e.errors.every(isHonest);
}

function describeErr(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message.slice(0, 300)}` : String(e);
}

class RunFailure extends Error {}

/**
 * The flush regime of the page table: `sync` (arm-smmu: the walk flush completes before a
 * table is freed) or `deferred` (Panthor: tables are freed under the gather's pending
 * token, completed by iotlbSync). Deferred needs a stack that reuses only after the flush.
 */
export type FlushRegime = 'sync' | 'deferred';
export const FLUSH_REGIMES: readonly FlushRegime[] = ['sync', 'deferred'];

export interface RunOptions {
  seed?: number;
  regime?: FlushRegime;
}

/** Run one cell of the matrix with one fault (or none). */
export function runMatrix(cfg: FuzzConfig, stackName: MatrixStackName, plan: FaultPlan | null, opts: RunOptions = {}): MatrixRun {
  const seed = opts.seed ?? 1;
  const regime = opts.regime ?? 'sync';
  const inj = new Injector(plan);
  const errors: Record<string, number> = {};
  const out = (failure: string | null, quarantined = 0): MatrixRun => ({ failure, calls: { ...inj.n }, scmKinds: inj.scmKinds, fired: inj.fired, errors, quarantined });
  const shape = refShape(cfg.format, cfg.pgsizeBitmap, cfg.ias, cfg.oas);
  if (shape === null) return out(`config ${cfg.name} does not initialise`);
  const unknown = plan !== null && plan.kind.endsWith('-unknown');
  const stack = buildMatrixStack(stackName, {
    wrapBottom: (s) => faultyBottom(s, inj),
    // The monitor's own call index: a call it refuses for bad arguments uses one up too.
    scmFailWhen: (n) => (inj.at('scm', n) ? { leaveUnknown: unknown } : false),
  });
  const scm = stack.scm;
  const tag = `[${cfg.name} ${stackName}${regime === 'deferred' ? ' deferred' : ''} ${plan ? `${plan.kind} #${plan.k}` : 'clean'}]`;
  // Every rule the run broke (the first few of each kind); the run goes on past a broken rule.
  const violations: string[] = [];
  const seen = new Map<string, number>();
  const violate = (kind: string, msg: string): void => {
    const n = seen.get(kind) ?? 0;
    seen.set(kind, n + 1);
    if (n < 2) violations.push(`${tag} ${msg}`);
  };
  /** A violation after which the run cannot go on. */
  const fail: (msg: string) => never = (msg) => {
    throw new RunFailure(msg);
  };
  // Set once the fault fired and the driver retries: any error from then on is a violation.
  let retrying = false;
  const note = (where: string, e: unknown, api: boolean): void => {
    if (e instanceof RunFailure) throw e;
    const name = e instanceof Error ? e.name : typeof e;
    errors[name] = (errors[name] ?? 0) + 1;
    if (retrying) violate('retry', `${where} failed again with the fault disarmed: ${describeErr(e)}`);
    else if (api ? !isTyped(e) : !isHonest(e)) violate('untyped', `${where} surfaced an untyped error: ${describeErr(e)}`);
  };
  const ttbr1 = cfg.quirks.includes('ARM_TTBR1');
  const apiIova = (x: number): bigint | number => (ttbr1 ? (1n << 64n) - (1n << BigInt(cfg.ias)) + BigInt(x) : x);
  const ctx: DescCtx = { fmt: cfg.format, quirks: new Set(cfg.quirks), coherentWalk: cfg.coherentWalk, granule: shape.granule };
  const bind = isMatrixBind(stackName);
  // Tables the page table reported with a TableFreeError: still held by the top of the stack.
  const unreturned: TableFreeFailure[] = [];
  const top = stack.allocator;
  const ptAlloc = bind ? top : faultyTop(top, inj);
  const tlb: FlushOps = { ...faultyTlb(inj), deferred: regime === 'deferred' };

  let pt: PageTable | null = null;
  let vm: BindVm | null = null;

  const view = (): { leaves: string; tables: Set<string>; reachable: number } => {
    // The device's view: donate mode's tables refuse the host's read (pt.tables()).
    const w = walkSnapshot(ctx, shape, pt!.pgd, hw.deviceTables(pt!));
    if (w.problems.length > 0) fail(`tree: ${w.problems.slice(0, 3).join('; ')}`);
    return { leaves: JSON.stringify([...w.leaves.values()].sort((a, b) => a.iova - b.iova), (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v)), tables: w.tables, reachable: w.tableLevels.size };
  };
  const unchanged = (what: string, before: ReturnType<typeof view>): void => {
    const after = view();
    if (after.leaves !== before.leaves) violate('state', `${what} failed but changed the translations:\n  before ${before.leaves.slice(0, 400)}\n  after  ${after.leaves.slice(0, 400)}`);
    for (const t of before.tables) if (!after.tables.has(t)) violate('state', `${what} failed but removed table ${t}`);
  };
  const checkLedgers = (where: string): void => {
    for (const l of stack.layers) {
      try {
        assertAccounting(l);
      } catch (e) {
        violate('ledger', `${where}: ${describeErr(e)}`);
      }
    }
    if (pt !== null && !pt.isFreed) {
      const live = pt.stats().liveTables;
      const want = view().reachable + unreturned.length;
      if (live !== want) violate('pt-count', `${where}: the page table counts ${live} live tables, ${want} are reachable or reported unreturned`);
      let topLive: number | null = null;
      try {
        topLive = top.stats().liveTables;
      } catch (e) {
        violate('ledger', `${where}: ${top.caps.name}.stats() threw ${describeErr(e)}`);
      }
      if (!bind && topLive !== null && topLive !== live) violate('pt-count', `${where}: ${top.caps.name} has ${topLive} live tables, the page table ${live}`);
    }
  };
  const freeFailed = (e: unknown): void => {
    if (e instanceof TableFreeError) unreturned.push(...e.failures);
    if (e instanceof FlushCallbackError) unreturned.push(...e.tableFreeFailures);
  };
  /** Errors reported after the operation completed (a free hook or a flush callback threw on the way). */
  const completed = (e: unknown): boolean => e instanceof TableFreeError || (e instanceof FlushCallbackError && e.failures[0]?.callback !== 'tlbSync');
  const secureLayers = stack.layers.filter((l): l is SecureShareAllocator => typeof (l as Partial<SecureShareAllocator>).reclaim === 'function');
  const driver = (what: string, f: () => void): void => {
    try {
      f();
    } catch (e) {
      note(what, e, false);
    }
  };

  try {
    // ---- create
    if (bind) {
      try {
        vm = createBindVm(stack.bind!, cfg, { observe: (a) => faultyTop(a, inj), tlb });
        pt = vm.vm.pageTable;
      } catch (e) {
        note('createVm', e, true);
      }
    } else {
      let r: ReturnType<typeof allocIoPgtableOps> | null = null;
      try {
        r = allocIoPgtableOps(
          cfg.format,
          { pgsizeBitmap: cfg.pgsizeBitmap, ias: cfg.ias, oas: cfg.oas, quirks: cfg.quirks, coherentWalk: cfg.coherentWalk },
          { allocator: ptAlloc, tlb, ...(cfg.coherentWalk ? {} : { dma: faultyDma(inj) }), mode: 'strict' },
        );
      } catch (e) {
        note('allocIoPgtableOps', e, true);
      }
      if (r !== null && r.ok) pt = r.table;
      else if (r !== null && r.code !== 'ENOMEM') fail(`creation failed with ${r.code}: ${r.reason}`);
    }
    checkLedgers('after creation');

    // ---- the workload
    if (pt !== null) {
      for (const op of workload(shape, nameHash(cfg.name) ^ seed)) {
        const what = JSON.stringify(op);
        if (op.k === 'flushDone') driver('flushDone', () => stack.flushDone());
        else if (op.k === 'reclaim') for (const s of secureLayers) driver('reclaim', () => s.reclaim());
        else if (op.k === 'drain') driver('drain', () => top.drain?.());
        else if (vm !== null) {
          const before = view();
          const bop: BindOp = op.k === 'map' ? { kind: 'map', iova: op.iova, size: op.pgsize * op.count, paddr: op.pa, prot: op.prot, pgsize: op.pgsize } : { kind: 'unmap', iova: op.iova, size: op.pgsize * op.count };
          let failed = false;
          try {
            const job = vm.queue.trySubmit([bop]);
            if (job === 'wait') fail(`admission refused a one-op job with no job in flight`);
            if (job.state === 'failed') failed = true;
            else {
              vm.queue.runAll();
              if (job.result === undefined || !job.result.ok) failed = true;
            }
          } catch (e) {
            note(`job ${what}`, e, true);
            freeFailed(e);
            failed = !completed(e);
          }
          driver('cleanup', () => vm!.queue.cleanup());
          if (failed && op.k === 'map') unchanged(`job ${what}`, before);
        } else {
          const before = view();
          const p = pt;
          let failed = false;
          try {
            if (op.k === 'map') {
              const m = p.mapPages(apiIova(op.iova), op.pa, op.pgsize, op.count, op.prot);
              failed = m.error !== undefined;
            } else {
              const g = new IotlbGather();
              try {
                const u = p.unmapPages(apiIova(op.iova), op.pgsize, op.count, g);
                failed = u.error !== undefined;
              } finally {
                // Whatever the unmap did, the driver syncs the gather it passed (deferred
                // flush ops free tables under its token).
                try {
                  p.iotlbSync(g);
                } catch (e) {
                  note('iotlbSync', e, true);
                }
              }
            }
          } catch (e) {
            note(what, e, true);
            freeFailed(e);
            failed = !completed(e);
          }
          if (failed) unchanged(what, before);
        }
        checkLedgers(`after ${what}`);
      }
    }

    // ---- teardown, as a driver does it: free, sync, flush done, reclaim, drain
    const teardownPass = (): void => {
      if (pt !== null && !pt.isFreed) {
        const live0 = unreturned.length;
        try {
          if (vm !== null) {
            driver('cancelAll', () => vm!.queue.cancelAll());
            vm.vm.destroy();
          } else pt.free();
        } catch (e) {
          note('free', e, true);
          freeFailed(e);
        }
        if (!pt.isFreed) fail('free() did not free the page table');
        if (pt.stats().liveTables !== unreturned.length) violate('pt-count', `after free the page table counts ${pt.stats().liveTables} live tables, its errors reported ${unreturned.length} (${live0} before free)`);
        try {
          pt.iotlbSync();
        } catch (e) {
          note('iotlbSync after free', e, true);
        }
      }
      driver('flushDone', () => top.flushDone());
      for (const s of secureLayers) driver('reclaim', () => s.reclaim());
      driver('drain', () => drainAll(top));
    };
    teardownPass();
    // The fault fired once; the driver retries what was reported as not given back.
    inj.armed = false;
    retrying = true;
    for (const f of unreturned.splice(0)) {
      driver('retried free', () => ptAlloc.free(f.paddr, f.size, { kind: f.level === shape.startLevel ? 'pgd' : 'table', level: f.level, flush: COMPLETED_FLUSH }));
    }
    teardownPass();
    checkLedgers('after teardown');

    // ---- nothing leaked
    let left: string | null;
    let quarantined = 0;
    try {
      left = assertStackEmpty(stack);
      for (const l of stack.layers) if (l !== stack.system) quarantined += l.stats().quarantined;
    } catch (e) {
      left = `stats() threw ${describeErr(e)}`;
    }
    if (left !== null) violate('leak', `leak: ${left}`);
    if (stack.system.stats().outstanding > quarantined) violate('leak', `leak: the system allocator still has ${stack.system.stats().outstanding} bytes out, ${quarantined} are quarantined`);
    if (quarantined > 0 && !(plan !== null && plan.kind.startsWith('scm-') && inj.fired !== null)) violate('leak', `${quarantined} bytes quarantined although no secure call failed`);
    if (scm !== undefined) {
      const secureQ = secureLayers.reduce((n, s) => n + s.stats().quarantined, 0);
      if (scm.trackedPages * scm.pageSize !== secureQ) violate('donated', `the monitor still tracks ${scm.trackedPages} page(s) away from the host; ${secureQ} bytes are quarantined`);
      for (const rec of scm.log) inj.scmKinds.push(rec.src === 1n << BigInt(scm.hlos) ? 'assign' : 'unassign');
    }
    return out(violations.length > 0 ? violations.join('\n') : null, quarantined);
  } catch (e) {
    if (e instanceof RunFailure) return out([...violations, `${tag} ${e.message}`].join('\n'));
    return out([...violations, `${tag} harness error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`].join('\n'));
  }
}

// ---- campaigns ----------------------------------------------------------------------

/** The k to inject for each fault kind, from the clean run's call counts. */
export function faultPoints(clean: MatrixRun): Array<{ kind: FaultKind; ks: number[] }> {
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  return FAULT_KINDS.map((kind) => {
    const site = siteOf(kind);
    if (site !== 'scm') return { kind, ks: range(clean.calls[site]) };
    const want = kind.startsWith('scm-assign') ? 'assign' : 'unassign';
    return { kind, ks: clean.scmKinds.flatMap((k, i) => (k === want ? [i] : [])) };
  });
}

export interface CellResult {
  config: string;
  stack: MatrixStackName;
  regime: FlushRegime;
  /** Runs made per fault kind (0: the workload never reaches that site on this stack). */
  runs: Partial<Record<FaultKind, number>>;
  /** Sites reached by the clean run. */
  reached: Partial<Record<FaultKind, number>>;
  /** Runs in which the fault really fired. */
  fired: number;
  errors: Record<string, number>;
  failures: string[];
  /** Runs that broke a rule, per fault kind. */
  failing: Partial<Record<FaultKind, number>>;
}

/**
 * Does the matrix drive this stack on this configuration? VM_BIND stacks build strict-mode
 * tables over TTBR0 addresses only (the Vm's rule, as in the model-based fuzzer).
 */
export function cellApplies(cfg: FuzzConfig, stack: MatrixStackName, regime: FlushRegime = 'sync'): boolean {
  if (isMatrixBind(stack) && cfg.quirks.includes('ARM_TTBR1')) return false;
  // The Vm drives its own flushes (one flushDone per job), so VM_BIND stacks run synchronous
  // flush ops; a stack whose top reuses at once cannot take deferred ones (core refuses it).
  if (regime === 'deferred') return !isMatrixBind(stack) && reusesAfterFlush(stack);
  return true;
}

const afterFlush = new Map<MatrixStackName, boolean>();
function reusesAfterFlush(stack: MatrixStackName): boolean {
  let v = afterFlush.get(stack);
  if (v === undefined) {
    const caps = buildMatrixStack(stack, {}).allocator.caps;
    v = (caps.reuse ?? (caps.defersFree ? 'after-flush' : 'immediate')) === 'after-flush';
    afterFlush.set(stack, v);
  }
  return v;
}

/**
 * One cell: the clean run, then each fault kind at each k (every k, or at most `sample`
 * of them chosen with the seed, always including the first and the last).
 */
export function matrixCell(cfg: FuzzConfig, stack: MatrixStackName, opts: { sample?: number; seed?: number; regime?: FlushRegime } = {}): CellResult {
  const seed = opts.seed ?? 1;
  const run = { seed, regime: opts.regime ?? 'sync' } as const;
  const res: CellResult = { config: cfg.name, stack, regime: run.regime, runs: {}, reached: {}, fired: 0, errors: {}, failures: [], failing: {} };
  const clean = runMatrix(cfg, stack, null, run);
  if (clean.failure !== null) {
    res.failures.push(`clean run: ${clean.failure}`);
    return res;
  }
  // Without a fault nothing throws, except donate mode's refused maps (a typed access violation).
  const thrown = Object.entries(clean.errors).filter(([n]) => !(stack.includes('donate') && n === 'AllocatorMisuseError'));
  if (thrown.length > 0) {
    res.failures.push(`clean run: threw ${thrown.map(([n, c]) => `${c} ${n}`).join(', ')}`);
    return res;
  }
  const r = rng(nameHash(`${cfg.name}/${stack}`) ^ seed);
  for (const { kind, ks } of faultPoints(clean)) {
    res.reached[kind] = ks.length;
    let chosen = ks;
    if (opts.sample !== undefined && ks.length > opts.sample) {
      const keep = new Set([ks[0]!, ks[ks.length - 1]!]);
      while (keep.size < opts.sample) keep.add(ks[Math.floor(r() * ks.length)]!);
      chosen = [...keep].sort((a, b) => a - b);
    }
    res.runs[kind] = chosen.length;
    for (const k of chosen) {
      const one = runMatrix(cfg, stack, { kind, k }, run);
      if (one.fired !== null) res.fired++;
      for (const [n, c] of Object.entries(one.errors)) res.errors[n] = (res.errors[n] ?? 0) + c;
      if (one.fired === null) res.failures.push(`${kind} #${k}: the fault never fired (the clean run reached it)`);
      if (one.failure !== null) {
        res.failures.push(one.failure);
        res.failing[kind] = (res.failing[kind] ?? 0) + 1;
      }
    }
  }
  return res;
}
