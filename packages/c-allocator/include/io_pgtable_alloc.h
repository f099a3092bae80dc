/* SPDX-License-Identifier: MIT
 * Copyright (c) 2026 the io-pgtable authors
 *
 * io_pgtable_alloc.h: what a page-table allocator written in C codes against to run under
 * @io-pgtable/c-allocator (compiled with clang --target=wasm32, no libc).
 *
 * The shape follows the kernel's io-pgtable allocator hooks: the page table calls
 * alloc(cookie, size, gfp) for every table and free(cookie, pa, size, ...) when it drops
 * one; a flush-completion callback says when frees may be recycled. Physical addresses
 * are 64-bit (iopgt_pa_t) everywhere in C; the host converts them without loss.
 *
 * Memory model. The allocator's own bookkeeping (free lists, counters) lives in ordinary
 * C variables: the wasm module's linear memory. Table pages do NOT: they live in the
 * simulated physical memory of the page-table model and are reached only through the
 * iopgt_* calls below (get and put backing pages, zero, clean, read and write 64-bit
 * words), so the IOMMU model and access checks see every write the allocator makes.
 * Calls on pages this allocator does not hold from the backing store are refused.
 *
 * Usage: fill a struct iopgt_ops and register it once per program:
 *
 *     static const struct iopgt_ops ops = { .caps = {...}, .alloc = my_alloc, ... };
 *     IOPGT_REGISTER(ops);
 *
 * One wasm instance is one allocator; `init` (optional) returns the cookie passed to
 * every callback.
 */
#ifndef IO_PGTABLE_ALLOC_H
#define IO_PGTABLE_ALLOC_H

#if !defined(__wasm32__)
#error "io_pgtable_alloc.h targets wasm32: build with clang --target=wasm32 (see io-pgtable build-c)"
#endif

/* Fixed-width types without libc. */
typedef __UINT8_TYPE__ iopgt_u8;
typedef __UINT32_TYPE__ iopgt_u32;
typedef __UINT64_TYPE__ iopgt_u64;
typedef __SIZE_TYPE__ iopgt_size_t;
/** A physical address (0 = no page / allocation failure). */
typedef iopgt_u64 iopgt_pa_t;
/** Allocation flags, modelled on gfp_t; see IOPGT_GFP_*. */
typedef iopgt_u32 iopgt_gfp_t;
/** A flush token id: frees made under it may be recycled once it completes. */
typedef iopgt_u64 iopgt_flush_t;

#define IOPGT_ABI_VERSION 1u
#ifndef NULL
#define NULL ((void *)0)
#endif

/* ---- gfp: what an allocation is (the contract's AllocCtx) ---------------------------- */
/** Must not sleep: GFP_ATOMIC (the absence of IOPGT_GFP_KERNEL). */
#define IOPGT_GFP_ATOMIC 0x0u
/** May sleep: GFP_KERNEL (ctx.mayBlock). */
#define IOPGT_GFP_KERNEL 0x1u
/** The root table (ctx.kind == 'pgd'); otherwise a lower-level table. */
#define IOPGT_GFP_PGD 0x2u
/** VM_BIND prepare phase: may allocate from backing memory and fail. */
#define IOPGT_GFP_PREPARE 0x4u
/** VM_BIND run phase (dma-fence signalling path): may only consume reserved pages. */
#define IOPGT_GFP_RUN 0x8u
/** Set when the level bits hold the table's absolute level (0-3). */
#define IOPGT_GFP_HAS_LEVEL 0x80u
#define IOPGT_GFP_LEVEL_SHIFT 8
#define iopgt_gfp_level(gfp) (((gfp) >> IOPGT_GFP_LEVEL_SHIFT) & 0xfu)

/* ---- free flags (the contract's FreeCtx) ---------------------------------------------- */
/** The table freed is the root (PGD). Level bits as for gfp. */
#define IOPGT_FREE_PGD IOPGT_GFP_PGD
#define IOPGT_FREE_HAS_LEVEL IOPGT_GFP_HAS_LEVEL
/** The flush covering this free has already completed: the page may be recycled at once. */
#define IOPGT_FREE_FLUSHED 0x10u
/**
 * The caller gave no flush token (the kernel-faithful path): the page may be recycled
 * only after a flush_done(IOPGT_FLUSH_ALL).
 */
