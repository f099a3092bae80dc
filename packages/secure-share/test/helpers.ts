import type { AllocCtx, TableAllocator } from '@io-pgtable/allocator-api';
import { withBatching } from '@io-pgtable/batched';
import { withPagePool } from '@io-pgtable/page-pool';
import { PhysMemory, createSystemAllocator, type SystemAllocator } from '@io-pgtable/core';
import { createScmMock, withSecureShare, type ScmMockOptions, type SecureShareOptions } from '../src/index.js';

export const VM_A = 10;
export const VM_B = 11;
export const PAGE = 4096;
export const PREPARE: AllocCtx = Object.freeze({ mayBlock: true, phase: 'prepare' });
/** Panthor passes GFP_KERNEL into map_pages even in the run phase: mayBlock must be ignored. */
export const RUN: AllocCtx = Object.freeze({ mayBlock: true, phase: 'run' });
export const ATOMIC: AllocCtx = Object.freeze({ mayBlock: false });
export const BLOCKING: AllocCtx = Object.freeze({ mayBlock: true });

export interface SetupOptions extends Partial<Omit<SecureShareOptions, 'scm'>> {
  scm?: ScmMockOptions;
  failWhen?: (callIndex: number, size: number) => boolean;
}

/** Memory, a system allocator over it, a monitor mock and one secure-share context (VMID A). */
export function setup(o: SetupOptions = {}) {
  const { scm: scmOpts, failWhen, ...share } = o;
  const memory = new PhysMemory();
  const backing: SystemAllocator = createSystemAllocator(failWhen ? { memory, failWhen } : { memory });
  const scm = createScmMock(scmOpts);
  const alloc = withSecureShare(backing, { scm, vmid: VM_A, ...share });
  return { memory, backing, scm, alloc };
}

/**
 * A backing allocator that hands out pages full of garbage, as `alloc_page` without
 * __GFP_ZERO does: only the plugin's own zeroing can make the table read as zero.
 */
export function dirtyBacking(inner: SystemAllocator): TableAllocator {
  return {
    ...inner,
    alloc(size, ctx) {
      const p = inner.alloc(size, ctx);
      if (p !== null) inner.memory.fill(p, Math.max(size, 4096), 0xa5);
      return p;
    },
    free: (p, size) => inner.free(p, size),
    flushDone: () => inner.flushDone(),
    stats: () => inner.stats(),
  };
}


/** The stacks secure-share runs on: every layer below it is one more public `free`. */
export const STACKS: ReadonlyArray<[string, (memory: PhysMemory) => TableAllocator]> = [
  ['system', (memory) => createSystemAllocator({ memory })],
  ['page-pool > system', (memory) => withPagePool(createSystemAllocator({ memory }), { highWatermark: 4 })],
  ['batched > system', (memory) => withBatching(createSystemAllocator({ memory }), { batch: 4 })],
  ['page-pool > batched > system', (memory) => withPagePool(withBatching(createSystemAllocator({ memory }), { batch: 2 }), { zero: 'on-free', highWatermark: 2 })],
];

export { thrown } from '@io-pgtable/conformance';
