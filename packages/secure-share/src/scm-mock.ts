/**
 * A model of the secure monitor's memory-assignment service (Qualcomm's
 * `qcom_scm_assign_mem`): who owns each physical page, with which permissions, and what
 * every call would have cost. Nothing here talks to hardware; the point is to make the
 * ownership rules observable and checkable.
 */
import { describeValue } from '@io-pgtable/allocator-api';

/** VMID of the host OS in Qualcomm's numbering (QCOM_SCM_VMID_HLOS). */
export const HLOS_VMID = 3;

/** Permission bits of a destination record, as the SCM interface encodes them. */
export const ScmPerm = {
  EXEC: 1,
  WRITE: 2,
  READ: 4,
  RW: 6,
  RWX: 7,
} as const;

/** Largest VMID: owner sets are 64-bit masks (`BIT(vmid)`), as in the SCM call. */
export const MAX_VMID = 63;

/** A physically contiguous range, page-aligned at both ends. */
export interface PhysRange {
  readonly paddr: number;
  readonly size: number;
}

/** One destination of an assignment: the VM and the access it gets. */
export interface ScmDestination {
  readonly vmid: number;
  /** A non-zero combination of {@link ScmPerm} bits. */
  readonly perm: number;
}

/** Ownership of one page. Objects are interned: pages in the same state share one. */
export interface PageState {
  /** Bitmask of owning VMIDs (`1n << BigInt(vmid)`); 0n when the state is unknown. */
  readonly owners: bigint;
  /** Permission of each owner. Empty when the state is unknown. */
  readonly perms: ReadonlyMap<number, number>;
  /** What the host OS may do with the page (0 when it is not an owner). */
  readonly hlosPerm: number;
  /** A failed call left the page in a state the firmware does not report. */
  readonly unknown: boolean;
}

/** Why the monitor refused or failed a call. */
export type ScmFailReason =
  | 'bad-range'
  | 'empty-destinations'
  | 'bad-vmid'
  | 'bad-perm'
  | 'bad-src'
  | 'src-mismatch'
  | 'not-owner'
  | 'injected';

/** One line of the call log. */
export interface ScmCallRecord {
  /** 0-based index of the call. */
  readonly index: number;
  /** The VM that made the call: HLOS for {@link ScmMock.assign}; the VM itself for a secure-share context giving donated pages back. */
  readonly caller: number;
  readonly ranges: readonly PhysRange[];
  readonly src: bigint;
  readonly destinations: readonly ScmDestination[];
  /** Pages the call covers (0 when the ranges themselves were refused). */
  readonly pageCount: number;
  readonly ok: boolean;
  readonly reason?: ScmFailReason;
  /** The owner mask after a successful call. */
  readonly newOwners?: bigint;
  /** A failed call made the ranges' state unknown. */
  readonly stateUnknown?: boolean;
  /** Modelled duration of this call, in nanoseconds. */
  readonly costNs: number;
}

/**
 * The monitor refused or failed an assignment. `code` is the errno the kernel wrapper
 * returns (-EINVAL for firmware errors since the 2025 fix). When `stateUnknown` is true
 * the pages of the call may be in any state and must never be touched again.
 */
export class ScmError extends Error {
  override readonly name = 'ScmError';
  readonly code = 'EINVAL' as const;
  constructor(
    readonly reason: ScmFailReason,
    readonly callIndex: number,
    readonly stateUnknown: boolean,
    message: string,
  ) {
    super(`[iopgt] [scm-mock] ${reason}: ${message}`);
  }
}

/** How an injected failure behaves. */
export interface ScmFaultOptions {
  /** Leave the call's pages in the 'unknown' state, as the firmware documents. Default false. */
  readonly leaveUnknown?: boolean;
}

export interface ScmMockOptions {
  /** Granule of ownership tracking in bytes (default 4096, the CPU page). */
  readonly pageSize?: number;
  /** VMID of the host OS (default {@link HLOS_VMID}). */
  readonly hlos?: number;
  /** Modelled cost of one call: world switch and argument marshalling, ns (default 50,000). */
  readonly callNs?: number;
  /** Modelled cost per page covered: stage-2 updates and TLB maintenance, ns (default 1,000). */
  readonly pageNs?: number;
  /**
   * Most pages one call may cover (default 65,536: 256 MiB of 4 KiB pages). A larger
   * call is refused (`bad-range`) before any page is looked at: ownership is tracked per
   * page, so a hostile size must not cost time or memory in proportion to it.
   */
  readonly maxCallPages?: number;
  /**
   * Fault injection: called for every well-formed call with its 0-based index; return
   * true (or `{leaveUnknown}`) to make it fail.
   */
  readonly failWhen?: (callIndex: number, pageCount: number) => boolean | ScmFaultOptions;
}

