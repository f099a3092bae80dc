/**
 * Fault injection over secure-share in donate mode ([VMID: RW]: the host may not write a
 * table page). Every map that needs a table write is refused with an access violation;
 * with the k-th backing allocation or the k-th secure call failed on top, every run must
 * still end with only typed outcomes, no table stranded, and every page back with the
 * host and the system allocator after teardown (except what secure-share quarantined).
 */
import { IoPgtableError, allocIoPgtableOps } from '@io-pgtable/core';
import { AccessViolationError } from '@io-pgtable/secure-share';
import type { FuzzConfig } from './configs.js';
import { assertStackAccounting, assertStackEmpty, donateStack, type Stack } from './stacks.js';

export interface DonateRun {
  error: string | null;
  /** Maps refused with an access violation, and maps that got ENOMEM. */
  refused: number;
  nomem: number;
  createFailed: boolean;
  backingCalls: number;
  secureCalls: number;
}

export interface DonatePlan {
  failBackingAt?: number;
  failSecureAt?: number;
}

/** Maps in `maps` windows of the address space, each needing a table below the PGD, then teardown. */
export function runDonate(cfg: FuzzConfig, plan: DonatePlan, maps = 6): DonateRun {
  const stack: Stack = donateStack({
    ...(plan.failBackingAt !== undefined ? { failWhen: (n: number) => n === plan.failBackingAt } : {}),
    ...(plan.failSecureAt !== undefined ? { scmFailWhen: (n: number) => n === plan.failSecureAt } : {}),
  });
  const out: DonateRun = { error: null, refused: 0, nomem: 0, createFailed: false, backingCalls: 0, secureCalls: 0 };
  const finish = (error: string | null): DonateRun => ({ ...out, error, backingCalls: stack.system.allocCalls, secureCalls: stack.secureCalls?.() ?? 0 });
  const pgsize = cfg.pgsizeBitmap & -cfg.pgsizeBitmap;
  try {
    const r = allocIoPgtableOps(cfg.format, { pgsizeBitmap: cfg.pgsizeBitmap, ias: cfg.ias, oas: cfg.oas, quirks: cfg.quirks, coherentWalk: cfg.coherentWalk }, { allocator: stack.allocator });
    if (!r.ok) {
      if (r.code !== 'ENOMEM') return finish(`creation failed with ${r.code}: ${r.reason}`);
      out.createFailed = true;
    } else {
      const pt = r.table;
      const top = cfg.quirks.includes('ARM_TTBR1') ? (1n << 64n) - (1n << BigInt(cfg.ias)) : 0n;
      for (let i = 0; i < maps; i++) {
        const iova = top + BigInt(i) * (1n << BigInt(cfg.ias - 3));
        const before = pt.stats().liveTables;
        try {
          const m = pt.mapPages(iova, 0x4000_0000, pgsize, 1, ['read', 'write'], { mayBlock: true });
          if (m.error !== 'ENOMEM') return finish(`map ${i} returned ${JSON.stringify(m)} on a donated table`);
          out.nomem++;
        } catch (e) {
          if (!(e instanceof AccessViolationError)) return finish(`map ${i} threw ${(e as Error).name}: ${(e as Error).message}`);
          out.refused++;
        }
        if (pt.stats().liveTables !== before) return finish(`map ${i} left ${pt.stats().liveTables - before} table(s) stranded`);
        assertStackAccounting(stack);
      }
      // Unmap reads the PGD first (READ_ONCE in the kernel): a donated PGD refuses that
      // host read; a PGD the host may read answers ENOENT. Either way nothing changes.
      try {
        const u = pt.unmapPages(top, pgsize, 1);
        if (u.error !== 'ENOENT') return finish(`unmap of nothing returned ${JSON.stringify(u)}`);
      } catch (e) {
        if (!(e instanceof AccessViolationError)) return finish(`unmap of nothing threw ${(e as Error).name}: ${(e as Error).message}`);
      }
      pt.free();
    }
    stack.drain();
    assertStackAccounting(stack);
    const left = assertStackEmpty(stack);
    if (left !== null) return finish(left);
    return finish(null);
  } catch (e) {
    const err = e as Error;
    return finish(`${err instanceof IoPgtableError ? 'IoPgtableError' : err.name}: ${err.message}`);
  }
}

export interface DonateCampaign {
  config: string;
  runs: number;
  backingCalls: number;
  secureCalls: number;
  refused: number;
  runsWithNomem: number;
  failures: string[];
}

/** Clean run, then each backing allocation k failed, then each secure call k failed. */
export function donateCampaign(cfg: FuzzConfig): DonateCampaign {
  const clean = runDonate(cfg, {});
  const res: DonateCampaign = { config: cfg.name, runs: 1, backingCalls: clean.backingCalls, secureCalls: clean.secureCalls, refused: clean.refused, runsWithNomem: 0, failures: [] };
  if (clean.error) return { ...res, failures: [`clean run: ${clean.error}`] };
  const record = (what: string, r: DonateRun) => {
    res.runs++;
    if (r.nomem > 0 || r.createFailed) res.runsWithNomem++;
    if (r.error) res.failures.push(`${what}: ${r.error}`);
  };
  for (let k = 0; k < clean.backingCalls; k++) record(`backing alloc #${k} failed`, runDonate(cfg, { failBackingAt: k }));
  for (let k = 0; k < clean.secureCalls; k++) record(`secure call #${k} failed`, runDonate(cfg, { failSecureAt: k }));
  return res;
}
