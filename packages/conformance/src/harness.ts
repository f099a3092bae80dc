/**
 * One test's world: fresh physical memory, a probed backing allocator, the allocator
 * under test, a contract checker between it and the page tables, and an IOMMU model per
 * page table. Every group builds on this, so every rule is checked the same way.
 */
import {
  AllocatorMisuseError,
  accountedBytes,
  assertAccounting,
  type AllocCtx,
  type AllocatorStats,
  type Paddr,
  type TableAllocator,
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

/** Byte written over every table the page table frees, so recycled memory that is not re-zeroed shows. */
export const POISON = 0xa5;
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
    if (n === this.failAt) return null;
    const p = this.system.alloc(size, ctx);
    if (p !== null) {
      this.held.set(p, size);
      this.heldBytes += size;
    }
    return p;
  }
  free(paddr: Paddr, size: number): void {
    this.system.free(paddr, size);
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
}

/**
 * Sits between the page tables and the allocator under test and checks every answer
 * independently of the core: zeroed, aligned, in range, inside memory the plugin holds,
 * not overlapping a live table, no throw. Frees poison the table first.
 */
export class ContractChecker implements TableAllocator {
  readonly live = new Map<Paddr, LiveTable>();
  liveBytes = 0;
  private readonly registry = new TableRegistry();
  poison = true;
  /** Largest output address any page table accepts (min over the page tables in use). */
  limit = 2 ** 52;

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
    if (p === null) return null;
    const at = () => `${this.name}.alloc(${size}) returned 0x${p!.toString(16)}`;
    check(Number.isSafeInteger(p) && p >= 0, 'in-range', () => `${at()}, not a physical address`);
    check(p + size <= this.limit, 'in-range', () => `${at()}, beyond the output address space (0x${this.limit.toString(16)})`);
    if (this.backing.held.size > 0) {
      check(this.backing.covering(p, size) !== undefined, 'size', () => `${at()}, but no block of ${size} bytes the allocator holds from its backing store contains it`);
    }
    check(p % size === 0, 'aligned', () => `${at()}, not aligned to ${size}`);
    check(!this.registry.overlaps(p, size), 'no-overlap', () => `${at()}, which overlaps a live table (handed out twice)`);
    check(this.memory.isZero(p, size), 'zeroed', () => `${at()}, whose memory is not zero (recycled without zeroing?)`);
    this.registry.add(p, size);
    this.live.set(p, { size });
    this.liveBytes += size;
    return p;
  }

  free(paddr: Paddr, size: number): void {
    const t = this.live.get(paddr);
    if (t === undefined) throw new Error(`[iopgt] [conformance] the page table freed 0x${paddr.toString(16)}, which it never allocated`);
    if (this.poison) this.memory.fill(paddr, t.size, POISON, 'pgtable');
    this.registry.remove(paddr, t.size);
    this.live.delete(paddr);
    this.liveBytes -= t.size;
    try {
      this.inner.free(paddr, size);
    } catch (e) {
      const rule = e instanceof AllocatorMisuseError ? e.rule : 'no-throw';
      fail(rule, `${this.name}.free(0x${paddr.toString(16)}, ${size}) of a table allocated as ${t.size} bytes threw: ${(e as Error).message ?? e}`, e);
    }
  }
  flushDone(): void {
    this.inner.flushDone();
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
  /** Flush behaviour of the page tables' flush ops (default: real invalidation). */
  readonly flush?: hw.FlushBehaviour;
  /** Poison freed tables (default true). */
  readonly poison?: boolean;
  /** Watch memory writes into freed-but-cached tables (default false). */
  readonly watchMemory?: boolean;
  /** Walk-cache entries of each IOMMU (default 1024: remember every table pointer). */
  readonly walkCacheEntries?: number;
}