/** The mocked secure monitor. */
export interface ScmMock {
  readonly pageSize: number;
  readonly hlos: number;
  /**
   * The host OS (HLOS) asks to move the pages of `range` (one range or a list: one call
   * covers many pages) from the owners `src` to `destinations`. Succeeds only when `src`
   * equals the current owner mask of every page and HLOS is in `src`: a VM can only give
   * away what it holds, so the host can never take back (or re-give) a page donated to
   * another VM alone. Returns the new owner mask.
   * @throws ScmError on bad arguments, a mismatched `src` or a `src` without HLOS
   * (`not-owner`) (no state change), or on an injected failure (no state change unless
   * it leaves the state unknown).
   */
  assign(range: PhysRange | readonly PhysRange[], src: bigint, destinations: readonly ScmDestination[]): bigint;
  /** Ownership of the page containing `paddr` (interned; compare by identity). */
  stateAt(paddr: number): PageState;
  /** Interned state for a destination list: what a successful assign to it produces. */
  stateFor(destinations: readonly ScmDestination[]): PageState;
  /**
   * First page in `[paddr, paddr + size)` whose host permissions lack any bit of `need`,
   * or -1. The access-control guard calls this on every CPU write, so it is kept cheap.
   */
  firstDenied(paddr: number, size: number, need: number): number;
  /** Make the next `count` calls fail (by call index: a call refused for bad arguments uses one up). */
  failNext(count: number, opts?: ScmFaultOptions): void;
  /** Make the call with 0-based index `callIndex` fail. */
  failAt(callIndex: number, opts?: ScmFaultOptions): void;
  /** Every call so far, successful or not. */
  readonly log: readonly ScmCallRecord[];
  /** Calls so far, successful or not (= log.length). */
  readonly calls: number;
  readonly failedCalls: number;
  /** Pages moved by successful calls. */
  readonly pagesMoved: number;
  /** Modelled time of all calls so far, in nanoseconds. */
  readonly modelledNs: number;
  /** Pages whose state is not the default `{HLOS: RWX}`. */
  readonly trackedPages: number;
}

/** Mask with the bit of every VMID given. */
export function vmidMask(...vmids: number[]): bigint {
  let m = 0n;
  for (const v of vmids) m |= 1n << BigInt(v);
  return m;
}

/** VMIDs in a mask, ascending. */
export function maskVmids(mask: bigint): number[] {
  const out: number[] = [];
  for (let v = 0; v <= MAX_VMID; v++) if ((mask >> BigInt(v)) & 1n) out.push(v);
  return out;
}

const MASK_LIMIT = 1n << 64n;

