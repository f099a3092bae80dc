/**
 * A model of an IOMMU (SMMU context bank or Mali address space) in front of a device:
 * a TLB, a walk cache, the walker of `walker.ts`, and the invalidation commands the
 * kernel's flush ops stand for. It exists to catch what software cannot see: stale
 * translations, and walks through cached table pointers into memory that was freed and
 * reused before the walk cache forgot it (the reason Panthor-style allocators with a
 * no-op `tlb_flush_walk` must defer frees until the driver's own flush completes).
 */
import type { Paddr, TableAllocator } from '@io-pgtable/allocator-api';
import type { IotlbGather } from '../gather.js';
import type { EffectiveCfg } from '../io-pgtable.js';
import { PhysMemory, storeOf, type AccessGuard, type AccessKind, type Accessor } from '../phys/memory.js';
import type { FlushOps } from '../types.js';
import { AssocCache, type CacheConfig } from './cache.js';
import { IommuFindingError, type Finding, type FindingKind } from './findings.js';
import { TableGenerations, type GenerationListener, type TableRecord } from './generations.js';
import {
  checkPermission,
  entrySize,
  inputAddress,
  walk,
  walkConfigFromRegisters,
  type AccessType,
  type FaultKind,
  type TableStep,
  type Translation,
  type WalkConfig,
  type WalkOutcome,
} from './walker.js';

const TWO_52 = 2 ** 52;

export interface IommuOptions {
  readonly memory: PhysMemory;
  /** TLB geometry (default 64 entries, LRU). */
  readonly tlb?: CacheConfig;
  /** Walk-cache geometry (default 32 entries, LRU). */
  readonly walkCache?: CacheConfig;
  /** Share one tracker between IOMMUs whose tables come from the same memory. */
  readonly generations?: TableGenerations;
  /** Compare every cached translation with a fresh walk (default true). */
  readonly verify?: boolean;
  /**
   * Watch writes, zeroing and reassignment of freed tables: those a walk-cache entry
   * still points to, and (through the shared {@link TableGenerations}) those whose
   * covering flush has not completed, by chaining guards onto `memory.guard` (default true).
   */
  readonly watchMemory?: boolean;
  /** Finding kinds that throw {@link IommuFindingError} as well as being logged. Default none. */
  readonly throwOn?: readonly FindingKind[];
}

/** Which invalidations a flush op performs on the model. */
export interface FlushBehaviour {
  /** `tlbFlushAll` invalidates the TLB and the walk cache (default true). */
  readonly flushAll?: boolean;
  /** `tlbFlushWalk` invalidates everything cached for the range (default true). */
  readonly flushWalk?: boolean;
  /** `tlbAddPage` queues a leaf invalidation completed by {@link Iommu.iotlbSync} (default true). */
  readonly addPage?: boolean;
  /**
   * The deferred regime (Panthor): the ops declare `deferred: true`, and `tlbSync` (what
   * `pt.iotlbSync(gather)` runs) is where the driver's real flush happens: it invalidates
   * the whole context, TLB and walk cache. Pair with `flushAll: false, flushWalk: false`.
   * Default false: `tlbSync` completes the queued leaf invalidations only.
   */
  readonly deferred?: boolean;
}

/** Result of a device access. */
export type AccessResult =
  | {
      readonly ok: true;
      readonly paddr: number;
      readonly level: number;
      /** Where the translation came from. */
      readonly source: 'tlb' | 'walk-cache' | 'walk';
      /** The 32-bit word read (or written). */
      readonly value: number;
    }
  | { readonly ok: false; readonly fault: FaultKind; readonly level: number; readonly message: string };

interface WalkEntry {
  readonly key: number;
  readonly level: number;
  /** Low 52 bits of the first input address the entry covers, and how many bytes. */
  readonly vaBase: number;
  readonly span: number;
  readonly next: number;
  readonly tableAttrs: number;
  /** Generation of the table `next` pointed to when cached; 0 when it was not observed. */
  readonly gen: number;
}

interface TlbEntry {
  readonly key: number;
  readonly t: Translation;
}

export interface IommuCounters {
  accesses: number;
  tlbHits: number;
  walkCacheHits: number;
  walks: number;
  flushAll: number;
  flushWalk: number;
  addPage: number;
  syncs: number;
}

/**
 * @example
 * const iommu = new Iommu({ memory });
 * const pt = createPageTable('ARM_64_LPAE_S1', cfg, { allocator: iommu.observe(allocator), tlb: iommu.flushOps() });
 * iommu.attach(pt.cfg);
 * pt.mapPages(0x1000, 0x8000_0000, 0x1000, 1, ['read', 'write']);
 * iommu.read(0x1000); // { ok: true, paddr: 0x8000_0000, source: 'walk', ... }
 */
