/**
 * Secure-share group (requirements 22-26 of the allocator-users spec), modelled on
 * Qualcomm's secure page tables: table pages are assigned through the secure monitor to
 * [HLOS: RW, VMID: R] before use, only from a blocking context; the run phase takes
 * already-assigned pages from a per-VMID pool with no monitor call; freed pages go back
 * to the host (or stay pooled for the same VMID) after the flush; a failed reassignment
 * quarantines the page for good. Runs only with `options.secureShare`.
 */
import { AllocatorFaultError, AllocatorMisuseError, accountedBytes, type AllocCtx, type AllocatorStats, type TableAllocator } from '@io-pgtable/allocator-api';
import { selectConfigs, type TableConfig } from '../configs.js';
import { ConformanceFailure, asFailure, check, fail } from '../failure.js';
import { ContractChecker, Harness, type Vm } from '../harness.js';
import type { AllocatorFactory, ConformanceOptions, PageOwnership, SecureShareAdapter } from '../options.js';
import { paFor, spans, standardScenario, type ScenarioOp } from '../scenario.js';
import type { ConformanceCheck } from './group.js';

/** The driver's VM_BIND prepare step: may sleep, so the plugin may assign pages. */
const PREPARE_CTX: AllocCtx = Object.freeze({ mayBlock: true, phase: 'prepare' });
/** The run phase: atomic and in the fence-signalling path, no monitor call allowed. */
const RUN_CTX: AllocCtx = Object.freeze({ mayBlock: false, phase: 'run' });
/** Ownership is tracked per CPU page; tables smaller than a page share their page's owner. */
const CPU_PAGE = 4096;

const hex = (n: number) => '0x' + n.toString(16);

interface Context {
  readonly vmid: number;
  readonly allocator: TableAllocator;
  readonly checker: ContractChecker;
}

/** A harness with one checked allocator per VMID, all over the same backing store and monitor. */
class ShareWorld<A extends TableAllocator> {
  readonly h: Harness<A>;
  readonly ad: SecureShareAdapter<A>;
  readonly contexts = new Map<number, Context>();
  /** Blocks (base -> size) quarantined by a failed reassignment: never handed out or released again. */
  readonly quarantine = new Map<number, number>();
  /** The first bad release to the backing store, reported after the operation that made it. */
  private badRelease: string | null = null;

  constructor(factory: AllocatorFactory<A>, readonly options: ConformanceOptions<A>) {
    this.ad = options.secureShare!;
    this.h = new Harness(factory, options);
    this.h.backing.onRelease = (p, size) => this.onRelease(p, size);
  }

  get hlos(): number {
    return this.ad.hlos;
  }

  ownership(p: number): PageOwnership {
    return this.ad.ownership(this.h.instance, p);
  }

  describe(o: PageOwnership): string {
    return `[${o.owners.map((v) => `${v === this.hlos ? 'HLOS ' : ''}${v}: ${o.perms[v] ?? '?'}`).join(', ')}]`;
  }

  hostOnly(o: PageOwnership): boolean {
    return o.owners.length === 1 && o.owners[0] === this.hlos;
  }

  shared(o: PageOwnership, vmid: number): boolean {
    const want = [this.hlos, vmid].sort((x, y) => x - y);
    const got = [...o.owners].sort((x, y) => x - y);
    return got.length === 2 && got[0] === want[0] && got[1] === want[1] && o.perms[this.hlos] === 'rw' && o.perms[vmid] === 'r';
  }

  private onRelease(p: number, size: number): void {
    if (this.badRelease !== null) return;
    if (this.quarantined(p, size)) {
      this.badRelease = `block ${hex(p)} was quarantined by a failed reassignment but was released to the backing store`;
      return;
    }
    for (let q = p - (p % CPU_PAGE); q < p + size; q += CPU_PAGE) {
      const o = this.ownership(q);
      if (!this.hostOnly(o)) {
        this.badRelease = `page ${hex(q)} was released to the backing store while owned by ${this.describe(o)}: it must be reassigned to HLOS alone first`;
        return;
      }
    }
  }

  quarantined(p: number, size: number): boolean {
    for (const [q, qs] of this.quarantine) if (p < q + qs && q < p + size) return true;
    return false;
  }

