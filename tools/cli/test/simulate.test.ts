import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SimResult } from '../src/sim/simulate';
import { TERMINAL_CONTROL, cli, tempDir } from './helpers';

type Result = SimResult;

function simulate(args: string[], env?: Record<string, string>) {
  const r = cli(['simulate', '--json', ...args], env ? { env } : {});
  expect(r.status, r.stderr).toBe(0);
  return { ...r, json: JSON.parse(r.stdout) as { results: Result[]; skipped: Array<{ stack: string }> } };
}

describe('io-pgtable simulate', () => {
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
    const tables = new Set(json.results.map((r) => r.tablesAllocated));
    expect(tables.size).toBe(1);
    for (const r of json.results) {
      expect(r.leakedPages, r.stack).toBe(0);
      expect(r.mapFailures, r.stack).toBe(0);
    }
    // Batching takes 16 pages per backing call.
    if (byStack.has('batched')) expect(byStack.get('batched')!.backingCalls).toBeLessThan(byStack.get('system')!.backingCalls / 8);
    // One secure call per table and per free, against 16 pages per call when pooled.
    if (byStack.has('secure-per-table')) expect(byStack.get('secure-per-table')!.secureCalls).toBe(2 * byStack.get('secure-per-table')!.tablesAllocated);
    if (byStack.has('secure-pooled')) expect(byStack.get('secure-pooled')!.secureCalls).toBeLessThan(byStack.get('secure-per-table')!.secureCalls / 4);
    // A reservation never consumes more than it reserved.
    for (const s of ['reserve-per-op', 'reserve-merged']) {
      const r = byStack.get(s);
      if (r) expect(r.usedTables!).toBeLessThanOrEqual(r.reservedTables!);
    }
    expect(byStack.get('reserve-merged')?.reservedTables ?? 0).toBeLessThanOrEqual(byStack.get('reserve-per-op')?.reservedTables ?? 0);
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
    const { json } = simulate(['--workload', 'trace-replay', '--stack', 'system', '--trace', cap]);
    // One leaf table chain below the root: L1, L2, L3.
    expect(json.results[0]!.tablesAllocated).toBe(1 + 3);
    expect(json.results[0]!.leakedPages).toBe(0);
  });

  it('a malformed --trace names the file and line, exit 2', () => {
    const dir = tempDir();
    const t = join(dir, 'bad.trace.jsonl');
    writeFileSync(t, '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48}\n{"op":"map","iova":"0x1000","paddr":"0x1000","pgsize":"0x1000","prot":["sideways"]}\n');
    const r = cli(['simulate', '--workload', 'trace-replay', '--stack', 'system', '--trace', t]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${t}:2: unknown prot "sideways"`);
  });

  it('non-TTY and CI output: plain progress lines on stderr, a plain table on stdout', () => {
    for (const env of [{}, { CI: 'true' }] as Array<Record<string, string>>) {
      const r = cli(['simulate', '--workload', 'random-churn', '--stack', 'system,batched', '--scale', '0.02'], { env });
      expect(r.status).toBe(0);
      expect(r.stderr).toMatch(/^simulate 1\/2 random-churn x system$/m);
      expect(r.stderr).toMatch(/^simulate 2\/2 random-churn x batched$/m);
      expect(r.stderr + r.stdout).not.toMatch(TERMINAL_CONTROL);
      expect(r.stdout.split('\n')[0]).toMatch(/^workload +stack +tables +backing calls +peak pages +over-prov +pool hits +secure calls +secure ms +ns\/op$/);
    }
  });

  it('unknown workload or stack names are usage errors', () => {
    expect(cli(['simulate', '--workload', 'nope']).status).toBe(2);
    const r = cli(['simulate', '--stack', 'system,nope']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown stack "nope"');
  });
});

describe('io-pgtable bench', () => {
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

describe('io-pgtable compare and report', () => {
  it('compare prints the table and writes index.html and data.json; report re-renders them', () => {
    const dir = tempDir();
    const r = cli(['compare', '--out-dir', dir, '--scale', '0.03']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^workload +stack +tables/m);
    expect(r.stdout).toContain(`report: ${join(dir, 'index.html')}`);
    const data = JSON.parse(readFileSync(join(dir, 'data.json'), 'utf8'));
    expect(data.workloads.map((w: { name: string }) => w.name)).toEqual(['vulkan-sparse', 'large-buffers', 'random-churn', 'secure-vmids', 'trace-replay']);
    expect(data.results.length).toBe(data.workloads.length * data.stacks.length);
    const html = readFileSync(join(dir, 'index.html'), 'utf8');
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    expect(html.match(/<svg class="chart" data-chart="pages-over-time"/g)).toHaveLength(5);

    const out = join(dir, 'again.html');
    const rep = cli(['report', '--json', '--in', join(dir, 'data.json'), '--out', out]);
    expect(rep.status).toBe(0);
    expect(JSON.parse(rep.stdout).results).toBe(data.results.length);
    expect(existsSync(out)).toBe(true);
  });

  it('report on a broken data file names the file and line, exit 2', () => {
    const dir = tempDir();
    const f = join(dir, 'data.json');
    writeFileSync(f, '{\n "results": [],\n "workloads": [,\n}\n');
    const r = cli(['report', '--in', f]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: not valid JSON`));
  });
});
