/**
 * One test's world: fresh physical memory, a probed backing allocator, the allocator
 * under test, a contract checker between it and the page tables, and an IOMMU model per
 * page table. Every group builds on this, so every rule is checked the same way.
 */
import {
  AllocatorMisuseError,
  accountedBytes,
  assertAccounting,
  COMPLETED_FLUSH,
  checkAllocation,
  isFlushed,
  isPaddr,
  type AllocCtx,
  type AllocatorCaps,
  type AllocatorStats,
  type FlushToken,
  type FreeCtx,
  type Paddr,
  type ReusePolicy,
  type TableAllocator,
  type TableKind,
} from '@io-pgtable/allocator-api';
import {
  IotlbGather,
  PhysMemory,
  TableRegistry,
  allocIoPgtableOps,
  createSystemAllocator,
  hw,
  type PageTable,
  type SystemAllocator,
} from '@io-pgtable/core';
import type { TableConfig } from './configs.js';
import { asFailure, check, fail } from './failure.js';
import type { ConformanceEnv, ConformanceOptions } from './options.js';

/**
 * Byte written over every table the page table frees, once the flush covering the free
 * has completed (before that the device may still walk it, so the harness leaves it as
 * the page table left it), so recycled memory that is not re-zeroed shows.
 */
export const POISON = 0xa5;

/**
 * The two flush regimes a page table can declare (`FlushOps.deferred`), and what the
 * IOMMU model does in each:
 *  - `sync`: `tlb_flush_walk` / `tlb_flush_all` complete the invalidation before
 *    returning (arm-smmu), so every table is freed under a token that is already done;
 *  - `deferred`: they are no-ops (Panthor) and the flush completes at `pt.iotlbSync`,
 *    which invalidates the whole context and then calls `flushDone(token)`.
 */
export type FlushRegime = 'sync' | 'deferred';

export const REGIMES: Readonly<Record<FlushRegime, { readonly label: string; readonly behaviour: hw.FlushBehaviour }>> = Object.freeze({
  sync: { label: 'synchronous flush (tlb_flush_walk completes; arm-smmu)', behaviour: {} },
  deferred: { label: 'deferred flush (no-op tlb_flush_walk, flush at iotlbSync; Panthor)', behaviour: { flushAll: false, flushWalk: false, deferred: true } },
});

/** When an allocator says it may reuse a freed page: `caps.reuse`, or what the v1 `defersFree` implied. */
export function reuseOf(caps: AllocatorCaps): ReusePolicy {
  return caps.reuse ?? (caps.defersFree ? 'after-flush' : 'immediate');
}

/** The regimes an allocator is safe under, by its claim: `immediate` reuse needs the synchronous one. */
export function safeRegimes(caps: AllocatorCaps): FlushRegime[] {
  return reuseOf(caps) === 'immediate' ? ['sync'] : ['sync', 'deferred'];
}

/**
 * The capabilities an allocator declares, read from one throwaway instance (the suite
 * names checks by the regimes the claim makes safe before any check runs).
 */
export function probeCaps<A extends TableAllocator>(factory: (env: ConformanceEnv) => A): AllocatorCaps {
  const memory = new PhysMemory();
  const caps = factory(Object.freeze({ backing: new BackingProbe(memory), memory })).caps;
  return caps;
}

/** A token the harness completes itself, for frees it makes directly (not through a page table). Ids stay clear of the core's. */
class HarnessToken implements FlushToken {
  private static next = 2 ** 40;
  readonly id = HarnessToken.next++;
  done = false;
}
const RW = 3; // IOMMU_READ | IOMMU_WRITE
const MIN_BLOCK = 64;
const MAX_BLOCK = 1 << 20;

/**
 * The backing store the suite gives a plugin: a core system allocator (64-byte blocks, so
 * byte counts match exactly) that counts calls, can fail the k-th call, and records which
 * blocks the plugin holds.
 */
export class BackingProbe implements TableAllocator {
  readonly system: SystemAllocator;
  readonly held = new Map<Paddr, number>();
  heldBytes = 0;
  /** alloc calls so far, and those made while a reservation ran. */
  calls = 0;
  /** alloc calls that returned null (injected or real). */
  failures = 0;
  runCalls = 0;
  inRun = false;
  /** 0-based index of the alloc call that fails (returns null); -1 for none. */
  failAt = -1;
  /** Called when the plugin gives a block back (the flush-ordering group watches it). */
  onRelease: ((paddr: Paddr, size: number) => void) | null = null;

