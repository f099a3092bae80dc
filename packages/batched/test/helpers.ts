import { assertAccounting, type AllocCtx, type FreeCtx, type TableAllocator } from '@io-pgtable/allocator-api';
import { createSystemAllocator, type SystemAllocator, type SystemAllocatorOptions } from '@io-pgtable/core';

/** The bottom allocator plus a log of what reached it. */
export interface Traced {
  readonly system: SystemAllocator;
  readonly allocator: TableAllocator;
  readonly log: { allocCtx: AllocCtx[]; freed: number[]; freeCtx: (FreeCtx | undefined)[]; flushes: number };
}

/** `defersFree` only changes the declared caps, so the plugin settles what it returns. */
export function traced(opts: SystemAllocatorOptions & { defersFree?: boolean } = {}): Traced {
  const system = createSystemAllocator(opts);
  const log = { allocCtx: [] as AllocCtx[], freed: [] as number[], freeCtx: [] as (FreeCtx | undefined)[], flushes: 0 };
  const allocator: TableAllocator = {
    caps: { ...system.caps, defersFree: opts.defersFree ?? false },
    memory: system.memory,
    alloc: (size, ctx) => (log.allocCtx.push(ctx), system.alloc(size, ctx)),
    free: (paddr, size, ctx) => (log.freed.push(paddr), log.freeCtx.push(ctx), system.free(paddr, size)),
    flushDone: () => void log.flushes++,
    stats: () => system.stats(),
  };
  return { system, allocator, log };
}

/** Identity on `top`, and what `top` holds from below is exactly what the system has live. */
export function checkHeld(top: TableAllocator, t: Traced): void {
  const held = assertAccounting(top).outstanding;
  const live = assertAccounting(t.system).live;
  if (held !== live) throw new Error(`${top.caps.name} holds ${held} bytes but the system has ${live} live`);
}

/**
 * A two-layer stack seen as one allocator: `top`'s verbs, and stats that count what the
 * whole stack holds from the backing store. Each layer's `stats()` counts only what it
 * holds from the layer right below it (the contract), so the conformance suite, which
 * checks the top's `outstanding` against what the backing store handed out, needs this
 * view: bytes `bottom` holds idle or pending are added to the top's, and the identity
 * still only holds if `bottom.live` equals what `top` says it holds.
 */
export function stackView(top: TableAllocator, bottom: TableAllocator): TableAllocator {
  const view: TableAllocator = {
    caps: top.caps,
    memory: top.memory,
    alloc: (size, ctx) => top.alloc(size, ctx),
    free: (paddr, size, ctx) => top.free(paddr, size, ctx),
    flushDone: (token) => top.flushDone(token),
    drain: () => top.drain?.(),
    stats() {
      const u = top.stats();
      const l = bottom.stats();
      if (l.live !== u.outstanding) throw new Error(`${bottom.caps.name} has ${l.live} bytes live but ${top.caps.name} holds ${u.outstanding}`);
      return {
        outstanding: l.outstanding,
        live: u.live,
        cached: u.cached + l.cached,
        reserved: u.reserved + l.reserved,
        pendingFlush: u.pendingFlush + l.pendingFlush,
        quarantined: u.quarantined + l.quarantined,
        liveTables: u.liveTables,
        backingCalls: l.backingCalls,
      };
    },
  };
  return view;
}