  /** Each distinct allocator once (a plugin may serve several VMIDs from one), with its checkers. */
  allocators(): Array<{ allocator: TableAllocator; checkers: ContractChecker[] }> {
    const out = new Map<TableAllocator, ContractChecker[]>([[this.h.instance, []]]);
    for (const c of this.contexts.values()) {
      const list = out.get(c.allocator) ?? [];
      if (!list.includes(c.checker)) list.push(c.checker);
      out.set(c.allocator, list);
    }
    return [...out].map(([allocator, checkers]) => ({ allocator, checkers: checkers.length > 0 ? checkers : [this.h.top] }));
  }

  context(vmid: number): Context {
    let c = this.contexts.get(vmid);
    if (c === undefined) {
      const allocator = this.ad.forVmid(this.h.instance, vmid);
      const checker = allocator === this.h.instance ? this.h.top : new ContractChecker(allocator, this.h.memory, this.h.backing);
      c = { vmid, allocator, checker };
      this.contexts.set(vmid, c);
    }
    return c;
  }

  vm(config: TableConfig, vmid: number): Vm {
    const c = this.context(vmid);
    c.checker.limit = Math.min(c.checker.limit, 2 ** config.cfg.oas);
    const vm = this.h.createVm(config, c.checker);
    if (vm === null) fail('caps', `${config.label}: PGD allocation for VMID ${vmid} failed with a healthy backing store`);
    return vm;
  }

  /** Ownership of every live table, every context; releases; accounting across contexts. */
  check(where: string): void {
    if (this.badRelease !== null) fail('ownership', `${where}: ${this.badRelease}`);
    const pageOwner = new Map<number, number>();
    for (const c of this.contexts.values()) {
      for (const [p, t] of c.checker.live) {
        if (this.quarantined(p, t.size)) fail('ownership', `${where}: a table for VMID ${c.vmid} at ${hex(p)} lies in a quarantined page: it was handed out again`);
        for (let q = p - (p % CPU_PAGE); q < p + t.size; q += CPU_PAGE) {
          const other = pageOwner.get(q);
          if (other !== undefined && other !== c.vmid) fail('vmid-mismatch', `${where}: page ${hex(q)} holds tables for VMID ${other} and VMID ${c.vmid}`);
          pageOwner.set(q, c.vmid);
          const o = this.ownership(q);
          if (this.shared(o, c.vmid)) continue;
          const foreign = o.owners.find((v) => v !== this.hlos && v !== c.vmid);
          if (foreign !== undefined) fail('vmid-mismatch', `${where}: a table for VMID ${c.vmid} at ${hex(p)} is in page ${hex(q)} owned by ${this.describe(o)}: a page of VMID ${foreign} was handed over without unassign and reassign`);
          fail('ownership', `${where}: a live table for VMID ${c.vmid} at ${hex(p)} is in page ${hex(q)} owned by ${this.describe(o)}, expected [HLOS ${this.hlos}: rw, ${c.vmid}: r]`);
        }
      }
    }
    this.accounting(where);
  }

  /** The identity for every context, and together they hold what the backing store handed out. */
  accounting(where: string): AllocatorStats[] {
    const all: AllocatorStats[] = [];
    let outstanding = 0;
    for (const { allocator, checkers } of this.allocators()) {
      const name = allocator.caps.name;
      let s: AllocatorStats;
      try {
        s = allocator.stats();
      } catch (e) {
        throw asFailure(e, `${where}: stats() of ${name}`);
      }
      const sum = accountedBytes(s);
      const tables = checkers.reduce((n, c) => n + c.live.size, 0);
      check(s.outstanding === sum, 'accounting', () => `${where}: ${name}: outstanding ${s.outstanding} != live + cached + reserved + pendingFlush + quarantined (${sum})`);
      check(s.liveTables === tables, 'accounting', () => `${where}: ${name}: stats().liveTables is ${s.liveTables} but its page tables hold ${tables}`);
      outstanding += s.outstanding;
      all.push(s);
    }
    if (this.options.crossLayer !== false && this.h.backing.calls > 0) {
      check(outstanding === this.h.backing.heldBytes, 'accounting', () => `${where}: the contexts report ${outstanding} bytes outstanding but hold ${this.h.backing.heldBytes} bytes from the backing store`);
    }
    return all;
  }

