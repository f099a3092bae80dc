import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SimResult } from '../src/sim/simulate';
import { TERMINAL_CONTROL, cli, tempDir } from './helpers';

type Result = SimResult;

function simulate(args: string[], env?: Record<string, string>) {
  const r = cli(['simulate', '--json', ...args], env ? { env } : {});
  expect(r.status, r.stderr).toBe(0);
  return { ...r, json: JSON.parse(r.stdout) as { results: Result[] } };
}

describe('io-pgtable simulate', { timeout: 300_000 }, () => {
  it('system only: every table is one page allocation, freed again; nothing over-provisioned or leaked', () => {
    const { json } = simulate(['--workload', 'random-churn', '--stack', 'system', '--scale', '0.05']);
    const [r] = json.results;
    expect(r!.stack).toBe('system');
    expect(r!.pageAllocCalls).toBe(r!.tablesAllocated);
    expect(r!.pageFreeCalls).toBe(r!.tablesAllocated);
    expect(r!.backingCalls).toBe(2 * r!.tablesAllocated);
    expect(r!.peakPages).toBe(r!.peakLivePages);
    expect(r!.overProvisioning).toBe(0);
    expect(r!.leakedPages).toBe(0);
    expect(r!.mapFailures).toBe(0);
    expect(r!.pagesOverTime.length).toBeGreaterThan(10);
  });

  it('the page tables do the same work under every stack; only the cost differs', () => {
    const { json } = simulate(['--workload', 'vulkan-sparse', '--scale', '0.05']);
    const byStack = new Map(json.results.map((r) => [r.stack, r]));
    // Every built-in stack ran: a stack that cannot be built fails the run instead of vanishing.
    expect([...byStack.keys()]).toEqual(['system', 'pool', 'batched', 'pool+batched', 'reserve-per-op', 'reserve-merged', 'secure-pooled', 'secure-per-table']);
    const at = (s: string): Result => byStack.get(s)!;
    const tables = new Set(json.results.map((r) => r.tablesAllocated));
    expect(tables.size).toBe(1);
    for (const r of json.results) {
      expect(r.leakedPages, r.stack).toBe(0);
      expect(r.mapFailures, r.stack).toBe(0);
    }
    // Batching takes 16 pages per backing call.
    expect(at('batched').backingCalls).toBeLessThan(at('system').backingCalls / 8);
    // One secure call per table and per free, against 16 pages per call when pooled.
    expect(at('secure-per-table').secureCalls).toBe(2 * at('secure-per-table').tablesAllocated);
    expect(at('secure-pooled').secureCalls).toBeLessThan(at('secure-per-table').secureCalls / 4);
    expect(at('system').secureCalls).toBe(0);
    // A reservation never consumes more than it reserved, and the run phase never reaches the page allocator.
    for (const s of ['reserve-per-op', 'reserve-merged']) {
      expect(at(s).reservedTables, s).toBeGreaterThan(0);
      expect(at(s).usedTables!, s).toBeLessThanOrEqual(at(s).reservedTables!);
      expect(at(s).runPhaseAllocs, s).toBe(0);
    }
    // Without a reservation every table but the root (allocated with the page table) comes from the run phase.
    expect(at('system').runPhaseAllocs).toBe(at('system').tablesAllocated - 1);
    // Counting once over the merged job reserves no more than counting per op.
    expect(at('reserve-merged').reservedTables!).toBeLessThanOrEqual(at('reserve-per-op').reservedTables!);
    expect(at('system').reservedTables).toBeNull();
  });

  it('records per-job series of pages held, backing calls and secure calls', () => {
    const { json } = simulate(['--workload', 'secure-vmids', '--stack', 'secure-per-table', '--scale', '0.05']);
    const r = json.results[0]!;
    expect(r.backingOverTime.length).toBe(r.pagesOverTime.length);
    expect(r.secureOverTime.length).toBe(r.pagesOverTime.length);
    // Cumulative counts never go down, and end at most at the totals (teardown adds the rest).
    for (let i = 1; i < r.secureOverTime.length; i++) expect(r.secureOverTime[i]!).toBeGreaterThanOrEqual(r.secureOverTime[i - 1]!);
    expect(r.secureOverTime.at(-1)!).toBeGreaterThan(0);
    expect(r.secureOverTime.at(-1)!).toBeLessThanOrEqual(r.secureCalls);
    expect(Math.max(...r.pagesOverTime)).toBeLessThanOrEqual(r.peakPages);
  });

  it('ns/op is the median of --reps runs, with the fastest and slowest beside it', () => {
    const { json } = simulate(['--workload', 'random-churn', '--stack', 'system', '--scale', '0.02', '--reps', '3']);
    const r = json.results[0]!;
    expect(r.nsPerOpRuns).toBe(3);
    expect(r.nsPerOpMin).toBeGreaterThan(0);
    expect(r.nsPerOpMin).toBeLessThanOrEqual(r.nsPerOp);
    expect(r.nsPerOp).toBeLessThanOrEqual(r.nsPerOpMax);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const a = simulate(['--workload', 'large-buffers', '--stack', 'system', '--scale', '0.1', '--seed', '7']).json.results[0]!;
    const b = simulate(['--workload', 'large-buffers', '--stack', 'system', '--scale', '0.1', '--seed', '7']).json.results[0]!;
    const c = simulate(['--workload', 'large-buffers', '--stack', 'system', '--scale', '0.1', '--seed', '8']).json.results[0]!;
    expect(a.pagesOverTime).toEqual(b.pagesOverTime);
    expect(a.tablesAllocated).toBe(b.tablesAllocated);
    expect(c.pagesOverTime).not.toEqual(a.pagesOverTime);
  });

  it('several secure contexts: each VMID has its own page table', () => {
    const { json } = simulate(['--workload', 'secure-vmids', '--stack', 'system', '--scale', '0.05']);
    // Four stage-2 40-bit roots are concatenated 8 KiB PGDs (two pages each).
    expect(json.results[0]!.peakLivePages).toBeGreaterThanOrEqual(8);
  });

  it('replays a captured ftrace file as the trace-replay workload', () => {
    const dir = tempDir();
    const cap = join(dir, 'cap.txt');
    writeFileSync(cap, '  gpu-1 [000] ..... 1.000000: map: IOMMU: iova=0x0000000000100000 - 0x0000000000104000 paddr=0x0000000080000000 size=16384\n  gpu-1 [000] ..... 1.000100: unmap: IOMMU: iova=0x0000000000100000 - 0x0000000000104000 size=16384 unmapped_size=16384\n');
    const { json } = simulate(['--stack', 'system', '--trace', cap]);
    // The capture is the only workload, named after its file.
    expect(json.results.map((r) => r.workload)).toEqual(['cap.txt']);
    // The root and one table chain below it: L1, L2, L3.
    expect(json.results[0]!.tablesAllocated).toBe(1 + 3);
    expect(json.results[0]!.leakedPages).toBe(0);
  });

  it('a malformed --trace names the file and line, exit 2', () => {
    const dir = tempDir();
    const t = join(dir, 'bad.trace.jsonl');
    writeFileSync(t, '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48}\n{"op":"map","iova":"0x1000","paddr":"0x1000","pgsize":"0x1000","prot":["sideways"]}\n');
    const r = cli(['simulate', '--stack', 'system', '--trace', t]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${t}:2: unknown prot "sideways"`);
  });

  it('piped and CI output: no progress on stderr, a plain table on stdout', () => {
    for (const env of [{}, { CI: 'true' }] as Array<Record<string, string>>) {
      const r = cli(['simulate', '--workload', 'random-churn', '--stack', 'system,batched', '--scale', '0.02', '--jobs', '2'], { env });
      expect(r.status).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).not.toMatch(TERMINAL_CONTROL);
      expect(r.stdout.split('\n')[0]).toMatch(/^workload +stack +tables +backing calls +peak pages +over-prov +pool hits +secure calls +secure ms +ns\/op \(median\) +spread$/);
      expect(r.stdout.split('\n').filter((l) => /^random-churn /.test(l))).toHaveLength(2);
    }
  });

  it('unknown workload or stack names are usage errors', () => {
    expect(cli(['simulate', '--workload', 'nope']).status).toBe(2);
    const r = cli(['simulate', '--stack', 'system,nope']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown stack "nope"');
  });
});

describe('io-pgtable bench', { timeout: 300_000 }, () => {
  it('reports best and median ns per op as JSON', () => {
    const r = cli(['bench', '--json', '--reps', '2', '--workload', 'random-churn', '--stack', 'system', '--scale', '0.02']);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.reps).toBe(2);
    expect(j.results).toHaveLength(1);
    expect(j.results[0].bestNsPerOp).toBeGreaterThan(0);
    expect(j.results[0].bestNsPerOp).toBeLessThanOrEqual(j.results[0].medianNsPerOp);
  });

  it('--reps 0 is a usage error', () => {
    expect(cli(['bench', '--reps', '0']).status).toBe(2);
  });
});
