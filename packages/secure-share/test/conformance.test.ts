import type { TableAllocator } from '@io-pgtable/allocator-api';
import { describeAllocatorConformance, type ConformanceEnv, type PageOwnership, type SecureShareAdapter, type SharePerm } from '@io-pgtable/conformance';
import { HLOS_VMID, createScmMock, maskVmids, withSecureShare, type SecureShareAllocator, type ShareMode } from '../src/index.js';
import { VM_A, VM_B } from './helpers.js';

/** Per allocator under test: its backing, and the contexts of the other VMIDs (same monitor, same backing). */
const worlds = new WeakMap<SecureShareAllocator, { backing: TableAllocator; contexts: Map<number, SecureShareAllocator> }>();

function build(env: ConformanceEnv, mode: ShareMode): SecureShareAllocator {
  const a = withSecureShare(env.backing, { scm: createScmMock(), vmid: VM_A, mode, batch: 4, poolTarget: 4 });
  worlds.set(a, { backing: env.backing, contexts: new Map([[VM_A, a]]) });
  return a;
}

const PERM_NAMES: Readonly<Record<number, SharePerm>> = { 4: 'r', 6: 'rw', 7: 'rwx' };

const secureShare: SecureShareAdapter<SecureShareAllocator> = {
  hlos: HLOS_VMID,
  vmids: [VM_A, VM_B],
  forVmid(a, vmid) {
    const w = worlds.get(a)!;
    let ctx = w.contexts.get(vmid);
    if (ctx === undefined) {
      // Created on first use, so groups that never share with B see a single context.
      ctx = withSecureShare(w.backing, { scm: a.scm, vmid, mode: a.mode, batch: a.batch, poolTarget: a.poolTarget });
      w.contexts.set(vmid, ctx);
    }
    return ctx;
  },
  ownership(a, paddr): PageOwnership {
    const s = a.scm.stateAt(paddr);
    const perms: Record<number, SharePerm> = {};
    for (const [vmid, perm] of s.perms) {
      const name = PERM_NAMES[perm];
      if (name === undefined) throw new Error(`permission ${perm} has no SharePerm name`);
      perms[vmid] = name;
    }
    return { owners: maskVmids(s.owners), perms };
  },
  smcCalls: (a) => a.scm.calls,
  failNextAssigns: (a, n) => a.scm.failNext(n),
  donating: (env) => build(env, 'donate'),
  violations: (a) => a.accessControl?.violations.length ?? 0,
};

describeAllocatorConformance<SecureShareAllocator>('withSecureShare', (env) => build(env, 'share'), {
  secureShare,
  // The other VMIDs' contexts give their idle pages back with this one's.
  teardown(a) {
    for (const ctx of worlds.get(a)?.contexts.values() ?? []) {
      if (ctx === a) continue;
      ctx.flushDone();
      ctx.drain!();
    }
  },
});