/** Create a secure-monitor mock in which every page starts owned by HLOS with RWX. */
export function createScmMock(opts: ScmMockOptions = {}): ScmMock {
  const pageSize = opts.pageSize ?? 4096;
  const hlos = opts.hlos ?? HLOS_VMID;
  const callNs = opts.callNs ?? 50_000;
  const pageNs = opts.pageNs ?? 1_000;
  const maxCallPages = opts.maxCallPages ?? 1 << 16;
  if (!Number.isSafeInteger(pageSize) || pageSize < 64 || (pageSize & (pageSize - 1)) !== 0) {
    throw new RangeError(`pageSize must be a power of two >= 64, got ${describeValue(pageSize)}`);
  }
  if (!isVmid(hlos)) throw new RangeError(`hlos VMID must be an integer in [0, ${MAX_VMID}], got ${describeValue(hlos)}`);
  if (!(callNs >= 0) || !(pageNs >= 0)) throw new RangeError('callNs and pageNs must be >= 0');
  if (!Number.isSafeInteger(maxCallPages) || maxCallPages < 1) throw new RangeError(`maxCallPages must be an integer >= 1, got ${describeValue(maxCallPages)}`);

  // Interned states, keyed by their sorted destination list; `pages` holds only pages
  // that are not in the default state, so an untouched machine costs nothing.
  const states = new Map<string, PageState>();
  const defaultState = intern([{ vmid: hlos, perm: ScmPerm.RWX }]);
  const unknownState: PageState = Object.freeze({ owners: 0n, perms: new Map(), hlosPerm: 0, unknown: true });
  const pages = new Map<number, PageState>();
  const log: ScmCallRecord[] = [];
  const injected = new Map<number, ScmFaultOptions>();
  let failSpans: { readonly from: number; readonly to: number; readonly o: ScmFaultOptions }[] = [];
  let failedCalls = 0;
  let pagesMoved = 0;
  let modelledNs = 0;

  function isVmid(v: unknown): v is number {
    return Number.isInteger(v) && (v as number) >= 0 && (v as number) <= MAX_VMID;
  }

  function keyOf(dest: readonly ScmDestination[]): string {
    return dest
      .map((d) => `${d.vmid}:${d.perm}`)
      .sort()
      .join(',');
  }

  function intern(dest: readonly ScmDestination[]): PageState {
    const key = keyOf(dest);
    let s = states.get(key);
    if (s === undefined) {
      const perms = new Map<number, number>();
      let owners = 0n;
      for (const d of [...dest].sort((a, b) => a.vmid - b.vmid)) {
        perms.set(d.vmid, d.perm);
        owners |= 1n << BigInt(d.vmid);
      }
      s = Object.freeze({ owners, perms, hlosPerm: perms.get(hlos) ?? 0, unknown: false });
      states.set(key, s);
    }
    return s;
  }

  function pageIndex(paddr: number): number {
    return Math.floor(paddr / pageSize);
  }

  /** Validate the arguments; returns a refusal reason or the page count. */
  function validate(caller: number, ranges: readonly PhysRange[], src: bigint, dest: readonly ScmDestination[]): ScmFailReason | number {
    if (ranges.length === 0) return 'bad-range';
    let count = 0;
    const sorted: PhysRange[] = [];
    for (const r of ranges) {
      if (r === null || typeof r !== 'object') return 'bad-range';
      const { paddr, size } = r;
      if (!Number.isSafeInteger(paddr) || !Number.isSafeInteger(size) || paddr < 0 || size <= 0) return 'bad-range';
      if (paddr % pageSize !== 0 || size % pageSize !== 0 || paddr + size > Number.MAX_SAFE_INTEGER) return 'bad-range';
      sorted.push(r);
      count += size / pageSize;
    }
    sorted.sort((a, b) => a.paddr - b.paddr);
    for (let i = 1; i < sorted.length; i++) {
      if (sorted[i - 1]!.paddr + sorted[i - 1]!.size > sorted[i]!.paddr) return 'bad-range';
    }
    if (dest.length === 0) return 'empty-destinations';
    const seen = new Set<number>();
    for (const d of dest) {
      if (d === null || typeof d !== 'object' || !isVmid(d.vmid) || seen.has(d.vmid)) return 'bad-vmid';
      seen.add(d.vmid);
      if (!Number.isInteger(d.perm) || d.perm < 1 || d.perm > ScmPerm.RWX) return 'bad-perm';
    }
    if (typeof src !== 'bigint' || src <= 0n || src >= MASK_LIMIT) return 'bad-src';
    // The caller must be one of the owners it names: the monitor knows who issued the call.
    if (((src >> BigInt(caller)) & 1n) === 0n) return 'not-owner';
    if (count > maxCallPages) return 'bad-range';
    for (const r of ranges) if (!ownedBy(pageIndex(r.paddr), r.size / pageSize, src)) return 'src-mismatch';
    return count;
  }

  /**
   * Every page of `[first, first + count)` is owned by exactly `src`. Untracked pages are
   * in the default state, so a range larger than the tracked set is checked through the
   * tracked set: the cost is bounded by the smaller of the two, never by a hostile size.
   */
  function ownedBy(first: number, count: number, src: bigint): boolean {
    if (count <= pages.size) {
      for (let p = first, end = first + count; p < end; p++) {
        const s = pages.get(p) ?? defaultState;
        if (s.unknown || s.owners !== src) return false;
      }
      return true;
    }
    // More pages than are tracked: some page of the range is untracked (default state).
    if (defaultState.owners !== src) return false;
    for (const [p, s] of pages) if (p >= first && p < first + count && (s.unknown || s.owners !== src)) return false;
    return true;
  }

  function setRanges(ranges: readonly PhysRange[], state: PageState): void {
    for (const r of ranges) {
      for (let p = pageIndex(r.paddr), end = p + r.size / pageSize; p < end; p++) {
        if (state === defaultState) pages.delete(p);
        else pages.set(p, state);
      }
    }
  }

  function fault(index: number, pageCount: number): ScmFaultOptions | null {
    const planned = injected.get(index);
    if (planned !== undefined) {
      injected.delete(index);
      return planned;
    }
    failSpans = failSpans.filter((f) => f.to > index);
    const span = failSpans.find((f) => f.from <= index);
    if (span !== undefined) return span.o;
    const r = opts.failWhen?.(index, pageCount);
    if (r === undefined || r === false) return null;
    return r === true ? {} : r;
  }

  function call(caller: number, range: PhysRange | readonly PhysRange[], src: bigint, destinations: readonly ScmDestination[]): bigint {
    const index = log.length;
    const ranges: readonly PhysRange[] = Array.isArray(range)
      ? (range as readonly PhysRange[]).map((r) => ({ paddr: r?.paddr, size: r?.size }))
      : [{ paddr: (range as PhysRange)?.paddr, size: (range as PhysRange)?.size }];
    const dest: readonly ScmDestination[] = Array.isArray(destinations)
      ? destinations.map((d) => ({ vmid: d?.vmid, perm: d?.perm }))
      : [];
    const checked = validate(caller, ranges, src, dest);
    const pageCount = typeof checked === 'number' ? checked : 0;
    const costNs = callNs + pageNs * pageCount;
    modelledNs += costNs;
    const base = { index, caller, ranges, src, destinations: dest, pageCount, costNs };
    if (typeof checked !== 'number') {
      failedCalls++;
      log.push({ ...base, ok: false, reason: checked });
      throw new ScmError(checked, index, false, `call ${index} by VMID ${caller} refused (src ${describeValue(src)}, ${ranges.length} range(s), ${dest.length} destination(s))`);
    }
    const f = fault(index, pageCount);
    if (f !== null) {
      failedCalls++;
      const unknown = f.leaveUnknown === true;
      if (unknown) setRanges(ranges, unknownState);
      log.push({ ...base, ok: false, reason: 'injected', stateUnknown: unknown });
      throw new ScmError('injected', index, unknown, `call ${index} failed (injected)${unknown ? '; state of its pages is unknown' : ''}`);
    }
    const state = intern(dest);
    setRanges(ranges, state);
    pagesMoved += pageCount;
    log.push({ ...base, ok: true, newOwners: state.owners });
    return state.owners;
  }

  const scm: ScmMock = {
    pageSize,
    hlos,
    assign(range, src, destinations) {
      return call(hlos, range, src, destinations);
    },
    stateAt(paddr) {
      return pages.get(pageIndex(paddr)) ?? defaultState;
    },
    stateFor(destinations) {
      return intern(destinations);
    },
    firstDenied(paddr, size, need) {
      if (pages.size === 0) return -1;
      const first = pageIndex(paddr);
      const last = pageIndex(paddr + Math.max(size, 1) - 1);
      if (last - first < pages.size) {
        for (let p = first; p <= last; p++) {
          const s = pages.get(p);
          if (s !== undefined && (s.hlosPerm & need) !== need) return p * pageSize;
        }
        return -1;
      }
      // A range wider than the tracked set: scan the tracked pages instead (bounded cost).
      let found = -1;
      for (const [p, s] of pages) {
        if (p >= first && p <= last && (s.hlosPerm & need) !== need && (found < 0 || p < found)) found = p;
      }
      return found < 0 ? -1 : found * pageSize;
    },
    failNext(count, o = {}) {
      if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`[iopgt] [scm-mock] failNext count must be an integer >= 0, got ${describeValue(count)}`);
      // One interval, not one entry per call: a huge count costs nothing.
      if (count > 0) failSpans.push({ from: log.length, to: log.length + count, o });
    },
    failAt(callIndex, o = {}) {
      if (!Number.isSafeInteger(callIndex) || callIndex < log.length) {
        throw new RangeError(`call ${describeValue(callIndex)} is not in the future (next call is ${log.length})`);
      }
      injected.set(callIndex, o);
    },
    get log() {
      return log;
    },
    get calls() {
      return log.length;
    },
    get failedCalls() {
      return failedCalls;
    },
    get pagesMoved() {
      return pagesMoved;
    },
    get modelledNs() {
      return modelledNs;
    },
    get trackedPages() {
      return pages.size;
    },
  };
  vmCalls.set(scm, (vmid, range, src, destinations) => {
    if (!isVmid(vmid) || vmid === hlos) throw new RangeError(`[iopgt] [scm-mock] ${describeValue(vmid)} is not a guest VMID`);
    return call(vmid, range, src, destinations);
  });
  return scm;
}

