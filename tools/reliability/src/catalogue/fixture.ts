/** The default fixture API cases run on, and the snapshot that must not change. */
import { PhysMemory, createPageTable, createSystemAllocator, hw } from '@io-pgtable/core';
import type { Fixture } from './types.js';

const BASE = 0x8000_0000;
export const FIXTURE_LIMIT = 0x40_0000;
export const S1 = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
export const RW = ['read', 'write'] as const;

/** A 48-bit 4K stage-1 table with a page at 0x1000, a 2 MiB block at 0x4000_0000 and two pages at 2^39. */
export function makeFixture(): Fixture {
  const memory = new PhysMemory();
  const allocator = createSystemAllocator({ memory, base: BASE, limit: FIXTURE_LIMIT });
  const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator });
  pt.mapPages(0x1000, 0x1_0000_0000, 0x1000, 1, [...RW]);
  pt.mapPages(0x4000_0000, 0x2_0000_0000, 0x20_0000, 1, ['read']);
  pt.mapPages(0x80_0000_0000, 0x3_0000_0000, 0x1000, 2, [...RW]);
  return { pt, allocator, memory, region: [BASE, FIXTURE_LIMIT], extra: {} };
}

/**
 * Everything observable: the tree, the page table's and every allocator layer's stats, a
 * hash of the fixture's memory, and whatever the fixture's `observe` adds.
 * (Not the system allocator's `allocCalls`: a rejected `alloc(100)` still advances it.)
 */
export function snapshot(f: Fixture): string {
  // The device's view: a table assigned away from the host refuses pt.tables() (a host read).
  const tables = f.pt.isFreed ? [] : [...hw.deviceTables(f.pt)].map(([a, e]) => [a, [...e].map(([i, v]) => [i, v.toString(16)])]);
  let h = 0x811c9dc5;
  const [base, bytes] = f.region;
  for (let p = base; p < base + bytes; p += 0x1000) {
    if (f.memory.isZero(p, 0x1000)) continue;
    const w = f.memory.readWords(p, 0x1000);
    h = Math.imul(h ^ p, 0x01000193) >>> 0;
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w[i]!, 0x01000193) >>> 0;
  }
  const layers = [];
  for (let a: Fixture['allocator'] | undefined = f.allocator; a; a = a.inner) layers.push(a.stats());
  return JSON.stringify({ tables, pt: f.pt.isFreed ? 'freed' : f.pt.stats(), layers, mem: h, more: f.observe?.() ?? null });
}
