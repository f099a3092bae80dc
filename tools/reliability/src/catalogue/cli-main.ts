/**
 * Hostile-input cases owned by the "cli-main" helper: compare, simulate, bench and report
 * (the matrix options, plugin stacks, captures, data.json files, shards and the HTML).
 * They run in test/catalogue.test.ts and appear in docs/reliability.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Case, CheckCase, CliCase } from './types.js';

/** The built CLI, found when a check runs (the docs script only renders the table). */
const cliBin = () => fileURLToPath(new URL('../../../cli/dist/bin.js', import.meta.url));

/** The smallest complete data.json: one workload, one stack, one result. */
export function minimalData(over: Record<string, unknown> = {}): Record<string, unknown> {
  const series = [1, 2];
  return {
    format: 'io-pgtable-compare/2',
    tool: 'io-pgtable compare',
    version: '0.1.0',
    config: { seed: 1, scale: 1, traces: [], goal: 'balanced', reps: 1 },
    machine: 'node',
    jobs: 1,
    shard: null,
    results: [
      {
        workload: 'w', stack: 's', seed: 1, jobs: 2, rangeOps: 2, pgtableCalls: 2, tablesAllocated: 2, backingCalls: 2, pageAllocCalls: 2, pageFreeCalls: 2,
        peakPages: 2, peakLivePages: 2, overProvisioning: 0, poolHitRate: null, secureCalls: 0, secureNs: 0, mapFailures: 0, reservedTables: null, usedTables: null,
        refusedJobs: 0, runPhaseAllocs: 1, nsPerOp: 100, nsPerOpMin: 90, nsPerOpMax: 110, nsPerOpRuns: 3, leakedPages: 0, pagesOverTime: series, backingOverTime: series, secureOverTime: [0, 0],
      },
    ],
    workloads: [{ name: 'w', description: 'd', needs: [], jobs: 2, rangeOps: 2, contexts: 1, format: 'ARM_64_LPAE_S1 48/48' }],
    stacks: [{ name: 's', description: 'd', reservesBeforeRun: false, secureShare: false }],
    recommendations: null,
    ...over,
  };
}

const data = (over: Record<string, unknown>) => JSON.stringify(minimalData(over));
const FAST = ['--workload', 'random-churn', '--stack', 'system', '--scale', '0.01', '--reps', '1'];
const MAP = '  gpu-1 [000] ..... 1.000000: map: IOMMU: iova=0x0000000000100000 - 0x0000000000104000 paddr=0x0000000080000000 size=16384\n';

