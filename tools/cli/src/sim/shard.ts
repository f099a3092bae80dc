/** `--shard i/n`: split the matrix's tasks for a CI matrix, as `vitest --shard` splits files. */
import { CliError, EXIT_USAGE } from '../io.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

export function parseShard(v: string | undefined): Shard | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d{1,4})\/(\d{1,4})$/.exec(v);
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new CliError(`--shard: ${JSON.stringify(v.slice(0, 40))} is not i/n with 1 <= i <= n <= 9999 (e.g. 1/2)`, EXIT_USAGE);
  return { index, count };
}

/** The contiguous slice of `items` that shard `s` runs: sizes differ by at most one, every item in exactly one shard. */
export function shardSlice<T>(items: T[], s: Shard | undefined): T[] {
  if (!s) return items;
  const start = Math.floor(((s.index - 1) * items.length) / s.count);
  const end = Math.floor((s.index * items.length) / s.count);
  return items.slice(start, end);
}