  constructor(readonly memory: PhysMemory) {
    this.system = createSystemAllocator({ memory, minBlock: MIN_BLOCK, name: 'conformance-backing' });
  }
  get caps() {
    return this.system.caps;
  }
  alloc(size: number, ctx: AllocCtx): Paddr | null {
    const n = this.calls++;
    if (this.inRun) this.runCalls++;
    if (n === this.failAt) {
      this.failures++;
      return null;
    }
    const p = this.system.alloc(size, ctx);
    if (p === null) this.failures++;
    if (p !== null) {
      this.held.set(p, size);
      this.heldBytes += size;
    }
    return p;
  }
  free(paddr: Paddr, size: number, ctx?: FreeCtx): void {
    this.system.free(paddr, size, ctx);
    const held = this.held.get(paddr);
    if (held !== undefined) {
      this.held.delete(paddr);
      this.heldBytes -= held;
    }
    this.onRelease?.(paddr, held ?? size);
  }
  flushDone(): void {}
  stats(): AllocatorStats {
    return this.system.stats();
  }
  /** The held block containing `[p, p + size)`, if any. */
  covering(p: Paddr, size: number): number | undefined {
    for (let s = MIN_BLOCK; s <= MAX_BLOCK; s *= 2) {
      const base = p - (p % s);
      const hs = this.held.get(base);
      if (hs !== undefined && p + size <= base + hs) return base;
    }
    return undefined;
  }
}

interface LiveTable {
  readonly size: number;
  readonly kind: TableKind;
  readonly level: number;
}

/** A freed table whose covering flush has not completed: poisoned, and no longer owed by the allocator as pending, once it has. */
interface Freed {
  readonly size: number;
  readonly token: FlushToken;
}

/**
 * Sits between the page tables and the allocator under test and checks every answer
 * independently of the core: zeroed, aligned, in range (the shared `checkAllocation`),
 * inside memory the plugin holds, not overlapping a live table, no throw, no `null` from
 * an allocator that declares `mayFail: false` over a healthy backing store. Frees poison
 * the table once the flush covering them has completed.
 */
export class ContractChecker implements TableAllocator {
  readonly live = new Map<Paddr, LiveTable>();
  liveBytes = 0;
  /** Tables handed out so far (successful allocations). */
  allocs = 0;
  private readonly registry = new TableRegistry();
  poison = true;
  /** Largest output address any page table accepts (min over the page tables in use). */
  limit = 2 ** 52;
  /** Frees waiting for their flush, in free order: what the allocator must count as pendingFlush until given back. */
  readonly freed = new Map<Paddr, Freed>();
  /** The ctx of a free made directly (not by a page table): set by the harness. */
  directCtx: () => FreeCtx = () => ({ kind: 'table', level: 3, flush: { id: 0, done: true } });

  constructor(
    readonly inner: TableAllocator,
    readonly memory: PhysMemory,
    private readonly backing: BackingProbe,
  ) {}
  get caps() {
    return this.inner.caps;
  }
  private get name(): string {
    return this.inner.caps.name;
  }

  alloc(size: number, ctx: AllocCtx): Paddr | null {
    let p: Paddr | null;
    try {
      p = this.inner.alloc(size, ctx);
    } catch (e) {
      if (e instanceof AllocatorMisuseError && e.rule !== 'no-throw') throw asFailure(e, `alloc(${size})`);
      fail('no-throw', `${this.name}.alloc(${size}) threw instead of returning null: ${(e as Error).message ?? e}`, e);
    }
    if (p === null) {
      if (!this.inner.caps.mayFail && this.backing.failures === 0) {
        fail('caps', `${this.name}.alloc(${size}) returned null after ${this.backing.calls} backing calls, none of which failed, but caps.mayFail is false`);
      }
      return null;
    }
    const at = () => `${this.name}.alloc(${size}) returned 0x${p!.toString(16)}`;
    // A block the plugin does not hold is reported first (as `size`) when the address is
    // otherwise plausible; then the shared allocation checks, in their order.
    if (this.backing.held.size > 0 && isPaddr(p) && p + size <= this.limit) {
      check(this.backing.covering(p, size) !== undefined, 'size', () => `${at()}, but no block of ${size} bytes the allocator holds from its backing store contains it`);
    }
    const memory = this.memory;
    const bad = checkAllocation(p, size, { limit: this.limit, overlaps: (q, n) => this.registry.overlaps(q, n), isZero: (q, n) => memory.isZero(q, n) });
    if (bad !== null) fail(bad.rule, `${at()}: ${bad.detail}${bad.rule === 'no-overlap' ? ' (handed out twice)' : bad.rule === 'zeroed' ? ' (recycled without zeroing?)' : ''}`);
    this.registry.add(p, size);
    this.live.set(p, { size, kind: ctx.kind ?? 'table', level: ctx.level ?? 3 });
    this.freed.delete(p);
    this.liveBytes += size;
    this.allocs++;
    return p;
  }