export class Iommu {
  readonly memory: PhysMemory;
  readonly generations: TableGenerations;
  readonly findings: Finding[] = [];
  readonly counters: IommuCounters = { accesses: 0, tlbHits: 0, walkCacheHits: 0, walks: 0, flushAll: 0, flushWalk: 0, addPage: 0, syncs: 0 };
  private readonly tlb: AssocCache<TlbEntry>;
  private readonly wc: AssocCache<WalkEntry>;
  private readonly verify: boolean;
  private readonly throwOn: ReadonlySet<FindingKind>;
  private cfg: WalkConfig | null = null;
  /** Leaf invalidations queued by `tlbAddPage`, as [start, end) pairs of low-52 addresses. */
  private pendingLeaf: number[] = [];
  /** Table base -> walk-cache entries pointing at it. */
  private readonly refs = new Map<number, number>();
  /** Freed tables that walk-cache entries still point to: base -> allocated size. */
  private readonly dangling = new Map<number, number>();
  private readonly unsubscribe: () => void;
  private readonly unwatch: () => void = () => {};
  private readonly guard: AccessGuard | null = null;
  private readonly prevGuard: AccessGuard | null;

  constructor(opts: IommuOptions) {
    this.memory = opts.memory;
    this.generations = opts.generations ?? new TableGenerations();
    this.tlb = new AssocCache(opts.tlb ?? { entries: 64 });
    this.wc = new AssocCache(opts.walkCache ?? { entries: 32 });
    this.verify = opts.verify ?? true;
    this.throwOn = new Set(opts.throwOn ?? []);
    const listener: GenerationListener = {
      allocated: (rec) => this.onAllocated(rec),
      freed: (rec) => this.onFreed(rec),
      reassigned: (p, size) => this.onMemoryChange('reassigned', p, size),
      hazard: (f) => this.report(f),
    };
    this.unsubscribe = this.generations.subscribe(listener);
    if (opts.watchMemory ?? true) this.unwatch = this.generations.watch(this.memory);
    this.prevGuard = this.memory.guard;
    if (opts.watchMemory ?? true) {
      const prev = this.prevGuard;
      const guard: AccessGuard = {
        check: (kind: AccessKind, p: Paddr, size: number, who: Accessor) => {
          if (this.dangling.size > 0 && (kind === 'write' || kind === 'zero') && who !== 'device') {
            const how = kind === 'zero' ? 'zeroed' : 'written';
            this.onMemoryChange(this.generations.inAlloc ? `${how} while being handed out again` : how, p, size);
          }
          prev?.check(kind, p, size, who);
        },
      };
      this.guard = guard;
      this.memory.guard = guard;
    }
  }

  /** Program the translation registers from a page table's effective cfg (invalidates everything). */
  attach(cfg: EffectiveCfg): WalkConfig {
    this.cfg = walkConfigFromRegisters(cfg);
    this.invalidateAll();
    return this.cfg;
  }

  get walkConfig(): WalkConfig | null {
    return this.cfg;
  }

  /** Stop observing allocations and memory; restores the previous memory guard. */
  dispose(): void {
    this.unsubscribe();
    if (this.guard !== null && this.memory.guard === this.guard) this.memory.guard = this.prevGuard;
    this.unwatch();
  }

  /** See {@link TableGenerations.observe}. */
  observe(allocator: TableAllocator): TableAllocator {
    return this.generations.observe(allocator);
  }

  // --- invalidation --------------------------------------------------------------------

  /** Invalidate the whole context: every TLB and walk-cache entry (TLBI ASID/VMID ALL). */
  invalidateAll(): void {
    this.tlb.clear();
    for (const e of this.wc.clear()) this.unref(e);
    this.pendingLeaf = [];
  }

  /**
   * Invalidate every TLB and walk-cache entry translating any address of
   * `[iova, iova + size)` (TLBI by VA, all levels). With `leafOnly` only TLB entries go.
   */
  invalidateRange(iova: number, size: number, leafOnly = false): void {
    const start = low52(iova);
    const end = start + size;
    this.invalidateLeaf(start, end);
    if (!leafOnly) for (const e of this.wc.deleteWhere((w) => w.vaBase < end && start < w.vaBase + w.span)) this.unref(e);
  }