#define IOPGT_FREE_NO_TOKEN 0x20u
/** flush_done() argument meaning "every flush so far has completed". */
#define IOPGT_FLUSH_ALL (~(iopgt_flush_t)0)

/* ---- capabilities --------------------------------------------------------------------- */
/** Freed pages are recycled only after the flush covering them (safe under every regime). */
#define IOPGT_REUSE_AFTER_FLUSH 0u
/** Freed pages are recycled at once (safe only with synchronous walk flushes). */
#define IOPGT_REUSE_IMMEDIATE 1u
#define IOPGT_ZERO_ON_ALLOC 0u
#define IOPGT_ZERO_ON_FREE 1u
#define IOPGT_ZERO_BACKING 2u

struct iopgt_caps {
  const char *name;     /* used in every error message: [iopgt] [name] rule: ... */
  iopgt_u32 min_size;   /* smallest allocation served (power of two >= 64) */
  iopgt_u32 max_size;   /* largest allocation served (power of two) */
  iopgt_u32 reuse;      /* IOPGT_REUSE_* */
  iopgt_u32 zeroes;     /* IOPGT_ZERO_* */
  iopgt_u32 may_fail;   /* can alloc return 0 other than because the backing store did? */
};

/**
 * Accounting the allocator keeps itself, in bytes of backing memory. The host adds what
 * it observed at the boundary (outstanding backing bytes, live tables, backing calls) and
 * checks outstanding == live + cached + reserved + pending_flush + quarantined.
 */
struct iopgt_stats {
  iopgt_u64 cached;        /* idle pages ready to hand out */
  iopgt_u64 reserved;      /* pages reserved for a job and not consumed yet */
  iopgt_u64 pending_flush; /* freed pages waiting for their flush */
  iopgt_u64 quarantined;   /* pages held back for any other reason */
};

struct iopgt_ops {
  struct iopgt_caps caps;
  /** Optional: called once when the host creates the allocator; returns the cookie. */
  void *(*init)(void);
  /**
   * A zeroed table of `size` bytes (a power of two, >= 64), aligned to `size`, inside a
   * backing page this allocator holds; 0 when it cannot.
   */
  iopgt_pa_t (*alloc)(void *cookie, iopgt_size_t size, iopgt_gfp_t gfp);
  /**
   * The page table dropped the table at `pa`. `size` is what alloc was asked for (the host
   * has already rejected double, foreign and wrongly sized frees). The page must not be
   * handed out again before `flush` completes, unless `flags` has IOPGT_FREE_FLUSHED.
   */
  void (*free)(void *cookie, iopgt_pa_t pa, iopgt_size_t size, iopgt_u32 flags, iopgt_flush_t flush);
  /** The flush-completion callback: every free made under `flush` (or all: IOPGT_FLUSH_ALL) may be recycled. */
  void (*flush_done)(void *cookie, iopgt_flush_t flush);
  void (*stats)(void *cookie, struct iopgt_stats *out);
  /** Optional: give every idle page back with iopgt_backing_free (teardown, shrinker). */
  void (*drain)(void *cookie);
  /*
   * Optional two-phase reservation (Panthor's VM_BIND). reserve() runs at job creation
   * (may sleep and fail: take `tables` pages of `table_size` bytes from the backing store,
   * or give back what was taken and return 0) and returns a job handle > 0. Between
   * run_begin and run_end, allocations (gfp has IOPGT_GFP_RUN) may only consume that job's
   * reserved pages. release() gives back what the job did not consume, exactly once.
   */
  iopgt_u32 (*reserve)(void *cookie, iopgt_u32 tables, iopgt_u32 table_size);
  void (*run_begin)(void *cookie, iopgt_u32 job);
  void (*run_end)(void *cookie, iopgt_u32 job);
  void (*release)(void *cookie, iopgt_u32 job);
  iopgt_u32 (*consumed)(void *cookie, iopgt_u32 job);
};

