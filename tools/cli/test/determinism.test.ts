import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, tempDir } from './helpers';

// Timings are measurements and differ run to run; everything else must not.
const TIMING = new Set(['nsPerOp', 'nsPerOpMin', 'nsPerOpMax']);
const counts = (results: Array<Record<string, unknown>>) => results.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !TIMING.has(k))));

function compare(dir: string, extra: string[]) {
  const r = cli(['compare', '--out-dir', dir, '--scale', '0.04', '--reps', '1', ...extra]);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(readFileSync(join(dir, 'data.json'), 'utf8'));
}

describe('results do not depend on the worker count or the sharding', { timeout: 300_000 }, () => {
  it('--jobs 1, --jobs 2, and --shard 1/3..3/3 merged with report --merge give the same results', () => {
    const base = tempDir('iopgt-det-');
    const one = compare(join(base, 'j1'), ['--jobs', '1']);
    const two = compare(join(base, 'j2'), ['--jobs', '2']);
    expect(one.jobs).toBe(1);
    expect(two.jobs).toBe(2);
    expect(one.results).toHaveLength(40);
    expect(counts(two.results)).toEqual(counts(one.results));

    const shards = [1, 2, 3].map((i) => compare(join(base, `s${i}`), ['--shard', `${i}/3`, '--jobs', '2']));
    // Every pair in exactly one shard, none with a recommendation of its own.
    expect(shards.map((s) => s.results.length)).toEqual([13, 13, 14]);
    for (const s of shards) expect(s.recommendations).toBeNull();
    // Merge order does not matter either.
    const r = cli(['report', '--merge', '--json', join(base, 's3/data.json'), join(base, 's1/data.json'), join(base, 's2/data.json'), '--out-dir', join(base, 'merged')]);
    expect(r.status, r.stderr).toBe(0);
    const merged = JSON.parse(readFileSync(join(base, 'merged/data.json'), 'utf8'));
    expect(merged.shard).toBeNull();
    expect(counts(merged.results)).toEqual(counts(one.results));
    expect(merged.workloads).toEqual(one.workloads);
    expect(merged.stacks).toEqual(one.stacks);
    expect(merged.recommendations.map((x: { workload: string }) => x.workload)).toEqual(one.recommendations.map((x: { workload: string }) => x.workload));
    expect(JSON.parse(r.stdout).results).toBe(40);
  });

  it('report --merge refuses a missing, repeated or foreign shard with one message', () => {
    const base = tempDir('iopgt-merge-');
    const args = ['--workload', 'random-churn', '--stack', 'system,pool,batched'];
    compare(join(base, 'a1'), [...args, '--shard', '1/2']);
    compare(join(base, 'a2'), [...args, '--shard', '2/2']);
    compare(join(base, 'b2'), [...args, '--shard', '2/2', '--seed', '7']);
    compare(join(base, 'full'), args);
    const f = (d: string) => join(base, d, 'data.json');
    for (const [files, msg] of [
      [[f('a1')], 'missing shard 2/2'],
      [[f('a1'), f('a1')], 'given twice'],
      [[f('a1'), f('b2')], 'different configuration'],
      [[f('a1'), f('full')], 'not a shard'],
    ] as Array<[string[], string]>) {
      const r = cli(['report', '--merge', ...files, '--out-dir', join(base, 'out')]);
      expect(r.status, msg).toBe(2);
      expect(r.stderr, msg).toContain(msg);
      expect(r.stderr.trim().split('\n'), msg).toHaveLength(1);
    }
    const partial = cli(['report', '--in', f('a1')]);
    expect(partial.status).toBe(2);
    expect(partial.stderr).toContain('shard 1/2 holds part of the results');
  });
});