  free(paddr: Paddr, size: number, ctx?: FreeCtx): void {
    const t = this.live.get(paddr);
    if (t === undefined) throw new Error(`[iopgt] [conformance] the page table freed 0x${paddr.toString(16)}, which it never allocated`);
    const fctx = ctx ?? this.directCtx();
    if (isFlushed(fctx)) {
      if (this.poison) this.memory.fill(paddr, t.size, POISON, 'pgtable');
    } else this.freed.set(paddr, { size: t.size, token: fctx.flush });
    this.registry.remove(paddr, t.size);
    this.live.delete(paddr);
    this.liveBytes -= t.size;
    try {
      this.inner.free(paddr, size, fctx);
    } catch (e) {
      const rule = e instanceof AllocatorMisuseError ? e.rule : 'no-throw';
      fail(rule, `${this.name}.free(0x${paddr.toString(16)}, ${size}) of a table allocated as ${t.size} bytes threw: ${(e as Error).message ?? e}`, e);
    }
  }
  flushDone(token?: FlushToken): void {
    // The flush completed: poison what it covers before the allocator may recycle it.
    for (const [p, f] of this.freed) {
      if (token !== undefined && f.token !== token && f.token.id !== token.id && !f.token.done) continue;
      this.freed.delete(p);
      if (this.poison && !this.live.has(p)) this.memory.fill(p, f.size, POISON, 'pgtable');
    }
    this.inner.flushDone(token);
  }
  /** Bytes of freed tables whose flush is pending and that the allocator has not given back to the backing store. */
  pendingHeld(): number {
    // An allocator that may reuse at once owes nothing as pending (it is only paired with
    // synchronous flushes); a leaf allocator that ignores the backing store holds all.
    if (reuseOf(this.inner.caps) === 'immediate') return 0;
    let n = 0;
    for (const [p, f] of this.freed) {
      if (f.token.done) continue;
      if (this.backing.calls === 0 || this.backing.covering(p, f.size) !== undefined) n += f.size;
    }
    return n;
  }
  stats(): AllocatorStats {
    return this.inner.stats();
  }
}

/** A mapping the suite made: the oracle the tables are checked against. */
export interface Mapping {
  readonly iova: number;
  readonly pa: number;
  readonly size: number;
}

/** One page table (one VM), its IOMMU context and its oracle. */
export interface Vm {
  readonly pt: PageTable;
  readonly iommu: hw.Iommu;
  readonly config: TableConfig;
  maps: Mapping[];
}

export interface HarnessSettings {
  /** Flush regime of the page tables (default `sync`). */
  readonly regime?: FlushRegime;
  /** Override the IOMMU model's flush behaviour (default: the regime's). */
  readonly flush?: hw.FlushBehaviour;
  /** Poison freed tables once their flush completed (default true). */
  readonly poison?: boolean;
  /** Watch memory writes into freed tables (default true: the free window and the walk cache). */
  readonly watchMemory?: boolean;
  /** Walk-cache entries of each IOMMU (default 1024: remember every table pointer). */
  readonly walkCacheEntries?: number;
}

/** Findings of the IOMMU model that carry a rule: each one fails the check. */
const RULED = (f: hw.Finding): boolean => f.rule !== undefined;

export class Harness<A extends TableAllocator = TableAllocator> {
  readonly memory = new PhysMemory();
  readonly backing = new BackingProbe(this.memory);
  readonly env: ConformanceEnv;
  readonly instance: A;
  readonly top: ContractChecker;
  readonly generations: hw.TableGenerations = new hw.TableGenerations();
  readonly vms: Vm[] = [];
  readonly regime: FlushRegime;
  private readonly unwatch: () => void;
  private direct = new HarnessToken();
  /** Spy state: backing calls and the plugin's backingCalls at the last quiescent point. */
  private lastCalls = 0;
  private lastBackingCalls = 0;