  /** Complete the leaf invalidations queued by `tlbAddPage` (and the gather's range): iotlb_sync. */
  iotlbSync(gather?: IotlbGather): void {
    this.counters.syncs++;
    const q = this.pendingLeaf;
    this.pendingLeaf = [];
    for (let i = 0; i < q.length; i += 2) this.invalidateLeaf(q[i]!, q[i + 1]!);
    if (gather !== undefined && !gather.isEmpty) {
      this.invalidateLeaf(low52(gather.start), low52(gather.start) + (gather.end - gather.start));
      gather.reset();
    }
  }

  /** TLBI by VA, leaf only: walk-cache entries survive. `[start, end)` in low-52 form. */
  private invalidateLeaf(start: number, end: number): void {
    this.tlb.deleteWhere((e) => {
      const base = e.t.va - (e.t.va % e.t.size);
      return base < end && start < base + e.t.size;
    });
  }

  /** Leaf invalidations queued and not yet synced. */
  get pendingInvalidations(): number {
    return this.pendingLeaf.length / 2;
  }

  /**
   * Flush ops that invalidate the model as the kernel's iommu_flush_ops promise:
   * `tlbFlushAll` everything, `tlbFlushWalk` all cached state of the range,
   * `tlbAddPage` a leaf invalidation that completes at {@link iotlbSync}. A behaviour
   * set to false makes that op a no-op (it is still counted), e.g. Panthor's
   * `{ flushAll: false, flushWalk: false }`.
   */
  flushOps<C = unknown>(behaviour: FlushBehaviour = {}): FlushOps<C> {
    return this.wrapFlushOps<C>({}, behaviour);
  }

  /**
   * Wrap a driver's own flush ops: the driver's callback runs first, then the model does
   * the invalidation `behaviour` says the hardware performs. For a driver whose ops are
   * no-ops, pass `{ flushAll: false, flushWalk: false, addPage: false }` and invalidate
   * later with {@link invalidateAll} where the driver really flushes.
   */
  wrapFlushOps<C = unknown>(driver: FlushOps<C>, behaviour: FlushBehaviour = {}): FlushOps<C> {
    const all = behaviour.flushAll ?? true;
    const walkRange = behaviour.flushWalk ?? true;
    const page = behaviour.addPage ?? true;
    const deferred = behaviour.deferred ?? false;
    return {
      deferred,
      tlbSync: (gather: IotlbGather, cookie: C) => {
        driver.tlbSync?.(gather, cookie);
        this.iotlbSync(gather);
        if (deferred) this.invalidateAll();
      },
      tlbFlushAll: (cookie: C) => {
        this.counters.flushAll++;
        driver.tlbFlushAll?.(cookie);
        if (all) this.invalidateAll();
      },
      tlbFlushWalk: (iova: number, size: number, granule: number, cookie: C) => {
        this.counters.flushWalk++;
        driver.tlbFlushWalk?.(iova, size, granule, cookie);
        if (walkRange) this.invalidateRange(iova, size);
      },
      tlbAddPage: (gather: IotlbGather, iova: number, granule: number, cookie: C) => {
        this.counters.addPage++;
        if (driver.tlbAddPage) driver.tlbAddPage(gather, iova, granule, cookie);
        else gather.add(iova, granule);
        if (page) {
          const s = low52(iova);
          this.pendingLeaf.push(s, s + granule);
        }
      },
    };
  }

  // --- device accesses -----------------------------------------------------------------

  /** Translate without touching memory: the TLB, then the walk cache, then a walk. */
  translate(iova: number, access: AccessType = {}): AccessResult {
    const c = this.config();
    this.counters.accesses++;
    const va = inputAddress(c, iova);
    if (va < 0) {
      return this.faulted(iova, { ok: false, fault: 'unmapped', level: c.startLevel, va: NaN, message: `input address outside the ${c.ias}-bit range` });
    }
    let t: Translation | null = null;
    let source: 'tlb' | 'walk-cache' | 'walk' = 'tlb';
    for (let level = 3; level > c.startLevel - 1 && level >= 1; level--) {
      const hit = this.tlb.get(keyOf(va, entrySize(c, level), level));
      if (hit !== undefined) {
        t = hit.t;
        this.counters.tlbHits++;
        if (this.verify) this.compareWithLive(iova, va, hit.t, 'stale-tlb');
        break;
      }
    }
    if (t === null) {
      const outcome = this.walkCached(iova, va);
      if (!outcome.result.ok) return this.faulted(iova, outcome.result);
      t = outcome.result;
      source = outcome.fromCache ? 'walk-cache' : 'walk';
      this.tlb.set(keyOf(va, t.size, t.level), { key: keyOf(va, t.size, t.level), t });
    }
    const denied = checkPermission(c, t, access);
    if (denied === 'dirty') {
      t = this.markDirty(t);
    } else if (denied !== null) {
      return this.faulted(iova, { ok: false, fault: 'permission-fault', level: t.level, va, message: denied });
    }
    return { ok: true, paddr: t.oa + (va % t.size), level: t.level, source, value: 0 };
  }

