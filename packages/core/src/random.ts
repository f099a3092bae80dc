/**
 * Seeded pseudo-random streams for benchmarks, workloads and tests: deterministic for a
 * seed, no allocation per draw. Two generators because results already published in this
 * repository were produced with each; both are standard.
 */

/** xorshift32 (Marsaglia): a stream of uint32 values. A zero seed is replaced by 1. */
export function xorshift32(seed: number): () => number {
  // The state is kept as an int32 (the same 32 bits): a uint32 above 2^31 in a closure
  // variable is a heap number, and writing one per step allocated (W4 spent 5% in GC).
  let s = (seed >>> 0 || 1) | 0;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

/** mulberry32: a stream of floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
