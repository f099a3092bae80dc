import {
  AllocatorFaultError,
  AllocatorMisuseError,
  BLOCKING_CTX,
  EMPTY_STATS,
  PendingFrees,
  allocSizeFor,
  asAllocatorError,
  describeValue,
  isFlushed,
  definePlugin,
  isPowerOfTwo,
  type AllocCtx,
  type AllocatorStats,
  type FlushToken,
  type FreeCtx,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';
import { attachAccessControl, type AccessControl, type GuardHost } from './guard.js';
import { ScmError, ScmPerm, assignAsVm, hasGuestSide, type PageState, type PhysRange, type ScmDestination, type ScmMock } from './scm-mock.js';

/**
 * `share` keeps the host's write access ([HLOS: RW, VMID: R], the RFC): the page-table
 * code edits live tables. `donate` gives the page to the VMID alone ([VMID: RW]): any
 * later CPU write to it faults, which is what the mode exists to demonstrate.
 */
export type ShareMode = 'share' | 'donate';

export interface SecureShareOptions {
  /** The secure monitor (mock) that owns page ownership. Share one between contexts. */
  readonly scm: ScmMock;
  /** The VM the tables are shared with. */
  readonly vmid: number;
  readonly mode?: ShareMode;
  /** Pages per assign/unassign call (default 16). 1 reproduces the RFC's call per table. */
  readonly batch?: number;
  /**
   * Idle assigned pages kept for this VMID by {@link SecureShareAllocator.topUp} and
   * {@link SecureShareAllocator.reclaim} (default = `batch`). 0 = give every freed page
   * back to the host.
   */
  readonly poolTarget?: number;
  /**
   * Reclaim (unassign and release) idle pages above `poolTarget` inside `flushDone()`, as
   * the RFC's free path does. Off by default: `flushDone` may run in the fence-signalling
   * path, where no secure call belongs; call `reclaim()`/`topUp()` from a blocking context.
   */
  readonly reclaimOnFlush?: boolean;
  /** Install CPU access control on the inner allocator's memory (default true). */
  readonly accessControl?: boolean;
  readonly name?: string;
}

/** Secure-call accounting of one context. */
export interface SecureShareStats {
  readonly assignCalls: number;
  readonly unassignCalls: number;
  readonly failedAssigns: number;
  readonly failedUnassigns: number;
  readonly pagesAssigned: number;
  readonly pagesUnassigned: number;
  /** Tables served from the per-VMID pool without a secure call. */
  readonly poolHits: number;
  /** Allocations refused because the pool was empty and the context may not block. */
  readonly refusedNoBlock: number;
  /** Blocks quarantined forever (their ownership change failed). */
  readonly quarantinedBlocks: number;
}

export interface SecureShareAllocator extends TableAllocator {
  readonly scm: ScmMock;
  readonly vmid: number;
  readonly mode: ShareMode;
  readonly batch: number;
  readonly poolTarget: number;
  /** Access control on the memory, or null when disabled or the memory has no guard slot. */
  readonly accessControl: AccessControl | null;
  /**
   * Make sure `count` assigned, zeroed blocks of `size` bytes (default one page) are
   * pooled, assigning the shortfall in calls of at most `batch` pages. Blocking-context
   * only (the VM_BIND prepare step). Returns the number pooled afterwards, which is lower
   * than `count` only when the backing allocator or the monitor failed.
   */
  prefill(count: number, size?: number): number;
  /** Reclaim, then prefill the page-size pool to `poolTarget`. Blocking-context only. */
  topUp(): number;
  /** Unassign and release idle pages beyond `poolTarget`. Blocking-context only. Returns blocks released. */
  reclaim(): number;
  /** Idle assigned blocks of `size` bytes (default one page) ready for the run phase. */
  pooled(size?: number): number;
  secureStats(): SecureShareStats;
}

// Where a block held from the inner allocator is.
const LIVE = 0;
const PENDING = 1;
const POOL = 2;
const DIRTY = 3;
const QUARANTINED = 4;
/** Back with the host, but the inner allocator's `free` threw: kept, retried by the next drain. */
const RETURNING = 5;

/**
 * Page-table allocator whose pages are shared with `vmid` through the secure monitor.
 *
 * Contract:
 *  - Blocks are at least one page (`scm.pageSize`), so no two tables share a page and an
 *    ownership change never touches a neighbour.
 *  - Fresh pages are zeroed and cleaned, then assigned {HLOS} -> destinations, in calls
 *    of up to `batch` pages. Assignment happens only when `ctx.mayBlock` and
 *    `ctx.phase !== 'run'`; otherwise only already-assigned pooled pages are handed out,
 *    and an empty pool yields `null` (ENOMEM).
 *  - `free` only queues the block; `flushDone` makes it idle (share mode: zeroed and
 *    pooled for this VMID; donate mode: queued for reclaim, the host cannot zero it).
 *  - Reclaim reassigns idle pages to [HLOS: RWX] and releases them to `inner`. A failed
 *    reassignment quarantines the call's blocks: never reused, never released, counted
 *    in `stats().quarantined`.
 *  - Every hand-out checks the monitor's state of the block: a page not assigned to
 *    exactly this context's destinations (another VMID, unknown) is never handed out.
 */
export function withSecureShare(inner: TableAllocator, opts: SecureShareOptions): SecureShareAllocator {
  const { scm, vmid } = opts;
  const mode: ShareMode = opts.mode ?? 'share';
  const batch = opts.batch ?? 16;
  const poolTarget = opts.poolTarget ?? batch;
  const name = opts.name ?? `secure-share(vmid ${vmid})`;
  const pageSize = scm.pageSize;
  const hlos = scm.hlos;
  if (!Number.isInteger(vmid) || vmid < 0 || vmid > 63 || vmid === hlos) {
    throw new RangeError(`vmid must be an integer in [0, 63] other than HLOS (${hlos}), got ${describeValue(vmid)}`);
  }
  if (mode !== 'share' && mode !== 'donate') throw new RangeError(`mode must be 'share' or 'donate', got ${describeValue(mode)}`);
  if (!Number.isSafeInteger(batch) || batch < 1) throw new RangeError(`batch must be an integer >= 1, got ${describeValue(batch)}`);
  if (!Number.isSafeInteger(poolTarget) || poolTarget < 0) throw new RangeError(`poolTarget must be an integer >= 0, got ${describeValue(poolTarget)}`);
  // Only the VM can give a donated page back, and only createScmMock's monitors have a VM side.
  if (mode === 'donate' && !hasGuestSide(scm)) throw new TypeError(`[iopgt] [${name}] donate mode needs a monitor made by createScmMock (no VM can give donated pages back otherwise)`);

  const sharedDest: readonly ScmDestination[] =
    mode === 'share'
      ? [
          { vmid: hlos, perm: ScmPerm.RW },
          { vmid, perm: ScmPerm.READ },
        ]
      : [{ vmid, perm: ScmPerm.RW }];
  const hostDest: readonly ScmDestination[] = [{ vmid: hlos, perm: ScmPerm.RWX }];
  const sharedState: PageState = scm.stateFor(sharedDest);
  const hostState: PageState = scm.stateFor(hostDest);
  const memory = inner.memory;
  // The attachment (and its detach) stays private to this allocator: no caller can lift it.
  const accessControl =
    opts.accessControl !== false && typeof (memory as Partial<GuardHost>).addGuard === 'function'
      ? attachAccessControl(memory as unknown as GuardHost, scm).control
      : null;

  const blockSize = new Map<Paddr, number>();
  const where = new Map<Paddr, number>();
  const pool = new Map<number, Paddr[]>();
  const pending = new PendingFrees();
  let dirty: Paddr[] = [];
  let returning: Paddr[] = [];
  // Bytes and blocks in each place, indexed by LIVE..RETURNING.
  const bytes = [0, 0, 0, 0, 0, 0];
  const counts = [0, 0, 0, 0, 0, 0];
  let held = 0;
  let backingCalls = 0;
  const s = {
    assignCalls: 0,
    unassignCalls: 0,
    failedAssigns: 0,
    failedUnassigns: 0,
    pagesAssigned: 0,
    pagesUnassigned: 0,
    poolHits: 0,
    refusedNoBlock: 0,
    quarantinedBlocks: 0,
  };

  function blockFor(size: number): number {
    return Math.max(allocSizeFor(size), pageSize);
  }
  function move(p: Paddr, to: number): void {
    const b = blockSize.get(p)!;
    const from = where.get(p);
    if (from !== undefined) {
      bytes[from]! -= b;
      counts[from]!--;
    }
    bytes[to]! += b;
    counts[to]!++;
    where.set(p, to);
  }
  function forget(p: Paddr): void {
    const b = blockSize.get(p)!;
    const from = where.get(p)!;
    bytes[from]! -= b;
    counts[from]!--;
    held -= b;
    where.delete(p);
    blockSize.delete(p);
  }
  /** Give a block that the host owns alone back to `inner`; forgotten only once `inner` took it. */
  function release(p: Paddr): void {
    inner.free(p, blockSize.get(p)!);
    forget(p);
  }
  /**
   * Release every block, past failures: a block whose `inner.free` throws stays held
   * (RETURNING, counted as cached) and the error is collected. Returns the blocks released.
   */
  function releaseAll(blocks: readonly Paddr[], errors: unknown[]): number {
    let n = 0;
    for (const p of blocks) {
      try {
        release(p);
        n++;
      } catch (e) {
        move(p, RETURNING);
        returning.push(p);
        errors.push(e);
      }
    }
    return n;
  }
  /** Throw what a loop collected: the error itself, or all of them together. */
  function raise(errors: readonly unknown[]): void {
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1) {
      throw new AggregateError(errors, `[iopgt] [${name}] ${errors.length} operations failed; every block is still accounted (see stats())`);
    }
  }
  /**
   * One monitor call; a refusal or failure comes back as the error, anything else is a bug
   * and propagates. The host makes every call it may (HLOS is an owner); only donated
   * blocks, which HLOS no longer owns, are given back by the VM itself.
   */
  function tryAssign(blocks: readonly Paddr[], src: bigint, dest: readonly ScmDestination[]): ScmError | null {
    try {
      if ((src & hostState.owners) !== 0n) scm.assign(rangesOf(blocks), src, dest);
      else assignAsVm(scm, vmid, rangesOf(blocks), src, dest);
      return null;
    } catch (e) {
      if (e instanceof ScmError) return e;
      throw e;
    }
  }
  function poolList(block: number): Paddr[] {
    let list = pool.get(block);
    if (list === undefined) pool.set(block, (list = []));
    return list;
  }
  function pooledPages(): number {
    let n = 0;
    for (const [b, list] of pool) n += (list.length * b) / pageSize;
    return n;
  }

  /** Page-aligned ranges covering `blocks`, adjacent blocks merged (one descriptor each). */
  function rangesOf(blocks: readonly Paddr[]): PhysRange[] {
    const sorted = [...blocks].sort((a, b) => a - b);
    const out: { paddr: number; size: number }[] = [];
    for (const p of sorted) {
      const b = blockSize.get(p)!;
      const last = out[out.length - 1];
      if (last !== undefined && last.paddr + last.size === p) last.size += b;
      else out.push({ paddr: p, size: b });
    }
    return out;
  }

  function isSharedHere(p: Paddr): boolean {
    const end = p + blockSize.get(p)!;
    for (let q = p; q < end; q += pageSize) if (scm.stateAt(q) !== sharedState) return false;
    return true;
  }

  /** Take up to `count` blocks from `inner`, zero and clean them, assign them in one call. */
  function assignBatch(block: number, count: number, ctx: AllocCtx = BLOCKING_CTX): number {
    const got: Paddr[] = [];
    for (let i = 0; i < count; i++) {
      backingCalls++;
      // The ctx of the request served (a reservation below reads its kind), else a blocking one.
      let p: Paddr | null;
      try {
        p = inner.alloc(block, ctx);
      } catch (e) {
        // Nothing was assigned yet: what was taken goes back (or stays accounted), then report.
        const errors: unknown[] = [asAllocatorError(e, name, `inner alloc(${block})`)];
        releaseAll(got, errors);
        raise(errors);
        return 0;
      }
      if (p === null) break;
      blockSize.set(p, block);
      held += block;
      move(p, POOL);
      got.push(p);
    }
    if (got.length === 0) return 0;
    // The monitor makes the page unreachable for the host (donate) or read-only for the
    // VM; either way stale data and dirty cache lines must be gone before it changes hands.
    try {
      for (const p of got) {
        memory.zero(p, block);
        memory.clean(p, block);
      }
    } catch (e) {
      // Nothing was assigned yet: the pages are still the host's to give back.
      releaseAll(got, []);
      throw e;
    }
    s.assignCalls++;
    const err = tryAssign(got, hostState.owners, sharedDest);
    if (err !== null) {
      s.failedAssigns++;
      if (err.stateUnknown) {
        for (const p of got) move(p, QUARANTINED);
        s.quarantinedBlocks += got.length;
      } else {
        raise(releaseAll(got, []) === got.length ? [] : [new AllocatorFaultError(name, 'no-throw', `the backing allocator refused ${got.length} page(s) back after a failed assign; they stay held`)]);
      }
      return 0;
    }
    s.pagesAssigned += (got.length * block) / pageSize;
    poolList(block).push(...got);
    return got.length;
  }

  /**
   * Reassign idle blocks to the host in calls of at most `batch` pages, then release them;
   * blocks already back with the host whose release failed before go first. Continues past
   * a failing release and throws what failed at the end.
   */
  function unassign(blocks: readonly Paddr[]): number {
    const errors: unknown[] = [];
    const retry = returning;
    returning = [];
    let released = releaseAll(retry, errors);
    let i = 0;
    while (i < blocks.length) {
      const call: Paddr[] = [];
      let pages = 0;
      while (i < blocks.length) {
        const n = blockSize.get(blocks[i]!)! / pageSize;
        if (call.length > 0 && pages + n > batch) break;
        call.push(blocks[i++]!);
        pages += n;
      }
      s.unassignCalls++;
      if (tryAssign(call, sharedState.owners, hostDest) !== null) {
        // The RFC leaks such pages on purpose: the host cannot know who can still read them.
        s.failedUnassigns++;
        for (const p of call) move(p, QUARANTINED);
        s.quarantinedBlocks += call.length;
        continue;
      }
      s.pagesUnassigned += pages;
      released += releaseAll(call, errors);
    }
    raise(errors);
    return released;
  }

  /** Idle blocks beyond the target: all dirty ones, then pooled ones, largest first. */
  function takeExcess(keepPages: number): Paddr[] {
    const out = dirty;
    dirty = [];
    let excess = pooledPages() - keepPages;
    for (const b of [...pool.keys()].sort((x, y) => y - x)) {
      const list = pool.get(b)!;
      while (excess > 0 && list.length > 0) {
        out.push(list.pop()!);
        excess -= b / pageSize;
      }
    }
    return out;
  }

  function handOut(block: number): Paddr | null {
    const list = pool.get(block);
    if (list === undefined || list.length === 0) return null;
    const p = list.pop()!;
    if (!isSharedHere(p)) {
      // Keep the block accounted (quarantined): its true owner is not this context.
      move(p, QUARANTINED);
      s.quarantinedBlocks++;
      throw new AllocatorFaultError(name, 'vmid-mismatch', `pooled block 0x${p.toString(16)} is no longer assigned to [${describe(sharedState)}]`, p);
    }
    move(p, LIVE);
    return p;
  }

  /** A freed block whose covering flush completed: zeroed into the VMID's pool (share) or queued for reclaim (donate). */
  function flushed(p: Paddr, errors: unknown[]): void {
    if (mode === 'share') {
      const b = blockSize.get(p)!;
      try {
        memory.zero(p, b);
        memory.clean(p, b);
      } catch (e) {
        // The host could not scrub it: its ownership is not what this context assigned.
        move(p, QUARANTINED);
        s.quarantinedBlocks++;
        errors.push(e);
        return;
      }
      move(p, POOL);
      poolList(b).push(p);
    } else {
      move(p, DIRTY);
      dirty.push(p);
    }
  }

  const base = definePlugin(inner, {
    caps: { name, minSize: 64, defersFree: true, reuse: 'after-flush', zeroes: mode === 'share' ? 'on-free' : 'backing', mayFail: true, assignsPages: true },
    alloc(size: number, ctx: AllocCtx): Paddr | null {
      if (!isPowerOfTwo(size) || size < 64 || size > inner.caps.maxSize) {
        throw new AllocatorMisuseError(name, 'size', `alloc size ${describeValue(size)} is not a power of two in [64, ${inner.caps.maxSize}]`);
      }
      const block = blockFor(size);
      const p = handOut(block);
      if (p !== null) {
        s.poolHits++;
        return p;
      }
      if (!ctx.mayBlock || ctx.phase === 'run') {
        // The secure call sleeps: never in atomic or fence-signalling context.
        s.refusedNoBlock++;
        return null;
      }
      const perCall = Math.max(1, Math.floor((batch * pageSize) / block));
      if (assignBatch(block, perCall, ctx) === 0) return null;
      return handOut(block);
    },
    free(paddr: Paddr, size: number, ctx?: FreeCtx): void {
      const state = where.get(paddr);
      if (state !== LIVE) {
        const rule = state === undefined ? 'foreign-free' : 'double-free';
        throw new AllocatorMisuseError(name, rule, `free of ${describeValue(paddr)} (size ${describeValue(size)}), which is not a live table`, paddr);
      }
      const block = blockSize.get(paddr)!;
      if (!Number.isSafeInteger(size) || size <= 0 || blockFor(size) !== block) {
        throw new AllocatorMisuseError(name, 'free-size', `free of ${describeValue(paddr)} with size ${describeValue(size)}, but the block is ${block} bytes`, paddr);
      }
      move(paddr, PENDING);
      // Shared pending list (allocator-api): released by the flush that covers the free.
      if (isFlushed(ctx)) {
        const errors: unknown[] = [];
        flushed(paddr, errors);
        raise(errors);
      } else pending.add(paddr, block, ctx);
    },
    flushDone(token?: FlushToken): void {
      const errors: unknown[] = [];
      pending.release(token, (p) => flushed(p, errors));
      try {
        if (opts.reclaimOnFlush === true) unassign(takeExcess(poolTarget));
      } finally {
        raise(errors);
      }
    },
    stats(): AllocatorStats {
      return {
        ...EMPTY_STATS,
        outstanding: held,
        live: bytes[LIVE]!,
        pendingFlush: bytes[PENDING]!,
        cached: bytes[POOL]! + bytes[DIRTY]! + bytes[RETURNING]!,
        quarantined: bytes[QUARANTINED]!,
        liveTables: counts[LIVE]!,
        backingCalls,
      };
    },
    drain(): void {
      try {
        unassign(takeExcess(0));
      } finally {
        inner.drain?.();
      }
    },
  });

  function prefill(count: number, size = pageSize): number {
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`prefill count must be an integer >= 0, got ${describeValue(count)}`);
    if (!isPowerOfTwo(size) || size < 64 || size > inner.caps.maxSize) throw new RangeError(`prefill size ${describeValue(size)} is not a power of two in [64, ${inner.caps.maxSize}]`);
    const block = blockFor(size);
    const perCall = Math.max(1, Math.floor((batch * pageSize) / block));
    const list = poolList(block);
    while (list.length < count) {
      if (assignBatch(block, Math.min(perCall, count - list.length)) === 0) break;
    }
    return list.length;
  }

  return Object.assign(base, {
    scm,
    vmid,
    mode,
    batch,
    poolTarget,
    accessControl,
    prefill,
    topUp(): number {
      unassign(takeExcess(poolTarget));
      return prefill(poolTarget);
    },
    reclaim(): number {
      return unassign(takeExcess(poolTarget));
    },
    pooled(size = pageSize): number {
      return pool.get(blockFor(size))?.length ?? 0;
    },
    secureStats(): SecureShareStats {
      return { ...s };
    },
  });
}

function describe(state: PageState): string {
  return [...state.perms].map(([v, p]) => `${v}:${p}`).join(', ');
}