  /** A device read of the 32-bit word at `iova`. */
  read(iova: number, access: Omit<AccessType, 'write'> = {}): AccessResult {
    const r = this.translate(iova, access);
    if (!r.ok) return r;
    const p = r.paddr - (r.paddr % 4);
    this.memory.checkAccess('read', p, 4, 'device');
    return { ...r, value: storeOf(this.memory).peek(p)[PhysMemory.wordIndex(p)]! };
  }

  /** A device write of the 32-bit `value` at `iova`. */
  write(iova: number, value: number, access: Omit<AccessType, 'write'> = {}): AccessResult {
    const r = this.translate(iova, { ...access, write: true });
    if (!r.ok) return r;
    const p = r.paddr - (r.paddr % 4);
    this.memory.checkAccess('write', p, 4, 'device');
    storeOf(this.memory).chunk(p)[PhysMemory.wordIndex(p)] = value >>> 0;
    return { ...r, value: value >>> 0 };
  }

  /**
   * Tell the model that table memory changed hands where no observer sees it (e.g. a
   * plugin gave it back to its backing store). Reported as `reuse-before-flush` when a
   * walk-cache entry still points into it or it is inside a free window.
   */
  noteMemoryChange(how: string, paddr: Paddr, size: number): void {
    this.generations.released(how, paddr, size);
    this.onMemoryChange(how, paddr, size);
  }

  /** Findings of some kinds (all when omitted). */
  findingsOf(...kinds: FindingKind[]): Finding[] {
    return kinds.length === 0 ? [...this.findings] : this.findings.filter((f) => kinds.includes(f.kind));
  }

  clearFindings(): void {
    this.findings.length = 0;
  }

  /** Entries currently cached, for tests and dumps. */
  get tlbSize(): number {
    return this.tlb.size;
  }
  get walkCacheSize(): number {
    return this.wc.size;
  }
  get cacheStats(): { tlb: { hits: number; misses: number; evictions: number }; walkCache: { hits: number; misses: number; evictions: number } } {
    const s = (c: AssocCache<unknown>) => ({ hits: c.hits, misses: c.misses, evictions: c.evictions });
    return { tlb: s(this.tlb as AssocCache<unknown>), walkCache: s(this.wc as AssocCache<unknown>) };
  }

  // --- internals -----------------------------------------------------------------------

  private config(): WalkConfig {
    if (this.cfg === null) throw new Error('[iopgt] [iommu] no translation registers programmed; call attach(pageTable.cfg)');
    return this.cfg;
  }

  private walkCached(iova: number, va: number): { result: WalkOutcome; fromCache: boolean } {
    const c = this.config();
    // Deepest cached table pointer first: it saves the most descriptor fetches.
    for (let level = 2; level >= c.startLevel; level--) {
      const e = this.wc.get(keyOf(va, entrySize(c, level), level));
      if (e === undefined) continue;
      this.counters.walkCacheHits++;
      this.checkGeneration(iova, e);
      const result = walk(c, this.memory, va, level + 1, e.next, e.tableAttrs, (s) => this.fill(va, s));
      if (this.verify) this.compareWithLive(iova, va, result, 'stale-walk');
      return { result, fromCache: true };
    }
    this.counters.walks++;
    return { result: walk(c, this.memory, va, c.startLevel, c.base, 0, (s) => this.fill(va, s)), fromCache: false };
  }

  private fill(va: number, s: TableStep): void {
    const c = this.config();
    const span = entrySize(c, s.level);
    const key = keyOf(va, span, s.level);
    const rec = this.generations.covering(s.next);
    const old = this.wc.peek(key);
    if (old !== undefined && old.next === s.next && old.gen === (rec?.gen ?? 0)) return;
    const e: WalkEntry = { key, level: s.level, vaBase: va - (va % span), span, next: s.next, tableAttrs: s.tableAttrs, gen: rec?.gen ?? 0 };
    if (old !== undefined) this.unref(this.wc.delete(key)!);
    const evicted = this.wc.set(key, e);
    if (evicted !== undefined) this.unref(evicted);
    this.refs.set(e.next, (this.refs.get(e.next) ?? 0) + 1);
  }

  private unref(e: WalkEntry): void {
    const n = (this.refs.get(e.next) ?? 1) - 1;
    if (n > 0) this.refs.set(e.next, n);
    else {
      this.refs.delete(e.next);
      this.dangling.delete(e.next);
    }
  }