  constructor(
    factory: (env: ConformanceEnv) => A,
    readonly options: ConformanceOptions<A>,
    readonly settings: HarnessSettings = {},
  ) {
    this.env = Object.freeze({ backing: this.backing, memory: this.memory });
    this.instance = factory(this.env);
    this.regime = settings.regime ?? 'sync';
    this.top = new ContractChecker(this.instance, this.memory, this.backing);
    this.top.poison = settings.poison ?? true;
    // Frees the suite makes itself follow the regime: under a completed flush in the
    // synchronous one, under a token completed by the next flush() in the deferred one.
    this.top.directCtx = () => ({ kind: 'table', level: 3, flush: this.regime === 'sync' ? COMPLETED_FLUSH : this.direct });
    this.unwatch = settings.watchMemory === false ? () => {} : this.generations.watch(this.memory);
    // Pages the plugin gives back to the backing store are checked against the free windows.
    this.backing.onRelease = (p, size) => {
      this.generations.released('returned to the backing store', p, size);
      for (const vm of this.vms) vm.iommu.noteMemoryChange('returned to the backing store', p, size);
    };
  }

  get name(): string {
    return this.instance.caps.name;
  }

  /** The flush ops for `regime` (or an explicit behaviour). */
  private flushBehaviour(flush: hw.FlushBehaviour | undefined): hw.FlushBehaviour {
    return flush ?? this.settings.flush ?? REGIMES[this.regime].behaviour;
  }

  /**
   * Create a page table over the allocator under test (through `allocIoPgtableOps`,
   * strict mode). Returns the result so a caller can check a refusal.
   */
  tryCreateVm(config: TableConfig, allocator: TableAllocator = this.top, flush?: hw.FlushBehaviour): { vm: Vm } | { code: string; reason: string } {
    const iommu = new hw.Iommu({
      memory: this.memory,
      generations: this.generations,
      tlb: { entries: 64 },
      walkCache: { entries: this.settings.walkCacheEntries ?? 1024 },
      // Its own guard: writes into freed tables the walk cache still points to.
      watchMemory: this.settings.watchMemory ?? true,
    });
    this.top.limit = Math.min(this.top.limit, 2 ** config.cfg.oas);
    let r;
    try {
      r = allocIoPgtableOps(config.format, config.cfg, {
        allocator: this.generations.observe(allocator),
        memory: this.memory,
        tlb: iommu.flushOps(this.flushBehaviour(flush)),
      });
    } catch (e) {
      iommu.dispose();
      throw asFailure(e, `creating a ${config.label} page table`);
    }
    if (!r.ok) {
      iommu.dispose();
      return { code: r.code, reason: r.reason };
    }
    iommu.attach(r.table.cfg);
    const vm: Vm = { pt: r.table, iommu, config, maps: [] };
    this.vms.push(vm);
    return { vm };
  }

  /** Create a page table over the allocator under test; null when the PGD allocation failed. */
  createVm(config: TableConfig, allocator: TableAllocator = this.top, flush?: hw.FlushBehaviour): Vm | null {
    const r = this.tryCreateVm(config, allocator, flush);
    if ('vm' in r) return r.vm;
    if (r.code === 'ENOMEM') return null;
    throw new Error(`[iopgt] [conformance] ${config.label}: ${r.reason}`);
  }

  /**
   * Map `count` pages of `pgsize` as iommu_map does (loop on partial progress, undo on
   * failure). Through the reservation adapter when there is one. Returns the errno.
   */
  map(vm: Vm, iova: number, pa: number, pgsize: number, count = 1, ctx?: AllocCtx): 'ENOMEM' | null {
    const res = this.options.reservation;
    if (res === undefined) return this.mapNow(vm, iova, pa, pgsize, count, ctx);
    const handle = res.prepare(this.instance, {
      pageTable: vm.pt,
      ops: [{ kind: 'map', iova, size: pgsize * count, pgsize }],
      splitPolicy: 'forbid',
      merge: false,
    });
    if (handle === null) return 'ENOMEM';
    if (handle === 'wait') fail('admission', `a single ${pgsize * count}-byte job was told to wait with no other reservation outstanding`);
    try {
      this.backing.inRun = true;
      return handle.run(() => this.mapNow(vm, iova, pa, pgsize, count, ctx ?? { mayBlock: true, phase: 'run' }));
    } finally {
      this.backing.inRun = false;
      handle.release();
    }
  }

