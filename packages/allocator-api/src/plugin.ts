import type {
  AllocCtx,
  AllocatorCaps,
  AllocatorStats,
  FlushToken,
  FreeCtx,
  Paddr,
  PhysMemoryAccess,
  TableAllocator,
} from './allocator.js';

/** What a decorator plugin writes: only the verbs it changes. */
export interface PluginParts {
  caps: Partial<AllocatorCaps> & { readonly name: string };
  alloc(size: number, ctx: AllocCtx): Paddr | null;
  free(paddr: Paddr, size: number, ctx?: FreeCtx): void;
  /** Own accounting; `backingCalls` defaults to the calls this plugin counted. */
  stats(): AllocatorStats;
  /** Drain own pending frees; `flushDone` is then forwarded to the inner allocator. */
  flushDone?(token?: FlushToken): void;
  drain?(): void;
}

/**
 * Build a decorator over `inner`: capabilities default to the inner allocator's,
 * `memory` is forwarded, `inner` is exposed for stack-wide tools, and `flushDone` runs the plugin's own drain first and then
 * forwards down the stack. Keeps every plugin to the logic that is really its own.
 */
export function definePlugin(inner: TableAllocator, parts: PluginParts): TableAllocator {
  const merged: AllocatorCaps = { ...inner.caps, ...parts.caps };
  // A v1 plugin that states defersFree but not reuse must not inherit the inner
  // allocator's reuse policy (a recycling pool over the immediate system allocator).
  if (parts.caps.reuse === undefined && parts.caps.defersFree !== undefined) {
    (merged as { reuse?: AllocatorCaps['reuse'] }).reuse = parts.caps.defersFree ? 'after-flush' : 'immediate';
  }
  const caps: AllocatorCaps = Object.freeze(merged);
  const memory: PhysMemoryAccess = inner.memory;
  const allocator: TableAllocator = {
    caps,
    inner,
    memory,
    alloc: parts.alloc,
    free: parts.free,
    stats: parts.stats,
    flushDone(token?: FlushToken) {
      parts.flushDone?.(token);
      inner.flushDone(token);
    },
  };
  if (parts.drain) allocator.drain = parts.drain;
  return allocator;
}
