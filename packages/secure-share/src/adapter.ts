/**
 * The conformance suite's secure-share adapter (`@io-pgtable/conformance`,
 * `options.secureShare`), written structurally so this package does not depend on the
 * suite at run time (as reservation's adapter). The suite asks for a context per VMID,
 * reads page ownership from the mock monitor, counts and fails its calls, and builds a
 * donating configuration.
 *
 * @example
 * import { describeAllocatorConformance } from '@io-pgtable/conformance';
 * import { secureShareConformanceAdapter, withSecureShare, createScmMock } from '@io-pgtable/secure-share';
 * const secureShare = secureShareConformanceAdapter();
 * describeAllocatorConformance('secure-share', (env) => withSecureShare(env.backing, { scm: createScmMock(), vmid: 10 }), {
 *   secureShare,
 *   teardown: (a) => secureShare.releaseContexts(a),
 * });
 */
import type { TableAllocator } from '@io-pgtable/allocator-api';
import { createScmMock, maskVmids } from './scm-mock.js';
import { withSecureShare, type SecureShareAllocator, type SecureShareOptions } from './secure-share.js';

/** Access one VM has to a page, as the suite names it. */
export type SharePermName = 'r' | 'rw' | 'rwx';

/** What the suite hands a factory (structural copy of `ConformanceEnv`). */
export interface ConformanceEnvLike {
  readonly backing: TableAllocator;
  readonly memory: unknown;
}

export interface SecureShareConformanceAdapter {
  readonly hlos: number;
  readonly vmids: readonly number[];
  forVmid(allocator: SecureShareAllocator, vmid: number): TableAllocator;
  ownership(allocator: SecureShareAllocator, paddr: number): { owners: number[]; perms: Record<number, SharePermName> };
  smcCalls(allocator: SecureShareAllocator): number;
  failNextAssigns(allocator: SecureShareAllocator, n: number): void;
  donating(env: ConformanceEnvLike): SecureShareAllocator;
  violations(allocator: SecureShareAllocator): number;
  /**
   * Give back what the other VMIDs' contexts of `allocator` hold (flush, then drain):
   * pass it as the suite's `teardown` option so the leak check sees the whole backing.
   */
  releaseContexts(allocator: SecureShareAllocator): void;
}

export interface SecureShareAdapterOptions {
  /** VMIDs the suite shares tables with; the first is the factory's (default [10, 11]). */
  readonly vmids?: readonly [number, number, ...number[]];
  /** Options of the donating configuration and of every extra context (besides scm/vmid/mode). */
  readonly options?: Partial<Omit<SecureShareOptions, 'scm' | 'vmid' | 'mode'>>;
}

const PERM_NAMES: Readonly<Record<number, SharePermName>> = { 4: 'r', 6: 'rw', 7: 'rwx' };

/**
 * Build the adapter. Contexts for other VMIDs are made on first use over the same monitor
 * and the same backing allocator (`allocator.inner`) as the factory's allocator, with its
 * mode, batch and pool target.
 */
export function secureShareConformanceAdapter(opts: SecureShareAdapterOptions = {}): SecureShareConformanceAdapter {
  const vmids = opts.vmids ?? [10, 11];
  const contexts = new WeakMap<SecureShareAllocator, Map<number, SecureShareAllocator>>();
  const contextsOf = (a: SecureShareAllocator): Map<number, SecureShareAllocator> => {
    let m = contexts.get(a);
    if (m === undefined) contexts.set(a, (m = new Map([[a.vmid, a]])));
    return m;
  };
  return {
    hlos: createScmMock().hlos,
    vmids,
    forVmid(a, vmid) {
      const m = contextsOf(a);
      let ctx = m.get(vmid);
      if (ctx === undefined) {
        if (a.inner === undefined) throw new Error(`[iopgt] [${a.caps.name}] has no inner allocator to build a context for VMID ${vmid} on`);
        ctx = withSecureShare(a.inner, { ...opts.options, scm: a.scm, vmid, mode: a.mode, batch: a.batch, poolTarget: a.poolTarget });
        m.set(vmid, ctx);
      }
      return ctx;
    },
    ownership(a, paddr) {
      const s = a.scm.stateAt(paddr);
      const perms: Record<number, SharePermName> = {};
      for (const [vmid, perm] of s.perms) {
        const name = PERM_NAMES[perm];
        if (name === undefined) throw new Error(`[iopgt] [${a.caps.name}] permission ${perm} has no conformance name`);
        perms[vmid] = name;
      }
      return { owners: maskVmids(s.owners), perms };
    },
    smcCalls: (a) => a.scm.calls,
    failNextAssigns: (a, n) => a.scm.failNext(n),
    donating: (env) => withSecureShare(env.backing, { ...opts.options, scm: createScmMock(), vmid: vmids[0], mode: 'donate' }),
    violations: (a) => a.accessControl?.violations.length ?? 0,
    releaseContexts(a) {
      for (const ctx of contexts.get(a)?.values() ?? []) {
        if (ctx === a) continue;
        ctx.flushDone();
        ctx.drain?.();
      }
    },
  };
}