  /** The map itself, without a reservation. */
  mapNow(vm: Vm, iova: number, pa: number, pgsize: number, count: number, ctx?: AllocCtx): 'ENOMEM' | null {
    let done = 0;
    try {
      while (done < count) {
        const r = vm.pt.mapPages(iova + done * pgsize, pa + done * pgsize, pgsize, count - done, RW, ctx);
        done += r.mapped / pgsize;
        if (r.error === 'ENOMEM') {
          if (done > 0) this.unmap(vm, iova, done * pgsize, pgsize, false);
          return 'ENOMEM';
        }
        if (r.error !== undefined || r.mapped === 0) {
          throw new Error(`[iopgt] [conformance] ${vm.config.label}: map(0x${iova.toString(16)}, ${pgsize} x ${count}) failed: ${r.error} ${r.message ?? ''}`);
        }
      }
    } catch (e) {
      throw asFailure(e, `${vm.config.label}: map of 0x${iova.toString(16)}`);
    }
    vm.maps.push({ iova, pa, size: pgsize * count });
    return null;
  }

  /**
   * Unmap `[iova, iova + size)` with `pgsize` entries into `gather`. Without a gather of
   * the caller's, a fresh one is synced at once (`pt.iotlbSync`: the flush completes and
   * the allocator stack hears `flushDone(token)`); with one, the caller syncs it later.
   */
  unmap(vm: Vm, iova: number, size: number, pgsize: number, record = true, gather?: IotlbGather): void {
    const g = gather ?? new IotlbGather();
    try {
      let done = 0;
      while (done < size) {
        const r = vm.pt.unmapPages(iova + done, pgsize, (size - done) / pgsize, g);
        if (r.unmapped === 0) {
          throw new Error(`[iopgt] [conformance] ${vm.config.label}: unmap(0x${(iova + done).toString(16)}, ${pgsize}) failed: ${r.error} ${r.message ?? ''}`);
        }
        done += r.unmapped;
      }
    } catch (e) {
      throw asFailure(e, `${vm.config.label}: unmap of 0x${iova.toString(16)}`);
    }
    if (gather === undefined) this.sync(vm, g);
    if (record) vm.maps = vm.maps.filter((m) => m.iova + m.size <= iova || m.iova >= iova + size);
  }

  /** `pt.iotlbSync(gather)`: the flush completes; the allocator stack hears `flushDone(token)`. */
  sync(vm: Vm, gather?: IotlbGather): void {
    try {
      vm.pt.iotlbSync(gather);
    } catch (e) {
      throw asFailure(e, `${vm.config.label}: iotlbSync`);
    }
  }

  /**
   * The driver's flush: sync every page table's own gather (tables freed with no gather
   * of the caller's), then complete the token of the frees the suite made directly.
   */
  flush(): void {
    for (const vm of this.vms) this.sync(vm);
    const t = this.direct;
    this.direct = new HarnessToken();
    t.done = true;
    try {
      this.top.flushDone(t);
    } catch (e) {
      throw asFailure(e, 'flushDone(token)');
    }
  }

  /** Every mapping of the oracle translates as mapped, in the software walk and through the IOMMU model. */
  verifyTranslations(vm: Vm): void {
    for (const m of vm.maps) {
      for (const off of [0, m.size - 4]) {
        const sw = vm.pt.iovaToPhys(m.iova + off);
        const dev = vm.iommu.translate(m.iova + off);
        const want = m.pa + off;
        check(sw === want && dev.ok && dev.paddr === want, 'no-overlap', () =>
          `${vm.config.label}: iova 0x${(m.iova + off).toString(16)} translates to 0x${sw.toString(16)} (device: ${dev.ok ? '0x' + dev.paddr.toString(16) : dev.fault}), expected 0x${want.toString(16)}: table memory was changed behind the page table's back`,
        );
      }
    }
    this.checkFindings(vm.config.label);
  }

  /** The first IOMMU-model finding that carries a rule (free window, walk cache) fails the check. */
  checkFindings(where: string): void {
    const f = this.generations.findings.find(RULED) ?? this.vms.map((vm) => vm.iommu.findings.find(RULED)).find((x) => x !== undefined);
    if (f !== undefined) fail(f.rule!, `${where} (${REGIMES[this.regime].label}): ${f.message}`);
  }

