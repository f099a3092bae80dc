import type { AllocatorStats, TableAllocator } from './allocator.js';
import { AccountingError } from './errors.js';

/** Stats of an allocator that holds nothing: the starting point for every plugin. */
export const EMPTY_STATS: AllocatorStats = Object.freeze({
  outstanding: 0,
  live: 0,
  cached: 0,
  reserved: 0,
  pendingFlush: 0,
  quarantined: 0,
  liveTables: 0,
  backingCalls: 0,
});

/** `live + cached + reserved + pendingFlush + quarantined`: what `outstanding` must equal. */
export function accountedBytes(s: AllocatorStats): number {
  return s.live + s.cached + s.reserved + s.pendingFlush + s.quarantined;
}

/**
 * Throws {@link AccountingError} unless `outstanding == live + cached + reserved +
 * pendingFlush + quarantined` (requirement 27). Call it at quiescent points: between
 * operations, never inside one.
 */
export function assertAccounting(allocator: TableAllocator): AllocatorStats {
  const s = allocator.stats();
  const accounted = accountedBytes(s);
  if (s.outstanding !== accounted) {
    throw new AccountingError(
      allocator.caps.name,
      `outstanding ${s.outstanding} != live ${s.live} + cached ${s.cached} + reserved ${s.reserved} + pendingFlush ${s.pendingFlush} + quarantined ${s.quarantined} (= ${accounted})`,
    );
  }
  for (const [k, v] of Object.entries(s)) {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new AccountingError(allocator.caps.name, `stat ${k} is ${v}, not a non-negative integer`);
    }
  }
  return s;
}

/** The layers of a stack, top first, following `inner`. */
export function stackLayers(allocator: TableAllocator): TableAllocator[] {
  const layers: TableAllocator[] = [];
  for (let a: TableAllocator | undefined = allocator; a !== undefined && !layers.includes(a); a = a.inner) layers.push(a);
  return layers;
}

/**
 * Teardown of a whole plugin stack: repeat `flushDone(); drain()` until no layer's stats
 * change (layers found through `inner`), and return the top layer's final stats. Needed
 * because a layer's drain can free pages into a lower layer that defers frees (a pool
 * under secure-share holds them as pending until the next flushDone), even when the top
 * layer itself is already empty. Call it only when every page table using the stack has
 * been freed and the driver's final TLB flush has completed: then every pending free is
 * covered, so the repeated flushDone is true. Throws AccountingError if the stack has not
 * settled after `maxRounds` rounds.
 */
export function drainAll(allocator: TableAllocator, maxRounds = 16): AllocatorStats {
  const layers = stackLayers(allocator);
  let prev = layers.map((l) => l.stats());
  for (let round = 0; round < maxRounds; round++) {
    allocator.flushDone();
    allocator.drain?.();
    const now = layers.map((l) => l.stats());
    if (now.every((s, i) => sameStats(prev[i]!, s))) return now[0]!;
    prev = now;
  }
  throw new AccountingError(allocator.caps.name, `stack did not settle after ${maxRounds} rounds of flushDone + drain`);
}

function sameStats(a: AllocatorStats, b: AllocatorStats): boolean {
  return (
    a.outstanding === b.outstanding &&
    a.live === b.live &&
    a.cached === b.cached &&
    a.reserved === b.reserved &&
    a.pendingFlush === b.pendingFlush &&
    a.quarantined === b.quarantined
  );
}