/* ---- host imports (the simulated physical memory and the backing store) --------------- */
#define IOPGT_IMPORT(n) __attribute__((import_module("iopgt"), import_name(n)))
IOPGT_IMPORT("backing_alloc") int iopgt__backing_alloc(iopgt_u32 size, iopgt_u32 gfp, iopgt_pa_t *out);
IOPGT_IMPORT("backing_free") void iopgt__backing_free(iopgt_u32 lo, iopgt_u32 hi, iopgt_u32 size);
IOPGT_IMPORT("mem_zero") void iopgt__mem_zero(iopgt_u32 lo, iopgt_u32 hi, iopgt_u32 size);
IOPGT_IMPORT("mem_clean") void iopgt__mem_clean(iopgt_u32 lo, iopgt_u32 hi, iopgt_u32 size);
IOPGT_IMPORT("mem_is_zero") int iopgt__mem_is_zero(iopgt_u32 lo, iopgt_u32 hi, iopgt_u32 size);
IOPGT_IMPORT("mem_write64") void iopgt__mem_write64(iopgt_u32 lo, iopgt_u32 hi, iopgt_u32 vlo, iopgt_u32 vhi);
IOPGT_IMPORT("mem_read64") void iopgt__mem_read64(iopgt_u32 lo, iopgt_u32 hi, iopgt_u64 *out);
IOPGT_IMPORT("log") void iopgt__log(const char *msg, iopgt_u32 len);
IOPGT_IMPORT("assert_fail") __attribute__((noreturn)) void iopgt__assert_fail(const char *expr, const char *file, iopgt_u32 line);

#define IOPGT_LO(pa) ((iopgt_u32)(pa))
#define IOPGT_HI(pa) ((iopgt_u32)((pa) >> 32))

/** Take `size` bytes (a power of two) of zeroed backing memory; 0 when the store is out. */
static inline iopgt_pa_t iopgt_backing_alloc(iopgt_size_t size, iopgt_gfp_t gfp) {
  iopgt_pa_t pa = 0;
  return iopgt__backing_alloc((iopgt_u32)size, gfp, &pa) ? pa : 0;
}
/** Give back a block taken with iopgt_backing_alloc, whole, with the size it was taken with. */
static inline void iopgt_backing_free(iopgt_pa_t pa, iopgt_size_t size) { iopgt__backing_free(IOPGT_LO(pa), IOPGT_HI(pa), (iopgt_u32)size); }
static inline void iopgt_zero(iopgt_pa_t pa, iopgt_size_t size) { iopgt__mem_zero(IOPGT_LO(pa), IOPGT_HI(pa), (iopgt_u32)size); }
/** Clean (write back) the CPU cache for a range: visible to access control. */
static inline void iopgt_clean(iopgt_pa_t pa, iopgt_size_t size) { iopgt__mem_clean(IOPGT_LO(pa), IOPGT_HI(pa), (iopgt_u32)size); }
static inline int iopgt_is_zero(iopgt_pa_t pa, iopgt_size_t size) { return iopgt__mem_is_zero(IOPGT_LO(pa), IOPGT_HI(pa), (iopgt_u32)size); }
static inline void iopgt_write64(iopgt_pa_t pa, iopgt_u64 v) { iopgt__mem_write64(IOPGT_LO(pa), IOPGT_HI(pa), IOPGT_LO(v), IOPGT_HI(v)); }
static inline iopgt_u64 iopgt_read64(iopgt_pa_t pa) {
  iopgt_u64 v = 0;
  iopgt__mem_read64(IOPGT_LO(pa), IOPGT_HI(pa), &v);
  return v;
}
static inline void iopgt_log(const char *msg) {
  iopgt_u32 n = 0;
  while (msg[n] != 0 && n < 4096) n++;
  iopgt__log(msg, n);
}
/** A failed assertion stops the call with a typed error naming the allocator, the file and line. */
#define IOPGT_ASSERT(expr) ((expr) ? (void)0 : iopgt__assert_fail(#expr, __FILE__, __LINE__))

/* ---- the exported ABI: generated once per program by IOPGT_REGISTER(ops) --------------- */
#define IOPGT_EXPORT(n) __attribute__((export_name(n)))
#define IOPGT_FEATURE_DRAIN 0x1u
#define IOPGT_FEATURE_RESERVE 0x2u