type VmCall = (vmid: number, range: PhysRange | readonly PhysRange[], src: bigint, destinations: readonly ScmDestination[]) => bigint;

/**
 * Calls made by a guest VM rather than the host, per monitor made by {@link createScmMock}.
 * Module-private: not on the mock, not exported from the package, so no holder of a public
 * object can act as the VM that owns a donated page.
 */
const vmCalls = new WeakMap<ScmMock, VmCall>();

/**
 * Internal to this package (not re-exported): `vmid` itself asks the monitor to move
 * pages it owns. Secure-share uses it only to give back blocks it donated itself, as a
 * guest that cooperates with the host does. Throws TypeError for a monitor not made by
 * {@link createScmMock} (a structural lookalike has no guest side).
 */
export function assignAsVm(scm: ScmMock, vmid: number, range: PhysRange | readonly PhysRange[], src: bigint, destinations: readonly ScmDestination[]): bigint {
  const f = vmCalls.get(scm);
  if (f === undefined) throw new TypeError('[iopgt] [scm-mock] this monitor was not made by createScmMock: no guest VM can call it');
  return f(vmid, range, src, destinations);
}

/** Whether `scm` has a guest side (made by {@link createScmMock}). Internal to this package. */
export function hasGuestSide(scm: ScmMock): boolean {
  return vmCalls.has(scm);
}
