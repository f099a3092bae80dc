/**
 * A small fully-associative cache with numeric keys, used for both the TLB and the walk
 * cache. `lru` and `fifo` rely on Map insertion order (O(1) hit and eviction); `random`
 * uses a seeded generator so runs are reproducible.
 */
import { xorshift32 } from '../random.js';
export type Replacement = 'lru' | 'fifo' | 'random';

export interface CacheConfig {
  /** Number of entries (>= 1). */
  readonly entries: number;
  /** Replacement policy (default `lru`). */
  readonly replacement?: Replacement;
  /** Seed for `random` replacement (default 1). */
  readonly seed?: number;
}

export class AssocCache<V> {
  private readonly map = new Map<number, V>();
  private readonly capacity: number;
  private readonly policy: Replacement;
  private readonly rng: () => number;
  /** Hits, misses and evictions since creation (observable for tests and benchmarks). */
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(cfg: CacheConfig) {
    if (!Number.isSafeInteger(cfg.entries) || cfg.entries < 1) {
      throw new RangeError(`cache entries must be a positive integer, got ${cfg.entries}`);
    }
    const policy = cfg.replacement ?? 'lru';
    if (policy !== 'lru' && policy !== 'fifo' && policy !== 'random') {
      throw new RangeError(`unknown replacement policy ${JSON.stringify(policy)}`);
    }
    this.capacity = cfg.entries;
    this.policy = policy;
    this.rng = xorshift32(cfg.seed ?? 1);
  }

  get size(): number {
    return this.map.size;
  }

  get(key: number): V | undefined {
    const v = this.map.get(key);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    if (this.policy === 'lru') {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  /** Look without counting or touching the replacement state. */
  peek(key: number): V | undefined {
    return this.map.get(key);
  }

  /** Insert or replace; returns the evicted value, if any. */
  set(key: number, value: V): V | undefined {
    if (this.map.has(key)) {
      this.map.delete(key);
      this.map.set(key, value);
      return undefined;
    }
    let evicted: V | undefined;
    if (this.map.size >= this.capacity) {
      const victim = this.policy === 'random' ? this.randomKey() : this.map.keys().next().value!;
      evicted = this.map.get(victim);
      this.map.delete(victim);
      this.evictions++;
    }
    this.map.set(key, value);
    return evicted;
  }

  delete(key: number): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) this.map.delete(key);
    return v;
  }

  /** Remove every entry for which `drop` returns true; returns the removed values. */
  deleteWhere(drop: (value: V) => boolean): V[] {
    const out: V[] = [];
    for (const [k, v] of this.map) {
      if (drop(v)) {
        this.map.delete(k);
        out.push(v);
      }
    }
    return out;
  }

  clear(): V[] {
    const out = [...this.map.values()];
    this.map.clear();
    return out;
  }

  values(): IterableIterator<V> {
    return this.map.values();
  }

  private randomKey(): number {
    let i = this.rng() % this.map.size;
    for (const k of this.map.keys()) if (i-- === 0) return k;
    return this.map.keys().next().value!;
  }
}
