// SPDX-License-Identifier: MIT
/*
 * A free-list page pool with deferred free, written against io_pgtable_alloc.h.
 *
 * - One free list per table size (64 B .. 1 MiB). A hit pops the most recently freed
 *   page and zeroes it (through the host: the IOMMU model sees the write); a miss takes a
 *   page from the backing store with the caller's gfp.
 * - free() never recycles a page at once: the page waits on a pending list, tagged with
 *   the flush token it was freed under, until flush_done() reports that token (or every
 *   flush) complete. Only a free the host marks IOPGT_FREE_FLUSHED (the walk flush already
 *   ran) goes straight to the free list.
 * - Above HIGH_WATERMARK idle pages of a size, completed frees go back to the backing store.
 *
 * Bookkeeping lives in static arrays (wasm linear memory); table pages are only ever
 * touched through iopgt_* calls.
 */
#include "io_pgtable_alloc.h"

#define MAX_NODES 65536u /* pages the pool can track at once (idle + pending) */
#define CLASSES 15u      /* 64 B (2^6) .. 1 MiB (2^20) */
#define HIGH_WATERMARK 64u
#define NIL 0xffffffffu

struct node {
  iopgt_pa_t pa;
  iopgt_flush_t flush; /* token the page was freed under (pending pages only) */
  iopgt_u32 next;
  iopgt_u32 cls;
};

static struct node nodes[MAX_NODES];
static iopgt_u32 spare = NIL;           /* returned nodes */
static iopgt_u32 fresh;                 /* nodes [fresh, MAX_NODES) never used yet */            /* unused nodes */
static iopgt_u32 idle[CLASSES];          /* per-size free lists (LIFO) */
static iopgt_u32 idle_count[CLASSES];
static iopgt_u32 pending = NIL;          /* freed pages waiting for their flush */
static iopgt_u64 cached_bytes, pending_bytes;

static iopgt_u32 class_of(iopgt_size_t size) { return (iopgt_u32)(__builtin_ctz((unsigned)size) - 6); }
static iopgt_size_t size_of(iopgt_u32 cls) { return (iopgt_size_t)64 << cls; }

static iopgt_u32 node_get(void) {
  if (spare == NIL) {
    IOPGT_ASSERT(fresh < MAX_NODES); /* more pages held at once than MAX_NODES: raise it */
    return fresh++;
  }
  iopgt_u32 n = spare;
  spare = nodes[n].next;
  return n;
}

static void node_put(iopgt_u32 n) {
  nodes[n].next = spare;
  spare = n;
}

/* A page whose flush completed: keep it idle, or give it back above the watermark. */
static void settle(iopgt_u32 n) {
  iopgt_u32 cls = nodes[n].cls;
  if (idle_count[cls] >= HIGH_WATERMARK) {
    iopgt_backing_free(nodes[n].pa, size_of(cls));
    node_put(n);
    return;
  }
  nodes[n].next = idle[cls];
  idle[cls] = n;
  idle_count[cls]++;
  cached_bytes += size_of(cls);
}

static void *pool_init(void) {
  for (iopgt_u32 c = 0; c < CLASSES; c++) idle[c] = NIL;
  return NULL;
}

static iopgt_pa_t pool_alloc(void *cookie, iopgt_size_t size, iopgt_gfp_t gfp) {
  (void)cookie;
  iopgt_u32 cls = class_of(size);
  iopgt_u32 n = idle[cls];
  if (n == NIL) return iopgt_backing_alloc(size, gfp); /* zeroed by the backing store */
  idle[cls] = nodes[n].next;
  idle_count[cls]--;
  cached_bytes -= size;
  iopgt_pa_t pa = nodes[n].pa;
  node_put(n);
  iopgt_zero(pa, size);
  return pa;
}

static void pool_free(void *cookie, iopgt_pa_t pa, iopgt_size_t size, iopgt_u32 flags, iopgt_flush_t flush) {
  (void)cookie;
  iopgt_u32 n = node_get();
  nodes[n].pa = pa;
  nodes[n].cls = class_of(size);
#ifdef BROKEN_REUSE_BEFORE_FLUSH
  /* The bug: the page is recycled at once, although the walk cache may still hold it. */
  (void)flags;
  (void)flush;
  settle(n);
#else
  if (flags & IOPGT_FREE_FLUSHED) {
    settle(n);
    return;
  }
  nodes[n].flush = (flags & IOPGT_FREE_NO_TOKEN) ? IOPGT_FLUSH_ALL : flush;
  nodes[n].next = pending;
  pending = n;
  pending_bytes += size;
#endif
}

static void pool_flush_done(void *cookie, iopgt_flush_t flush) {
  (void)cookie;
  iopgt_u32 *link = &pending;
  while (*link != NIL) {
    iopgt_u32 n = *link;
    if (flush == IOPGT_FLUSH_ALL || nodes[n].flush == flush) {
      *link = nodes[n].next;
      pending_bytes -= size_of(nodes[n].cls);
      settle(n);
    } else {
      link = &nodes[n].next;
    }
  }
}

static void pool_drain(void *cookie) {
  (void)cookie;
  for (iopgt_u32 c = 0; c < CLASSES; c++) {
    while (idle[c] != NIL) {
      iopgt_u32 n = idle[c];
      idle[c] = nodes[n].next;
      iopgt_backing_free(nodes[n].pa, size_of(c));
      cached_bytes -= size_of(c);
      node_put(n);
    }
    idle_count[c] = 0;
  }
}

static void pool_stats(void *cookie, struct iopgt_stats *out) {
  (void)cookie;
  out->cached = cached_bytes;
  out->pending_flush = pending_bytes;
}

static const struct iopgt_ops ops = {
#ifdef BROKEN_REUSE_BEFORE_FLUSH
    .caps = {.name = "c-pool-reuse-before-flush", .min_size = 64, .max_size = 1u << 20, .reuse = IOPGT_REUSE_AFTER_FLUSH, .zeroes = IOPGT_ZERO_ON_ALLOC},
#else
    .caps = {.name = "c-pool", .min_size = 64, .max_size = 1u << 20, .reuse = IOPGT_REUSE_AFTER_FLUSH, .zeroes = IOPGT_ZERO_ON_ALLOC},
#endif
    .init = pool_init,
    .alloc = pool_alloc,
    .free = pool_free,
    .flush_done = pool_flush_done,
    .stats = pool_stats,
    .drain = pool_drain,
};
IOPGT_REGISTER(ops);