  /** The driver's flush: invalidate every IOMMU, then flushDone() on every context. */
  flush(): void {
    for (const vm of this.h.vms) vm.iommu.invalidateAll();
    try {
      for (const { allocator } of this.allocators()) allocator.flushDone();
    } catch (e) {
      throw asFailure(e, 'flushDone()');
    }
  }

  drain(): void {
    try {
      for (const { allocator } of this.allocators()) allocator.drain?.();
    } catch (e) {
      throw asFailure(e, 'drain()');
    }
  }

  /** Map and unmap `ops` with `ctx`, checking after every operation. */
  scenario(vm: Vm, ops: readonly ScenarioOp[], ctx: AllocCtx, where: string): void {
    for (const [i, op] of ops.entries()) {
      if (op.kind === 'map') {
        if (this.h.mapNow(vm, op.iova, paFor(op.iova), op.pgsize, op.count, ctx) === 'ENOMEM') {
          fail('caps', `${where}, op ${i}: a map in a blocking context failed with a healthy backing store and monitor`);
        }
      } else if (vm.maps.some((m) => m.iova < op.iova + op.size && op.iova < m.iova + m.size)) {
        this.h.unmap(vm, op.iova, op.size, op.pgsize);
      }
      this.check(`${where}, op ${i} (${op.kind} ${hex(op.iova)})`);
    }
  }

  teardown(): void {
    try {
      for (const vm of this.h.vms) if (!vm.pt.isFreed) vm.pt.free();
      this.flush();
      this.drain();
      this.options.teardown?.(this.h.instance, this.h.env);
    } catch (e) {
      throw asFailure(e, 'teardown');
    }
    this.check('after teardown and drain');
    let quarantined = 0;
    for (const [i, s] of this.accounting('after teardown and drain').entries()) {
      check(s.live === 0 && s.liveTables === 0 && s.cached === 0 && s.reserved === 0 && s.pendingFlush === 0 && s.outstanding === s.quarantined, 'accounting', () =>
        `after teardown and drain context ${i} still holds ${s.outstanding - s.quarantined} bytes outside quarantine (live ${s.live}, cached ${s.cached}, pendingFlush ${s.pendingFlush})`,
      );
      quarantined += s.quarantined;
    }
    if (this.h.backing.calls > 0) {
      check(this.h.backing.heldBytes === quarantined, 'accounting', () => `after teardown and drain ${this.h.backing.heldBytes - quarantined} bytes of backing memory were never given back (leak)`);
    }
    this.h.backing.onRelease = null;
    for (const vm of this.h.vms) vm.iommu.dispose();
  }
}

/** Three leaf tables in windows the standard scenario does not use. */
function runPattern(vm: Vm): ScenarioOp[] {
  const { G, B2 } = spans(vm);
  return [8, 9, 10].map((w) => ({ kind: 'map', iova: w * B2, pgsize: G, count: 1 }) as const);
}

function ownershipCheck<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>, config: TableConfig): void {
  const S = new ShareWorld(factory, options);
  const vmid = S.ad.vmids[0]!;
  const vm = S.vm(config, vmid);
  const where = `${config.label}, VMID ${vmid}`;
  S.check(`${where}: after creating the page table`);
  S.scenario(vm, standardScenario(vm), PREPARE_CTX, `${where}, blocking`);
  S.flush();
  // Prefill as a VM_BIND prepare does: the run pattern's leaf tables, allocated and freed.
  const pattern = runPattern(vm);
  const { B2 } = spans(vm);
  S.scenario(vm, [...pattern, ...pattern.map((m) => ({ kind: 'unmap', iova: m.iova, size: B2, pgsize: B2 }) as const)], PREPARE_CTX, `${where}, prefill`);
  S.flush();
  S.check(`${where}: after prefill and flushDone()`);
  const c = S.context(vmid);
  const pooled = c.allocator.stats().cached;
  const smc = S.ad.smcCalls(S.h.instance);
  const b = S.h.backing;
  const calls = b.calls;
  b.inRun = true;
  let refused = -1;
  try {
    for (const [i, op] of pattern.entries()) {
      if (op.kind === 'map' && S.h.mapNow(vm, op.iova, paFor(op.iova), op.pgsize, op.count, RUN_CTX) === 'ENOMEM' && refused < 0) refused = i;
    }
  } finally {
    b.inRun = false;
  }
  const made = S.ad.smcCalls(S.h.instance) - smc;
  check(made === 0 && b.calls === calls, 'run-phase-backing-call', () =>
    `${where}: maps in the run phase (ctx ${JSON.stringify(RUN_CTX)}) made ${made} secure monitor calls and ${b.calls - calls} backing allocations; the run phase may only take assigned pages from the VMID's pool`,
  );
  if (refused >= 0) {
    check(pooled < 3 * config.granule, 'run-phase-backing-call', () =>
      `${where}: run-phase map ${refused} failed with ENOMEM although ${pooled} bytes of assigned pages were pooled after the prefill: the run phase must be served from the pool`,
    );
  }
  S.check(`${where}: after run-phase maps`);
  S.h.verifyTranslations(vm);
  S.teardown();
}