export class Harness<A extends TableAllocator = TableAllocator> {
  readonly memory = new PhysMemory();
  readonly backing = new BackingProbe(this.memory);
  readonly env: ConformanceEnv;
  readonly instance: A;
  readonly top: ContractChecker;
  readonly generations: hw.TableGenerations = new hw.TableGenerations();
  readonly vms: Vm[] = [];

  constructor(
    factory: (env: ConformanceEnv) => A,
    readonly options: ConformanceOptions<A>,
    readonly settings: HarnessSettings = {},
  ) {
    this.env = Object.freeze({ backing: this.backing, memory: this.memory });
    this.instance = factory(this.env);
    this.top = new ContractChecker(this.instance, this.memory, this.backing);
    this.top.poison = settings.poison ?? true;
  }

  get name(): string {
    return this.instance.caps.name;
  }

  /** Create a page table over the allocator under test; null when the PGD allocation failed. */
  createVm(config: TableConfig, allocator: TableAllocator = this.top, flush: hw.FlushBehaviour | undefined = this.settings.flush): Vm | null {
    const iommu = new hw.Iommu({
      memory: this.memory,
      generations: this.generations,
      tlb: { entries: 64 },
      walkCache: { entries: this.settings.walkCacheEntries ?? 1024 },
      watchMemory: this.settings.watchMemory ?? false,
    });
    this.top.limit = Math.min(this.top.limit, 2 ** config.cfg.oas);
    let r;
    try {
      r = allocIoPgtableOps(config.format, config.cfg, {
        allocator: this.generations.observe(allocator),
        memory: this.memory,
        tlb: iommu.flushOps(flush),
      });
    } catch (e) {
      iommu.dispose();
      throw asFailure(e, `creating a ${config.label} page table`);
    }
    if (!r.ok) {
      iommu.dispose();
      if (r.code === 'ENOMEM') return null;
      throw new Error(`[iopgt] [conformance] ${config.label}: ${r.reason}`);
    }
    iommu.attach(r.table.cfg);
    const vm: Vm = { pt: r.table, iommu, config, maps: [] };
    this.vms.push(vm);
    return vm;
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

  /** Unmap `[iova, iova + size)` with `pgsize` entries, then sync the gathered invalidations. */
  unmap(vm: Vm, iova: number, size: number, pgsize: number, record = true): void {
    const gather = new IotlbGather();
    try {
      let done = 0;
      while (done < size) {
        const r = vm.pt.unmapPages(iova + done, pgsize, (size - done) / pgsize, gather);
        if (r.unmapped === 0) {
          throw new Error(`[iopgt] [conformance] ${vm.config.label}: unmap(0x${(iova + done).toString(16)}, ${pgsize}) failed: ${r.error} ${r.message ?? ''}`);
        }
        done += r.unmapped;
      }
    } catch (e) {
      throw asFailure(e, `${vm.config.label}: unmap of 0x${iova.toString(16)}`);
    }
    vm.iommu.iotlbSync(gather);
    if (record) vm.maps = vm.maps.filter((m) => m.iova + m.size <= iova || m.iova >= iova + size);
  }

  /** The driver's flush: invalidate every IOMMU context, then tell the allocator. */
  flush(): void {
    for (const vm of this.vms) vm.iommu.invalidateAll();
    try {
      this.top.flushDone();
    } catch (e) {
      throw asFailure(e, 'flushDone()');
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
  }

  /** Accounting at a quiescent point: the identity, the live-table count, and across layers. */
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
    if (this.options.crossLayer !== false && this.backing.calls > 0) {
      check(s.outstanding === this.backing.heldBytes, 'accounting', () => `${where}: stats().outstanding is ${s.outstanding} bytes but the allocator holds ${this.backing.heldBytes} bytes from its backing store`);
    }
    return s;
  }

  /** Free every page table, flush, drain, and require that nothing but quarantine is left. */
  teardown(): void {
    try {
      for (const vm of this.vms) if (!vm.pt.isFreed) vm.pt.free();
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
    for (const vm of this.vms) vm.iommu.dispose();
  }
}
