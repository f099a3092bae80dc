/**
 * A C allocator as a stack of `io-pgtable simulate` / `compare` (`--stack file.wasm`):
 * the shape of the CLI's stack registry entries, written structurally so this package
 * does not depend on the CLI.
 */
import { basename } from 'node:path';
import type { AllocCtx, TableAllocator } from '@io-pgtable/allocator-api';
import { createCAllocator, type CAllocator, type CMemory } from './allocator.js';
import { tablesForJob, type CountGeometry } from './count.js';
import { compileCAllocator, type CAllocatorModule } from './module.js';

/** What the simulator hands a stack. */
export interface CStackEnv {
  readonly memory: CMemory;
  /** The bottom (page) allocator, already counted by the simulator. */
  readonly system: TableAllocator;
  readonly contexts: number;
}

export interface CStackMetrics {
  backingCalls?: number;
  reservedTables?: number;
  usedTables?: number;
  refusedJobs?: number;
}

export interface CStackInstance {
  allocators: TableAllocator[];
  hooks?: {
    runCtx?: AllocCtx;
    runJob?(ctx: number, job: { ops: readonly { kind: 'map' | 'unmap'; iova: number; size: number }[] }, pt: { geometry: CountGeometry }, run: () => void): boolean;
  };
  metrics(): CStackMetrics;
  teardown(): void;
}

export interface CStackDef {
  name: string;
  description: string;
  /** null when the wasm loads, else why it does not (the stack is then reported as skipped). */
  unavailable(): string | null;
  build(env: CStackEnv): CStackInstance;
}

const RUN_CTX: AllocCtx = Object.freeze({ mayBlock: false, phase: 'run' });

/**
 * A stack entry for the C allocator in `path`: one instance per device, shared by every
 * context (as a driver's pool is). When the C code implements the reservation ops, every
 * job is prepared with Panthor's count, run in the run phase and released.
 *
 * @example
 * io-pgtable compare --stack alloc.wasm   // the CLI calls stackFromWasm('alloc.wasm')
 */
export function stackFromWasm(path: string, opts: { name?: string } = {}): CStackDef {
  let mod: CAllocatorModule | undefined;
  let error: string | null = null;
  const load = (): CAllocatorModule => (mod ??= compileCAllocator(path));
  return {
    name: opts.name ?? `c:${basename(path, '.wasm')}`,
    description: `C allocator ${path} (wasm), one instance per device over the system allocator`,
    unavailable() {
      try {
        load();
        error = null;
      } catch (e) {
        error = (e as Error).message;
      }
      return error;
    },
    build(env) {
      const alloc: CAllocator = createCAllocator(load(), { backing: env.system, memory: env.memory });
      let reserved = 0;
      let used = 0;
      let refused = 0;
      const instance: CStackInstance = {
        allocators: Array<TableAllocator>(env.contexts).fill(alloc),
        metrics: () => ({
          backingCalls: alloc.stats().backingCalls,
          ...(alloc.supportsReservation ? { reservedTables: reserved, usedTables: used, refusedJobs: refused } : {}),
        }),
        teardown: () => alloc.drain(),
      };
      if (alloc.supportsReservation) {
        instance.hooks = {
          runCtx: RUN_CTX,
          runJob(_ctx, job, pt, run) {
            const r = alloc.reserve(tablesForJob(pt.geometry, job.ops), pt.geometry.granule);
            if (r === null) {
              refused++;
              return false;
            }
            try {
              r.run(run);
              reserved += r.reserved;
              used += r.consumed;
            } finally {
              r.release();
            }
            return true;
          },
        };
      }
      return instance;
    },
  };
}