  /**
   * Accounting at a quiescent point: the identity, the live-table count, across layers,
   * and against what a spy on the backing store saw: `backingCalls` grows when and only
   * as much as backing calls were made, and frees awaiting a flush are `pendingFlush`
   * (never `cached`) while the plugin holds them.
   */
  checkAccounting(where: string): AllocatorStats {
    let s: AllocatorStats;
    try {
      s = this.instance.stats();
    } catch (e) {
      throw asFailure(e, `${where}: stats()`);
    }
    // The identity inline (this runs after every one of 100,000 operations); the full
    // assertAccounting, which also validates every field, runs at teardown.
    const accounted = accountedBytes(s);
    check(s.outstanding === accounted, 'accounting', () =>
      `${where}: outstanding ${s.outstanding} != live ${s.live} + cached ${s.cached} + reserved ${s.reserved} + pendingFlush ${s.pendingFlush} + quarantined ${s.quarantined} (= ${accounted})`,
    );
    check(s.liveTables === this.top.live.size, 'accounting', () => `${where}: stats().liveTables is ${s.liveTables} but the page tables hold ${this.top.live.size} tables`);
    check(s.live >= this.top.liveBytes, 'accounting', () => `${where}: stats().live is ${s.live} bytes but the page tables hold ${this.top.liveBytes} bytes of tables`);
    const held = this.top.pendingHeld();
    check(s.pendingFlush >= held, 'accounting', () =>
      `${where}: ${held} bytes of freed tables await their flush and are still held by ${this.name}, but stats().pendingFlush is ${s.pendingFlush} (cached ${s.cached}): pending frees must be reported as pendingFlush until the flush covering them completes`,
    );
    if (this.options.crossLayer !== false && this.backing.calls > 0) {
      check(s.outstanding === this.backing.heldBytes, 'accounting', () => `${where}: stats().outstanding is ${s.outstanding} bytes but the allocator holds ${this.backing.heldBytes} bytes from its backing store`);
      const calls = this.backing.calls - this.lastCalls;
      const claimed = s.backingCalls - this.lastBackingCalls;
      check(claimed >= 0 && claimed <= calls && (calls === 0 || claimed > 0), 'accounting', () =>
        `${where}: stats().backingCalls went from ${this.lastBackingCalls} to ${s.backingCalls}, but the backing store saw ${calls} alloc calls since (backingCalls counts calls into the layer below: one per alloc, or one per bulk call)`,
      );
      this.lastCalls = this.backing.calls;
      this.lastBackingCalls = s.backingCalls;
    }
    this.checkFindings(where);
    return s;
  }

  /** Free every page table, sync, drain, and require that nothing but quarantine is left. */
  teardown(): void {
    try {
      for (const vm of this.vms) {
        if (!vm.pt.isFreed) vm.pt.free();
        this.sync(vm);
      }
      for (const vm of this.vms) {
        check(vm.pt.unsyncedGathers === 0, 'unsynced-gather', () => `${vm.config.label}: ${vm.pt.unsyncedGathers} gathers hold frees that no iotlbSync covered`);
      }
      this.flush();
      this.instance.drain?.();
      this.options.teardown?.(this.instance, this.env);
    } catch (e) {
      throw asFailure(e, 'teardown');
    }
    try {
      assertAccounting(this.instance);
    } catch (e) {
      throw asFailure(e, 'after teardown and drain');
    }
    const s = this.checkAccounting('after teardown and drain');
    check(s.live === 0 && s.liveTables === 0 && s.reserved === 0 && s.pendingFlush === 0 && s.cached === 0, 'accounting', () =>
      `after teardown and drain ${this.name} still reports live ${s.live}, liveTables ${s.liveTables}, cached ${s.cached}, reserved ${s.reserved}, pendingFlush ${s.pendingFlush}`,
    );
    check(s.outstanding === s.quarantined, 'accounting', () => `after teardown and drain ${this.name} still holds ${s.outstanding - s.quarantined} bytes outside quarantine (leak)`);
    if (this.backing.calls > 0) {
      check(this.backing.heldBytes === s.quarantined, 'accounting', () => `after teardown and drain ${this.backing.heldBytes - s.quarantined} bytes of backing memory were never given back (leak)`);
    }
    this.dispose();
  }

  /** Stop watching memory (teardown does it; checks that end early call it too). */
  dispose(): void {
    for (const vm of this.vms) vm.iommu.dispose();
    this.unwatch();
  }
}
