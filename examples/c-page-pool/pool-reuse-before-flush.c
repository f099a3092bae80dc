// SPDX-License-Identifier: MIT
/*
 * Deliberately broken: pool.c with free() recycling the page at once, before the flush
 * that covers it completes, while still declaring IOPGT_REUSE_AFTER_FLUSH. Under a no-op
 * tlb_flush_walk (Panthor) the walk cache may still point at the page when it is handed
 * out again: the conformance suite must reject it with rule reuse-before-flush.
 */
#define BROKEN_REUSE_BEFORE_FLUSH 1
#include "pool.c"
