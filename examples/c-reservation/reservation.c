// SPDX-License-Identifier: MIT
/*
 * A Panthor-style two-phase reservation allocator, written against io_pgtable_alloc.h.
 *
 * - reserve(n) runs when a VM_BIND job is created, where sleeping and failing are allowed:
 *   it takes n zeroed pages from the backing store for that job (all or nothing).
 * - Between run_begin and run_end the job runs in the dma-fence signalling path: every
 *   table allocation (gfp has IOPGT_GFP_RUN) consumes one of the job's reserved pages and
 *   never reaches the backing store; an exhausted reservation fails the allocation.
 * - release() gives back what the job did not consume, once.
 * - Outside a job (the PGD at VM creation) tables come straight from the backing store.
 * - Freed tables go back to the backing store only once the flush covering them completed.
 */
#include "io_pgtable_alloc.h"

#define MAX_NODES 65536u
#define MAX_JOBS 255u
#define NIL 0xffffffffu

struct node {
  iopgt_pa_t pa;
  iopgt_flush_t flush;
  iopgt_u32 size;
  iopgt_u32 next;
};

struct job {
  iopgt_u32 gen;      /* bumped on release, so a stale handle is recognised */
  iopgt_u32 active;   /* reserved and not released */
  iopgt_u32 pages;    /* list of reserved, unconsumed pages */
  iopgt_u32 left;
  iopgt_u32 consumed;
  iopgt_u32 size;
};

static struct node nodes[MAX_NODES];
static struct job jobs[MAX_JOBS];
static iopgt_u32 spare = NIL; /* returned nodes */
static iopgt_u32 fresh;       /* nodes [fresh, MAX_NODES) never used yet */
static iopgt_u32 pending = NIL;
static iopgt_u32 running; /* handle of the job between run_begin and run_end, or 0 */
static iopgt_u64 reserved_bytes, pending_bytes;
/* The flush id of a free whose flush had completed but which arrived during a run. */
#define FLUSHED_ANY (IOPGT_FLUSH_ALL - 1)

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

/*
 * A handle is (generation << 8) | (slot + 1): never 0 (0 means "could not reserve"), and
 * releasing twice or after the slot was reused is harmless.
 */
static struct job *job_of(iopgt_u32 handle) {
  iopgt_u32 slot = (handle & 0xffu) - 1u;
  if ((handle & 0xffu) == 0 || slot >= MAX_JOBS || !jobs[slot].active || jobs[slot].gen != (handle >> 8)) return NULL;
  return &jobs[slot];
}

static void give_back(struct job *j) {
  while (j->pages != NIL) {
    iopgt_u32 n = j->pages;
    j->pages = nodes[n].next;
    iopgt_backing_free(nodes[n].pa, nodes[n].size);
    reserved_bytes -= nodes[n].size;
    node_put(n);
  }
  j->left = 0;
}

static iopgt_u32 resv_reserve(void *cookie, iopgt_u32 tables, iopgt_u32 size) {
  (void)cookie;
  iopgt_u32 slot = 0;
  while (slot < MAX_JOBS && jobs[slot].active) slot++;
  if (slot == MAX_JOBS) return 0;
  struct job *j = &jobs[slot];
  j->pages = NIL;
  j->left = 0;
  j->consumed = 0;
  j->size = size;
  for (iopgt_u32 i = 0; i < tables; i++) {
    iopgt_pa_t pa = iopgt_backing_alloc(size, IOPGT_GFP_KERNEL | IOPGT_GFP_PREPARE);
    if (pa == 0) {
      give_back(j); /* all or nothing */
      return 0;
    }
    iopgt_u32 n = node_get();
    nodes[n].pa = pa;
    nodes[n].size = size;
    nodes[n].next = j->pages;
    j->pages = n;
    j->left++;
    reserved_bytes += size;
  }
  j->active = 1;
  return (j->gen << 8) | (slot + 1u);
}

static void resv_run_begin(void *cookie, iopgt_u32 handle) {
  (void)cookie;
  IOPGT_ASSERT(job_of(handle) != NULL);
  running = handle;
}

static void resv_run_end(void *cookie, iopgt_u32 handle) {
  (void)cookie;
  (void)handle;
  running = 0;
}

