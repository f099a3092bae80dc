import { definePlugin, type TableAllocator } from '@io-pgtable/allocator-api';

/** How often the page table called into this layer. */
export interface CallCounts {
  alloc: number;
  free: number;
  flushDone: number;
}

/** A {@link TableAllocator} that also exposes its call counts. */
export interface CountingAllocator extends TableAllocator {
  readonly counts: Readonly<CallCounts>;
}

/**
 * Wrap `inner` and count every alloc, free and flushDone that passes through.
 * Everything else (capabilities, memory, zeroing, deferred frees) is the inner
 * allocator's: a pure decorator must not change behaviour, only observe it.
 */
export function withCounting(inner: TableAllocator): CountingAllocator {
  const counts: CallCounts = { alloc: 0, free: 0, flushDone: 0 };
  const plugin = definePlugin(inner, {
    caps: { name: `counting(${inner.caps.name})` },
    alloc(size, ctx) {
      counts.alloc++;
      return inner.alloc(size, ctx);
    },
    free(paddr, size) {
      counts.free++;
      inner.free(paddr, size);
    },
    // definePlugin forwards flushDone to `inner` after this hook.
    flushDone() {
      counts.flushDone++;
    },
    // Same bytes as the layer below; only the number of calls into it is ours.
    stats: () => ({ ...inner.stats(), backingCalls: counts.alloc }),
  });
  return Object.assign(plugin, { counts });
}