const cli: CliCase[] = [
  { id: 'report-out-proc', surface: 'cli', category: 'fs-error', input: 'report --out /proc/x/index.html (recursive mkdir never returns there)', args: ['report', '--in', '{tmp}/d.json', '--out', '/proc/iopgt-r/index.html'], files: { 'd.json': data({}) }, exit: 2, match: /\/proc\/iopgt-r\/index\.html: cannot write: E[A-Z]+/, stdout: /^$/ },
  { id: 'report-wrong-shape-root', surface: 'cli', category: 'wrong-shape', input: 'report --in a data.json that is a JSON array', args: ['report', '--in', '{tmp}/d.json', '--out', '{tmp}/o.html'], files: { 'd.json': '[]' }, exit: 2, match: /\{tmp\}\/d\.json: not a compare data file .*\$: expected an object, got an array/, stdout: /^$/ },
  { id: 'report-wrong-shape-number', surface: 'cli', category: 'wrong-shape', input: 'report --in data.json whose peakPages is a string', args: ['report', '--in', '{tmp}/d.json'], files: { 'd.json': data({ results: [{ ...(minimalData().results as object[])[0], peakPages: '2' }] }) }, exit: 2, match: /\$\.results\[0\]\.peakPages: expected an integer, got a string/, stdout: /^$/ },
  { id: 'report-wrong-shape-missing-pair', surface: 'cli', category: 'wrong-shape', input: 'report --in data.json with fewer results than workloads x stacks', args: ['report', '--in', '{tmp}/d.json'], files: { 'd.json': data({ results: [] }) }, exit: 2, match: /0 results for 1 workloads x 1 stacks/, stdout: /^$/ },
  { id: 'report-wrong-shape-unknown-stack', surface: 'cli', category: 'wrong-shape', input: 'report --in data.json whose result names a stack not listed', args: ['report', '--in', '{tmp}/d.json'], files: { 'd.json': data({ stacks: [{ name: 'other', description: 'd', reservesBeforeRun: false, secureShare: false }] }) }, exit: 2, match: /\$\.results\[0\]\.stack is not in \$\.stacks/, stdout: /^$/ },
  { id: 'report-proto-field', surface: 'cli', category: 'prototype-name', input: 'report --in data.json with a "__proto__" field', args: ['report', '--in', '{tmp}/d.json'], files: { 'd.json': data({}).replace(/^\{/, '{"__proto__":{"results":[]},') }, exit: 2, match: /unknown field "__proto__"/, stdout: /^$/ },
  { id: 'report-deep-json', surface: 'cli', category: 'deep-json', input: 'report --in data.json whose tool field nests 100,000 arrays', args: ['report', '--in', '{tmp}/d.json'], files: { 'd.json': data({}).replace('"tool":"io-pgtable compare"', `"tool":${'['.repeat(100_000)}${']'.repeat(100_000)}`) }, exit: 2, match: /\$\.tool: expected a string, got an array/, stdout: /^$/ },
  { id: 'report-huge-string', surface: 'cli', category: 'huge-value', input: 'report --in data.json with a 5 MB machine string', args: ['report', '--in', '{tmp}/d.json'], files: { 'd.json': data({ machine: 'x'.repeat(5_000_000) }) }, exit: 2, match: /^io-pgtable report: \{tmp\}\/d\.json: not a compare data file \(io-pgtable-compare\/2\): \$\.machine: string longer than 4096 characters\n$/, stdout: /^$/ },
  { id: 'report-dir-as-input', surface: 'cli', category: 'fs-error', input: 'report --in a directory', args: ['report', '--in', '{tmp}/dir'], dirs: ['dir'], exit: 2, match: /\{tmp\}\/dir: cannot read: EISDIR \(is a directory\)/, stdout: /^$/ },
  { id: 'report-merge-missing-shard', surface: 'cli', category: 'wrong-shape', input: 'report --merge of shard 1/2 alone', args: ['report', '--merge', '{tmp}/a.json', '--out-dir', '{tmp}/out'], files: { 'a.json': data({ shard: { index: 1, count: 2 } }) }, exit: 2, match: /--merge: missing shard 2\/2/, stdout: /^$/ },
  { id: 'report-partial-shard', surface: 'cli', category: 'wrong-shape', input: 'report --in a shard\'s data.json', args: ['report', '--in', '{tmp}/a.json'], files: { 'a.json': data({ shard: { index: 1, count: 2 } }) }, exit: 2, match: /shard 1\/2 holds part of the results/, stdout: /^$/ },
  { id: 'compare-out-dir-is-file', surface: 'cli', category: 'fs-error', input: 'compare --out-dir naming a regular file', args: ['compare', '--out-dir', '{tmp}/f', ...FAST], files: { f: 'x' }, exit: 2, match: /\{tmp\}\/f: cannot write the report: (EEXIST|ENOTDIR)/, stdout: /^$/ },
  { id: 'compare-trace-dir', surface: 'cli', category: 'fs-error', input: 'compare --trace a directory', args: ['compare', '--out-dir', '{tmp}/o', '--trace', '{tmp}/dir'], dirs: ['dir'], exit: 2, match: /\{tmp\}\/dir: is a directory, not a capture file/, stdout: /^$/ },
  { id: 'compare-trace-second-bad', surface: 'cli', category: 'fs-error', input: 'compare --trace good.txt bad.txt (a malformed line in the second capture)', args: ['compare', '--out-dir', '{tmp}/o', '--reps', '1', '--trace', '{tmp}/good.txt', '{tmp}/bad.txt'], files: { 'good.txt': MAP, 'bad.txt': MAP + MAP.replace('paddr=0x0000000080000000', 'paddr=0xZZ')  }, stderrLines: 2, exit: 2, match: /\{tmp\}\/bad\.txt:2: (paddr=0x\.\.\. missing or not hexadecimal|map event is not).*\(left out\)\n.*captures: 1 ran, 1 failed \(\{tmp\}\/bad\.txt\)\n$/s, stdout: /^Recommended stack per workload[^]*\ngood\.txt +-> /m },
  { id: 'compare-goal-proto', surface: 'cli', category: 'prototype-name', input: 'compare --goal constructor', args: ['compare', '--goal', 'constructor'], exit: 2, match: /--goal: "constructor" is not one of balanced, latency, memory, secure-calls/, stdout: /^$/ },
  { id: 'simulate-stack-proto', surface: 'cli', category: 'prototype-name', input: 'simulate --stack toString', args: ['simulate', '--stack', 'toString', '--workload', 'random-churn'], exit: 2, match: /unknown stack "toString"/, stdout: /^$/ },
  { id: 'simulate-workload-proto', surface: 'cli', category: 'prototype-name', input: 'simulate --workload __proto__', args: ['simulate', '--workload', '__proto__'], exit: 2, match: /--workload: unknown workload "__proto__"/, stdout: /^$/ },
  { id: 'compare-shard-out-of-range', surface: 'cli', category: 'bad-value', input: 'compare --shard 3/2', args: ['compare', '--shard', '3/2'], exit: 2, match: /--shard: "3\/2" is not i\/n/, stdout: /^$/ },
  { id: 'compare-stack-bad-wasm', surface: 'cli', category: 'bad-value', input: 'compare --stack FILE.wasm that is not WebAssembly', args: ['compare', '--out-dir', '{tmp}/o', '--stack', '{tmp}/x.wasm'], files: { 'x.wasm': 'not wasm' }, exit: 2, match: /--stack \{tmp\}\/x\.wasm: .*not a valid WebAssembly module/, stdout: /^$/ },
  { id: 'compare-stack-no-plugin', surface: 'cli', category: 'bad-value', input: 'compare --stack naming a package that is not installed', args: ['compare', '--stack', 'no-such-plugin-package'], exit: 2, match: /no package no-such-plugin-package in node_modules/, stdout: /^$/ },
  { id: 'bench-reps-zero', surface: 'cli', category: 'bad-value', input: 'bench --reps 0', args: ['bench', '--reps', '0'], exit: 2, match: /--reps must be in 1\.\.100/, stdout: /^$/ },
];

const PAYLOADS = ['<img src=x onerror=alert(1)>', '"><script>alert(2)</script>', "'><svg onload=alert(3)>", '</script><script>alert(4)</script>', '</style><b>x'];

const checks: CheckCase[] = [
  {
    id: 'report-html-injection',
    surface: 'check',
    category: 'html-injection',
    where: 'report',
    input: 'data.json with markup and script in every string field (names, descriptions, tool, version, machine, traces)',
    expected: 'every value is escaped in index.html (no element made from data); the page has a Content-Security-Policy; Chromium checks the same in tools/cli/test/report.browser.test.ts',
    run() {
      const dir = mkdtempSync(join(tmpdir(), 'iopgt-cat-html-'));
      let i = 0;
      const evil = () => `${PAYLOADS[i++ % PAYLOADS.length]}${i}`;
      const w = evil();
      const s = evil();
      const d = minimalData({ tool: evil(), version: evil(), machine: evil(), config: { seed: 1, scale: 1, traces: [evil()], goal: 'balanced', reps: 1 } });
      d.workloads = [{ ...(d.workloads as object[])[0], name: w, description: evil(), format: evil() }];
      d.stacks = [{ ...(d.stacks as object[])[0], name: s, description: evil() }];
      d.results = [{ ...(d.results as object[])[0], workload: w, stack: s }];
      writeFileSync(join(dir, 'data.json'), JSON.stringify(d));
      const r = spawnSync(process.execPath, [cliBin(), 'report', '--in', join(dir, 'data.json')], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`report failed: ${r.stderr}`);
      const html = readFileSync(join(dir, 'index.html'), 'utf8');
      const body = html.slice(html.indexOf('<body>'), html.indexOf('<script type="application/json"'));
      for (const bad of ['<img', '<script', '<svg onload', '</style><b>']) if (body.includes(bad)) throw new Error(`unescaped ${bad} in the report body`);
      if ((html.match(/<script/g) ?? []).length !== 2) throw new Error('the report must hold exactly its data block and its own script');
      if (!/<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; style-src &#39;sha256-/.test(html)) throw new Error('no Content-Security-Policy meta tag');
    },
  },
];

export const CASES: readonly Case[] = [...cli, ...checks];
