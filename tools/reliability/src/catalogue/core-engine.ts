/**
 * Hostile-input cases of the core engine: driver flush callbacks that throw. Linux's flush
 * ops cannot fail; the model carries an unmap or a teardown through to its end, gives every
 * table back, and reports each failure as a typed FlushCallbackError. A tlbSync that throws
 * changes nothing (the gather keeps its frees; a retry completes the sync).
 */
import { FlushCallbackError, IotlbGather, PhysMemory, createPageTable, createSystemAllocator, type FlushOps } from '@io-pgtable/core';
import { RW, S1 } from './fixture.js';
import type { Case, CheckCase } from './types.js';

type Callback = 'tlbFlushWalk' | 'tlbFlushAll' | 'tlbAddPage' | 'tlbSync';

function must(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

/** Run `act` with driver callback `which` throwing; it must throw FlushCallbackError naming that callback. */
function flushCase(id: string, which: Callback, input: string, expected: string, act: (pt: ReturnType<typeof createPageTable>, gather: IotlbGather) => void, after: (f: { pt: ReturnType<typeof createPageTable>; system: ReturnType<typeof createSystemAllocator>; gather: IotlbGather }) => void): CheckCase {
  return {
    id,
    surface: 'check',
    category: 'leak-after-fault',
    where: `core: ${which}`,
    input,
    expected,
    run() {
      const system = createSystemAllocator({ memory: new PhysMemory() });
      let armed = false;
      const op = (name: Callback) => () => {
        if (armed && name === which) throw new Error(`driver: ${name} timed out`);
      };
      const tlb: FlushOps<unknown> = { tlbFlushWalk: op('tlbFlushWalk'), tlbFlushAll: op('tlbFlushAll'), tlbAddPage: op('tlbAddPage'), tlbSync: op('tlbSync'), deferred: which === 'tlbSync' };
      const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator: system, tlb, mode: 'kernel' });
      must(pt.mapPages(0x1000, 0x1_0000_0000, 0x1000, 2, [...RW]).mapped === 0x2000, 'setup map');
      const gather = new IotlbGather();
      armed = true;
      let thrown: unknown;
      try {
        act(pt, gather);
      } catch (e) {
        thrown = e;
      }
      armed = false;
      must(thrown instanceof FlushCallbackError, `expected FlushCallbackError, got ${String(thrown)}`);
      must((thrown as FlushCallbackError).failures[0]?.callback === which, `the error names ${(thrown as FlushCallbackError).failures[0]?.callback}`);
      after({ pt, system, gather });
    },
  };
}

export const CASES: readonly Case[] = [
  flushCase(
    'core-tlb-flush-walk-throws',
    'tlbFlushWalk',
    'tlbFlushWalk throws while an unmap of 1 GiB removes the tables below it',
    'FlushCallbackError; the unmap completes and every table it unlinked is freed (used to leak them)',
    (pt, g) => pt.unmapPages(0, 0x4000_0000, 1, g),
    ({ pt, system }) => {
      must(pt.iovaToPhys(0x1000) === 0, 'still mapped');
      pt.free();
      must(system.stats().outstanding === 0, `${system.stats().outstanding} bytes leaked`);
    },
  ),
  flushCase(
    'core-tlb-add-page-throws',
    'tlbAddPage',
    'tlbAddPage throws for every page of an unmap',
    'FlushCallbackError listing each page; every page is still added and the unmap completes',
    (pt, g) => pt.unmapPages(0x1000, 0x1000, 2, g),
    ({ pt }) => must(pt.iovaToPhys(0x1000) === 0 && pt.iovaToPhys(0x2000) === 0, 'the unmap did not complete'),
  ),
  flushCase(
    'core-tlb-flush-all-throws',
    'tlbFlushAll',
    'tlbFlushAll throws in free()',
    'FlushCallbackError; teardown completes and every table is back (used to hold them all, free() marked done)',
    (pt) => pt.free(),
    ({ pt, system }) => must(pt.isFreed && system.stats().outstanding === 0, `${system.stats().outstanding} bytes held`),
  ),
  flushCase(
    'core-tlb-sync-throws',
    'tlbSync',
    'tlbSync throws in iotlbSync (deferred flush ops) after an unmap freed tables',
    'FlushCallbackError; nothing changes (the gather keeps its frees) and a retry completes the sync',
    (pt, g) => {
      pt.unmapPages(0, 0x4000_0000, 1, g);
      pt.iotlbSync(g);
    },
    ({ pt, system, gather }) => {
      must(pt.unsyncedGathers === 1, 'the failed sync released the gather');
      pt.iotlbSync(gather);
      must(pt.unsyncedGathers === 0, 'the retry did not sync');
      pt.free();
      pt.iotlbSync();
      must(system.stats().outstanding === 0, `${system.stats().outstanding} bytes leaked`);
    },
  ),
];