static void resv_release(void *cookie, iopgt_u32 handle) {
  (void)cookie;
  struct job *j = job_of(handle);
  if (j == NULL) return;
  give_back(j);
  j->active = 0;
  j->gen = (j->gen + 1) & 0xffffffu;
  if (running == handle) running = 0;
}

static iopgt_u32 resv_consumed(void *cookie, iopgt_u32 handle) {
  (void)cookie;
  struct job *j = job_of(handle);
  return j ? j->consumed : 0;
}

static iopgt_pa_t resv_alloc(void *cookie, iopgt_size_t size, iopgt_gfp_t gfp) {
  (void)cookie;
  struct job *j = job_of(running);
  if (j == NULL && !(gfp & IOPGT_GFP_RUN)) return iopgt_backing_alloc(size, gfp);
  if (j == NULL || size != j->size || j->pages == NIL) {
#ifdef BROKEN_CONSUME_UNRESERVED
    /* The bug: out of reserved pages, it takes an unreserved one in the signalling path. */
    return iopgt_backing_alloc(size, gfp);
#else
    return 0; /* exhausted: the run phase may not reach the backing store */
#endif
  }
  iopgt_u32 n = j->pages;
  j->pages = nodes[n].next;
  j->left--;
  j->consumed++;
  reserved_bytes -= size;
  iopgt_pa_t pa = nodes[n].pa;
  node_put(n);
  return pa; /* zeroed: fresh from the backing store at reserve time */
}

static void resv_free(void *cookie, iopgt_pa_t pa, iopgt_size_t size, iopgt_u32 flags, iopgt_flush_t flush) {
  (void)cookie;
  /* Flushed already: straight back, but never from inside a run (the fence path). */
  if ((flags & IOPGT_FREE_FLUSHED) && running == 0) {
    iopgt_backing_free(pa, size);
    return;
  }
  iopgt_u32 n = node_get();
  nodes[n].pa = pa;
  nodes[n].size = (iopgt_u32)size;
  /* A flushed free held back from a run goes at the next flush_done, whatever its id. */
  nodes[n].flush = (flags & IOPGT_FREE_NO_TOKEN) ? IOPGT_FLUSH_ALL : (flags & IOPGT_FREE_FLUSHED) ? FLUSHED_ANY : flush;
  nodes[n].next = pending;
  pending = n;
  pending_bytes += size;
}

static void resv_flush_done(void *cookie, iopgt_flush_t flush) {
  (void)cookie;
  iopgt_u32 *link = &pending;
  while (*link != NIL) {
    iopgt_u32 n = *link;
    int covered = flush == IOPGT_FLUSH_ALL || nodes[n].flush == flush || nodes[n].flush == FLUSHED_ANY;
    if (covered && running != 0) {
      /* No backing call from the run phase: remember the flush, release at the next flush_done. */
      nodes[n].flush = FLUSHED_ANY;
      link = &nodes[n].next;
    } else if (covered) {
      *link = nodes[n].next;
      pending_bytes -= nodes[n].size;
      iopgt_backing_free(nodes[n].pa, nodes[n].size);
      node_put(n);
    } else {
      link = &nodes[n].next;
    }
  }
}

static void resv_stats(void *cookie, struct iopgt_stats *out) {
  (void)cookie;
  out->reserved = reserved_bytes;
  out->pending_flush = pending_bytes;
}

static const struct iopgt_ops ops = {
#ifdef BROKEN_CONSUME_UNRESERVED
    .caps = {.name = "c-reservation-consumes-unreserved", .min_size = 64, .max_size = 1u << 20, .reuse = IOPGT_REUSE_AFTER_FLUSH, .zeroes = IOPGT_ZERO_BACKING, .may_fail = 1},
#else
    .caps = {.name = "c-reservation", .min_size = 64, .max_size = 1u << 20, .reuse = IOPGT_REUSE_AFTER_FLUSH, .zeroes = IOPGT_ZERO_BACKING, .may_fail = 1},
#endif
    .alloc = resv_alloc,
    .free = resv_free,
    .flush_done = resv_flush_done,
    .stats = resv_stats,
    .reserve = resv_reserve,
    .run_begin = resv_run_begin,
    .run_end = resv_run_end,
    .release = resv_release,
    .consumed = resv_consumed,
};
IOPGT_REGISTER(ops);
