import type { FlushToken } from '@io-pgtable/allocator-api';

let nextTokenId = 1;
let complete: (t: GatherFlushToken) => void;

/**
 * The core's {@link FlushToken}: created by the core, completed only by the core (when
 * the invalidation covering the frees made under it has finished), read by allocators.
 */
export class GatherFlushToken implements FlushToken {
  readonly id = nextTokenId++;
  #done = false;
  get done(): boolean {
    return this.#done;
  }
  static {
    complete = (t) => {
      t.#done = true;
    };
  }
}

/** A token that is already complete: frees made after a synchronous invalidation. */
export function completedToken(): GatherFlushToken {
  const t = new GatherFlushToken();
  complete(t);
  return t;
}

/** Mark `t` complete (core only: the page table's iotlbSync). */
export function completeToken(t: GatherFlushToken): void {
  complete(t);
}

/**
 * struct iommu_iotlb_gather: what an unmap accumulates for the driver's `iotlb_sync`.
 * `queued` means a flush-queue will flush everything later, so io-pgtable skips
 * `tlb_add_page`. `add` extends the range as iommu_iotlb_gather_add_page does.
 *
 * Contract v2: every gather owns a {@link FlushToken}. With deferred flush ops, tables
 * freed by an unmap through this gather are freed under its token, which `pt.iotlbSync`
 * completes (and then replaces with a fresh one).
 */
export class IotlbGather {
  queued: boolean;
  /** Lowest IOVA added (signed-64 number form), or +Infinity when empty. */
  start = Infinity;
  /** One past the highest IOVA added, or -Infinity when empty. */
  end = -Infinity;
  /** Size of the entries gathered (the kernel tracks one pgsize per gather). */
  pgsize = 0;
  /** Number of entries added. */
  count = 0;
  /** @internal the current token; replaced by {@link renewToken}. */
  _token = new GatherFlushToken();
  /** @internal the page table (flush state) holding frees under the current token, if any. */
  _pendingOn: object | null = null;

  constructor(opts: { queued?: boolean } = {}) {
    this.queued = opts.queued ?? false;
  }

  /** The flush that covers the tables freed under this gather since its last sync. */
  get token(): FlushToken {
    return this._token;
  }

  add(iova: number, size: number): void {
    if (iova < this.start) this.start = iova;
    if (iova + size > this.end) this.end = iova + size;
    this.pgsize = size;
    this.count++;
  }

  get isEmpty(): boolean {
    return this.count === 0;
  }

  /** Forget the gathered range (iommu_iotlb_gather_init). The token is kept until a sync. */
  reset(): void {
    this.start = Infinity;
    this.end = -Infinity;
    this.pgsize = 0;
    this.count = 0;
  }
}

/** After a sync: a fresh token, nothing pending. */
export function renewToken(g: IotlbGather): void {
  g._token = new GatherFlushToken();
  g._pendingOn = null;
}
