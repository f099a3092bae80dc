import { assertAccounting, type AllocCtx, type FreeCtx, type Paddr, type TableAllocator } from '@io-pgtable/allocator-api';
import { createSystemAllocator, type SystemAllocator, type SystemAllocatorOptions } from '@io-pgtable/core';

/** A system allocator whose traffic the test can see: every ctx, every free, every flush. */
export interface Backing extends TableAllocator {
  readonly system: SystemAllocator;
  readonly ctxs: AllocCtx[];
  readonly frees: Array<[Paddr, number]>;
  /** The FreeCtx of each free, in order (undefined for a v1 free). */
  readonly freeCtxs: Array<FreeCtx | undefined>;
  readonly flushes: number;
}

/** `defersFree` only changes the declared caps: it makes the plugin treat the backing as deferring. */
export function spyBacking(opts: SystemAllocatorOptions & { defersFree?: boolean } = {}): Backing {
  const system = createSystemAllocator(opts);
  const ctxs: AllocCtx[] = [];
  const frees: Array<[Paddr, number]> = [];
  const freeCtxs: Array<FreeCtx | undefined> = [];
  let flushes = 0;
  return {
    system,
    ctxs,
    frees,
    freeCtxs,
    get flushes() {
      return flushes;
    },
    caps: { ...system.caps, defersFree: opts.defersFree ?? false },
    memory: system.memory,
    alloc(size, ctx) {
      ctxs.push(ctx);
      return system.alloc(size, ctx);
    },
    free(paddr, size, ctx) {
      frees.push([paddr, size]);
      freeCtxs.push(ctx);
      system.free(paddr, size);
    },
    flushDone() {
      flushes++;
    },
    stats: () => system.stats(),
  };
}

/** The identity holds on the plugin, and what it says it holds is exactly what the backing handed it. */
export function assertLayered(top: TableAllocator, backing: Backing): void {
  const s = assertAccounting(top);
  assertAccounting(backing);
  if (s.outstanding !== backing.stats().live) {
    throw new Error(`plugin outstanding ${s.outstanding} != backing live ${backing.stats().live}`);
  }
}