/* The host reads 64-bit results from this scratch area (no i64 crosses the boundary). */
#define IOPGT_REGISTER(ops_var)                                                                          \
  static void *iopgt__cookie;                                                                            \
  static iopgt_u64 iopgt__scratch[4];                                                                    \
  IOPGT_EXPORT("iopgt_abi_version") iopgt_u32 iopgt__abi_version(void) { return IOPGT_ABI_VERSION; }      \
  IOPGT_EXPORT("iopgt_abi_scratch") iopgt_u64 *iopgt__abi_scratch(void) { return iopgt__scratch; }        \
  IOPGT_EXPORT("iopgt_abi_name") const char *iopgt__abi_name(void) { return (ops_var).caps.name; }       \
  IOPGT_EXPORT("iopgt_abi_cap") iopgt_u32 iopgt__abi_cap(iopgt_u32 i) {                                  \
    const struct iopgt_caps *c = &(ops_var).caps;                                                        \
    return i == 0 ? c->min_size : i == 1 ? c->max_size : i == 2 ? c->reuse : i == 3 ? c->zeroes : c->may_fail; \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_features") iopgt_u32 iopgt__abi_features(void) {                               \
    return ((ops_var).drain ? IOPGT_FEATURE_DRAIN : 0u) |                                                 \
           ((ops_var).reserve && (ops_var).run_begin && (ops_var).run_end && (ops_var).release &&          \
                    (ops_var).consumed                                                                    \
                ? IOPGT_FEATURE_RESERVE                                                                   \
                : 0u);                                                                                    \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_init") void iopgt__abi_init(void) {                                            \
    iopgt__cookie = (ops_var).init ? (ops_var).init() : NULL;                                             \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_alloc") void iopgt__abi_alloc(iopgt_u32 size, iopgt_u32 gfp) {                 \
    iopgt__scratch[0] = (ops_var).alloc(iopgt__cookie, size, gfp);                                        \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_free")                                                                         \
  void iopgt__abi_free(iopgt_u32 lo, iopgt_u32 hi, iopgt_u32 size, iopgt_u32 flags, iopgt_u32 tlo, iopgt_u32 thi) { \
    (ops_var).free(iopgt__cookie, ((iopgt_pa_t)hi << 32) | lo, size, flags, ((iopgt_flush_t)thi << 32) | tlo); \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_flush_done") void iopgt__abi_flush_done(iopgt_u32 tlo, iopgt_u32 thi) {        \
    (ops_var).flush_done(iopgt__cookie, ((iopgt_flush_t)thi << 32) | tlo);                                \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_stats") void iopgt__abi_stats(void) {                                          \
    struct iopgt_stats s = {0, 0, 0, 0};                                                                 \
    (ops_var).stats(iopgt__cookie, &s);                                                                  \
    iopgt__scratch[0] = s.cached;                                                                        \
    iopgt__scratch[1] = s.reserved;                                                                      \
    iopgt__scratch[2] = s.pending_flush;                                                                 \
    iopgt__scratch[3] = s.quarantined;                                                                   \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_drain") void iopgt__abi_drain(void) {                                          \
    if ((ops_var).drain) (ops_var).drain(iopgt__cookie);                                                  \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_reserve") iopgt_u32 iopgt__abi_reserve(iopgt_u32 tables, iopgt_u32 size) {     \
    return (ops_var).reserve ? (ops_var).reserve(iopgt__cookie, tables, size) : 0u;                        \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_run_begin") void iopgt__abi_run_begin(iopgt_u32 job) {                         \
    if ((ops_var).run_begin) (ops_var).run_begin(iopgt__cookie, job);                                     \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_run_end") void iopgt__abi_run_end(iopgt_u32 job) {                             \
    if ((ops_var).run_end) (ops_var).run_end(iopgt__cookie, job);                                         \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_release") void iopgt__abi_release(iopgt_u32 job) {                             \
    if ((ops_var).release) (ops_var).release(iopgt__cookie, job);                                         \
  }                                                                                                      \
  IOPGT_EXPORT("iopgt_abi_consumed") iopgt_u32 iopgt__abi_consumed(iopgt_u32 job) {                      \
    return (ops_var).consumed ? (ops_var).consumed(iopgt__cookie, job) : 0u;                               \
  }                                                                                                      \
  typedef int iopgt__registered_once

#endif /* IO_PGTABLE_ALLOC_H */