  private checkGeneration(iova: number, e: WalkEntry): void {
    if (e.gen === 0) return; // the table was never observed: nothing to compare with
    const rec = this.generations.covering(e.next);
    if (rec !== undefined && rec.gen === e.gen) return;
    if (rec !== undefined) {
      this.report({
        kind: 'walk-into-reused',
        iova,
        paddr: e.next,
        level: e.level + 1,
        rule: 'reuse-before-flush',
        message: `walk through a cached level-${e.level} table pointer into 0x${e.next.toString(16)}, which was freed and handed out again before the walk cache was invalidated`,
      });
    } else {
      this.report({
        kind: 'walk-after-free',
        iova,
        paddr: e.next,
        level: e.level + 1,
        rule: 'walk-after-free',
        message: `walk through a cached level-${e.level} table pointer into freed table 0x${e.next.toString(16)} (the walk cache was not invalidated before the device used the range again)`,
      });
    }
  }

  private compareWithLive(iova: number, va: number, seen: WalkOutcome, kind: 'stale-tlb' | 'stale-walk'): void {
    const c = this.config();
    const live = walk(c, this.memory, va);
    if (sameOutcome(seen, live)) return;
    const what = (o: WalkOutcome) => (o.ok ? `0x${(o.oa + (va % o.size)).toString(16)} (level ${o.level}, pte 0x${hex64(o.hi, o.lo)})` : o.fault);
    this.report({
      kind,
      iova,
      paddr: seen.ok ? seen.oa + (va % seen.size) : undefined,
      level: seen.level,
      message: `${kind === 'stale-tlb' ? 'TLB' : 'walk cache'} gives ${what(seen)} but the live tables give ${what(live)}`,
    });
  }

  private markDirty(t: Translation): Translation {
    // HD: the hardware clears AP[2] in the descriptor itself, atomically with the write.
    const lo = (t.lo & ~(1 << 7)) >>> 0;
    this.memory.checkAccess('write', t.descAddr, 8, 'device');
    storeOf(this.memory).chunk(t.descAddr)[PhysMemory.wordIndex(t.descAddr)] = lo;
    const nt: Translation = { ...t, lo };
    const key = keyOf(t.va, t.size, t.level);
    this.tlb.set(key, { key, t: nt });
    return nt;
  }

  private faulted(iova: number, f: { readonly fault: FaultKind; readonly level: number; readonly message: string; readonly ok?: false; readonly va?: number }): AccessResult {
    this.report({ kind: f.fault, iova, level: f.level, message: `${f.fault} at iova ${iovaHex(iova)}: ${f.message}` });
    return { ok: false, fault: f.fault, level: f.level, message: f.message };
  }

  private onAllocated(rec: TableRecord): void {
    this.onMemoryChange('allocated', rec.paddr, rec.size);
  }

  private onFreed(rec: TableRecord): void {
    if (this.refs.has(rec.paddr)) this.dangling.set(rec.paddr, rec.size);
  }

  private onMemoryChange(how: string, p: number, size: number): void {
    if (this.dangling.size === 0) return;
    const write = how === 'written' || how === 'zeroed';
    for (const [base, tsize] of this.dangling) {
      if (p < base + tsize && base < p + size) {
        this.report({
          kind: write ? 'write-before-flush' : 'reuse-before-flush',
          iova: NaN,
          paddr: base,
          rule: write ? 'write-before-flush' : 'reuse-before-flush',
          message: `freed table 0x${base.toString(16)} was ${how} (0x${p.toString(16)}+${size}) while the walk cache still points to it`,
        });
        // One report per freed table is enough; forget it so the log stays readable.
        this.dangling.delete(base);
      }
    }
  }

  private report(f: Finding): void {
    this.findings.push(f);
    if (this.throwOn.has(f.kind)) throw new IommuFindingError(f);
  }
}

function keyOf(va: number, span: number, level: number): number {
  return Math.floor(va / span) * 4 + level;
}

function low52(iova: number): number {
  const r = iova % TWO_52;
  return r < 0 ? r + TWO_52 : r;
}

function sameOutcome(a: WalkOutcome, b: WalkOutcome): boolean {
  if (a.ok !== b.ok) return false;
  if (!a.ok || !b.ok) return !a.ok && !b.ok && a.fault === b.fault;
  return a.oa === b.oa && a.size === b.size && a.lo === b.lo && a.hi === b.hi && a.tableAttrs === b.tableAttrs;
}

function hex64(hi: number, lo: number): string {
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

function iovaHex(iova: number): string {
  return iova < 0 ? '0x' + BigInt.asUintN(64, BigInt(iova)).toString(16) : '0x' + iova.toString(16);
}
