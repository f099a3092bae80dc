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
