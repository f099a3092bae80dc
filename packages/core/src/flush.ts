/**
 * Flush completion for freed tables (contract v2): which FlushToken covers a free, and
 * what `iotlbSync` does. Two regimes, declared by the flush ops:
 *  - synchronous (default): `tlbFlushWalk`/`tlbFlushAll` complete the invalidation
 *    before returning, so a table is freed under a token that is already done;
 *  - deferred (`FlushOps.deferred`): they do not (Panthor), so tables are freed under
 *    the gather's pending token, completed by `pt.iotlbSync(gather)`.
 * Unsynced gathers are counted, and (dev mode) a gather garbage-collected with pending
 * frees emits a process warning.
 */
import type { FlushToken } from '@io-pgtable/allocator-api';
import { FlushCallbackError, IoPgtableError } from './errors.js';
import { IotlbGather, completeToken, completedToken, renewToken } from './gather.js';
import type { FlushOps } from './types.js';

/** Dev-mode detector of gathers dropped with pending frees (NODE_ENV !== 'production'). */
const dropped: FinalizationRegistry<string> | null = (() => {
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined>; emitWarning?: (m: string, o: object) => void } }).process;
  if (typeof FinalizationRegistry !== 'function' || proc?.env?.NODE_ENV === 'production') return null;
  return new FinalizationRegistry<string>((what) => {
    proc?.emitWarning?.(`[iopgt] [core] an IotlbGather holding ${what} was garbage-collected without pt.iotlbSync(gather): those tables are never released for reuse`, {
      code: 'IOPGT_UNSYNCED_GATHER',
    });
  });
})();

export class FlushTracker {
  /** Gathers (including the page table's own) holding frees not yet synced. */
  unsynced = 0;
  /** Collects frees that come with no gather: a block replacing a table, a null-gather unmap, teardown. */
  readonly own = new IotlbGather();

  constructor(
    readonly deferred: boolean,
    private readonly tlb: FlushOps<unknown>,
    private readonly cookie: unknown,
    /** The allocator stack's flushDone, or undefined for raw cfg hooks. */
    private readonly flushDone: ((t: FlushToken) => void) | undefined,
    private readonly label: string,
  ) {}

  /** May `gather` carry frees of this page table? (One page table per pending gather.) */
  check(gather: IotlbGather | null): void {
    if (gather !== null && gather._pendingOn !== null && gather._pendingOn !== this) {
      throw new IoPgtableError('EINVAL', 'this gather holds unsynced frees of another page table: call iotlbSync(gather) on that page table first');
    }
  }

  /** The token a table freed now, through `gather`, is freed under. */
  tokenFor(gather: IotlbGather | null): FlushToken {
    if (!this.deferred) return completedToken();
    const g = gather ?? this.own;
    if (g._pendingOn === null) {
      g._pendingOn = this;
      this.unsynced++;
      if (g !== this.own) dropped?.register(g, `frees of a ${this.label} page table under flush token ${g._token.id}`, g);
    }
    return g._token;
  }

  /**
   * iotlb_sync: the driver's `tlbSync`, then the token is done, the allocator stack is
   * told (`flushDone(token)`), and the gather starts over with a fresh token.
   */
  sync(gather: IotlbGather | undefined): void {
    const g = gather ?? this.own;
    this.check(g);
    try {
      this.tlb.tlbSync?.(g, this.cookie);
    } catch (error) {
      // The sync did not happen: nothing changes, the gather keeps its frees (retry).
      throw new FlushCallbackError([{ callback: 'tlbSync', error }]);
    }
    const token = g._token;
    completeToken(token);
    if (g._pendingOn === this) {
      this.unsynced--;
      dropped?.unregister(g);
    }
    renewToken(g);
    g.reset();
    try {
      this.flushDone?.(token);
    } catch (error) {
      // The project's typed errors (an allocator's misuse or accounting findings) pass through.
      if (error instanceof Error && error.message.startsWith('[iopgt] [')) throw error;
      throw new FlushCallbackError([{ callback: 'flushDone', error }]);
    }
  }
}