function freeCheck<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>, config: TableConfig): void {
  const S = new ShareWorld(factory, options);
  const vmid = S.ad.vmids[0]!;
  const where = `${config.label}, VMID ${vmid}`;
  const vm = S.vm(config, vmid);
  const c = S.context(vmid);
  const used = new Map<number, number>();
  const remember = () => {
    for (const [p, t] of c.checker.live) used.set(p, t.size);
  };
  remember();
  // free() runs in the unmap path: it may only queue, never call the monitor (requirement 17).
  const inline = (what: string, fn: () => void) => {
    const before = S.ad.smcCalls(S.h.instance);
    fn();
    const made = S.ad.smcCalls(S.h.instance) - before;
    check(made === 0, 'run-phase-backing-call', () => `${where}: ${what} made ${made} secure monitor calls; freeing a table may only queue it until the flush`);
  };
  for (const [i, op] of standardScenario(vm).entries()) {
    if (op.kind === 'map') S.scenario(vm, [op], PREPARE_CTX, `${where}, op ${i}`);
    else inline(`op ${i} (an unmap that frees tables)`, () => S.scenario(vm, [op], PREPARE_CTX, `${where}, op ${i}`));
    remember();
  }
  inline('freeing the page table', () => vm.pt.free());
  // The reassignment on free (at flushDone() or drain(), as the plugin chooses) fails once.
  S.ad.failNextAssigns(S.h.instance, 1);
  const smc = S.ad.smcCalls(S.h.instance);
  S.flush();
  S.check(`${where}: after freeing the page table and flushDone()`);
  for (const [p, size] of used) {
    for (let q = p - (p % CPU_PAGE); q < p + size; q += CPU_PAGE) {
      const o = S.ownership(q);
      check(S.hostOnly(o) || S.shared(o, vmid), 'ownership', () =>
        `${where}: after free and flushDone() page ${hex(q)} of a freed table is owned by ${S.describe(o)}; it must be HLOS's alone or still [HLOS: rw, ${vmid}: r] in the VMID's pool`,
      );
    }
  }
  S.drain();
  S.check(`${where}: after drain() with a failing reassignment`);
  check(S.ad.smcCalls(S.h.instance) > smc, 'ownership', () => `${where}: freeing every table, flushDone() and drain() made no reassignment call`);
  const quarantined = S.accounting(`${where}: after drain()`).reduce((n, s) => n + s.quarantined, 0);
  check(quarantined > 0, 'ownership', () => `${where}: the reassignment on free failed but stats().quarantined is 0: the page must be quarantined and counted`);
  check(S.h.backing.heldBytes === quarantined, 'ownership', () =>
    `${where}: with every table freed, flushed and drained the allocator holds ${S.h.backing.heldBytes} bytes from the backing store but counts ${quarantined} quarantined`,
  );
  for (const [p, size] of S.h.backing.held) S.quarantine.set(p, size);
  // Quarantined pages are never handed out again, and never released (checked at teardown).
  const vm2 = S.vm(config, vmid);
  S.scenario(vm2, standardScenario(vm2), PREPARE_CTX, `${where}, after quarantine`);
  S.scenario(vm2, runPattern(vm2), PREPARE_CTX, `${where}, after quarantine`);
  S.teardown();
}

function isViolation(e: unknown): boolean {
  return (e instanceof ConformanceFailure || e instanceof AllocatorMisuseError || e instanceof AllocatorFaultError) && e.rule === 'access-violation';
}

function donateCheck<A extends TableAllocator>(options: ConformanceOptions<A>, donating: (env: Parameters<AllocatorFactory<A>>[0]) => A, config: TableConfig): void {
  const ad = options.secureShare!;
  const h = new Harness(donating, { ...options, reservation: undefined });
  const before = ad.violations?.(h.instance) ?? 0;
  let thrown = false;
  let vm: Vm | null = null;
  try {
    // Creating the table and mapping into it writes descriptors into donated pages.
    vm = h.createVm(config);
    if (vm !== null) h.mapNow(vm, 0, paFor(0), config.granule, 1, PREPARE_CTX);
  } catch (e) {
    if (!isViolation(e)) throw e;
    thrown = true;
  }
  const counted = (ad.violations?.(h.instance) ?? 0) - before;
  try {
    check(thrown || counted > 0, 'access-violation', () =>
      `${config.label}: with the donating configuration the page-table code wrote descriptors into pages HLOS no longer owns, and neither violations() grew nor an AllocatorMisuseError 'access-violation' was thrown`,
    );
    if (vm !== null && !thrown) {
      const o = ad.ownership(h.instance, vm.pt.pgd);
      check(!o.owners.includes(ad.hlos), 'ownership', () => `${config.label}: the donating configuration left HLOS an owner of the PGD page`);
    }
  } finally {
    // The page-table code faulted part-way: the tree is not torn down, only the IOMMUs.
    for (const v of h.vms) v.iommu.dispose();
  }
}

function vmidCheck<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>, config: TableConfig): void {
  const S = new ShareWorld(factory, options);
  const [a, b] = S.ad.vmids as [number, number];
  // Round 1: A's tables are freed into A's pool; B then builds its tables. Round 2: the other way round.
  for (const [first, second] of [
    [a, b],
    [b, a],
  ] as const) {
    const v1 = S.vm(config, first);
    S.scenario(v1, [...standardScenario(v1), ...runPattern(v1)], PREPARE_CTX, `${config.label}, VMID ${first}`);
    const keep = S.vm(config, first); // stays live while the other VMID allocates
    S.scenario(keep, runPattern(keep), PREPARE_CTX, `${config.label}, VMID ${first} (kept)`);
    v1.pt.free();
    S.flush();
    S.check(`${config.label}: VMID ${first}'s page table freed and flushed`);
    const v2 = S.vm(config, second);
    S.scenario(v2, [...standardScenario(v2), ...runPattern(v2)], PREPARE_CTX, `${config.label}, VMID ${second} after VMID ${first} freed its tables`);
    v2.pt.free();
    keep.pt.free();
    S.flush();
  }
  S.teardown();
}

export function secureShareChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  const ad = options.secureShare;
  if (ad === undefined) return [];
  const configs = selectConfigs(options);
  const first = configs[0];
  if (first === undefined) return [];
  if (ad.vmids.length < 2) throw new Error('[iopgt] [conformance] options.secureShare.vmids needs at least two VMIDs (requirement 26)');
  const checks: ConformanceCheck[] = configs.map((config) => ({
    title: `${config.label}: ownership: every live table page is [HLOS: rw, VMID: r]; after prefill, run-phase maps make no monitor or backing call`,
    run: () => ownershipCheck(factory, options, config),
  }));
  checks.push(
    {
      title: 'ownership: freed tables return to HLOS alone or stay pooled for their VMID; a failed reassignment quarantines the page for good, counted',
      run: () => freeCheck(factory, options, first),
    },
    ...configs.map((config) => ({
      title: `${config.label}: vmid-mismatch: a page assigned to one VMID is never handed to a table shared with another`,
      run: () => vmidCheck(factory, options, config),
    })),
  );
  const donating = ad.donating;
  if (donating !== undefined) {
    checks.push({
      title: 'access-violation: with the donating configuration CPU writes by the page-table code are reported',
      run: () => donateCheck(options, (env) => donating(env), first),
    });
  }
  return checks;
}
