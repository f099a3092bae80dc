import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { STACKS } from '../src/sim/stacks';
import { WORKLOADS } from '../src/sim/workloads';
import { TERMINAL_CONTROL, cli, tempDir } from './helpers';

const FAST = ['--scale', '0.03', '--reps', '1'];
const ftrace = (lines: string[]) => lines.map((l) => `  gpu-1 [000] ..... 1.000000: ${l}`).join('\n') + '\n';
const CAPTURE = ftrace([
  'map: IOMMU: iova=0x0000000000100000 - 0x0000000000104000 paddr=0x0000000080000000 size=16384',
  'map: IOMMU: iova=0x0000000040000000 - 0x0000000040400000 paddr=0x0000000090000000 size=4194304',
  'unmap: IOMMU: iova=0x0000000000100000 - 0x0000000000104000 size=16384 unmapped_size=16384',
  'unmap: IOMMU: iova=0x0000000040000000 - 0x0000000040400000 size=4194304 unmapped_size=4194304',
]);

describe('io-pgtable compare: the answer', { timeout: 300_000 }, () => {
  it('prints a recommended stack with its reason per workload first, the criteria, then the table; the files agree', () => {
    const dir = tempDir();
    const r = cli(['compare', '--out-dir', dir, ...FAST, '--jobs', '2']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).not.toMatch(TERMINAL_CONTROL);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('Recommended stack per workload (goal: balanced):');
    const data = JSON.parse(readFileSync(join(dir, 'data.json'), 'utf8'));
    expect(data.workloads.map((w: { name: string }) => w.name)).toEqual(WORKLOADS.map((w) => w.name));
    expect(data.results.length).toBe(WORKLOADS.length * STACKS.length);
    expect(data.recommendations).toHaveLength(WORKLOADS.length);
    for (const [i, rec] of data.recommendations.entries()) {
      expect(rec.stack, rec.workload).toEqual(expect.any(String));
      expect(rec.reason.length).toBeGreaterThan(20);
      expect(lines[1 + 2 * i]).toBe(`${rec.workload.padEnd(13)}  -> ${rec.stack}: ${rec.reason}`);
      expect(lines[2 + 2 * i]).toContain(`runner-up ${rec.runnerUp}: ${rec.tradeOff}`);
    }
    // The hard constraints hold: reservation for async VM_BIND, secure-share for shared VMIDs.
    const pick = (w: string) => data.recommendations.find((x: { workload: string }) => x.workload === w).stack;
    expect(pick('vulkan-sparse')).toMatch(/^reserve-/);
    expect(pick('secure-vmids')).toMatch(/^secure-/);
    expect(r.stdout).toContain('Criteria, in order:\n  1. correct');
    expect(r.stdout.indexOf('Criteria')).toBeLessThan(r.stdout.search(/^workload +stack +tables/m));
    expect(r.stdout).toMatch(/^\(40 runs x 1 reps in [\d.]+ s, 2 workers\)$/m);

    const html = readFileSync(join(dir, 'index.html'), 'utf8');
    expect(html).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    expect(html).toContain('<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;');
    for (const rec of data.recommendations) expect(html).toContain(`<b class="stack">${rec.stack}</b>`);

    const out = join(dir, 'again.html');
    const rep = cli(['report', '--json', '--in', join(dir, 'data.json'), '--out', out]);
    expect(rep.status, rep.stderr).toBe(0);
    const rj = JSON.parse(rep.stdout);
    expect(rj.results).toBe(data.results.length);
    expect(rj.recommendations).toEqual(data.recommendations);
    expect(readFileSync(out, 'utf8')).toBe(html);
  });

  it('--goal changes the weighting and says so; an unknown goal is a usage error', () => {
    const dir = tempDir();
    const r = cli(['compare', '--out-dir', dir, ...FAST, '--workload', 'large-buffers', '--goal', 'memory', '--jobs', '1']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n')[0]).toBe('Recommended stack per workload (goal: memory):');
    expect(r.stdout).toContain('goal "memory": 0.5 x secure calls + 0.5 x backing calls + 3 x peak pages + 0.25 x ns/op');
    const rep = cli(['report', '--json', '--in', join(dir, 'data.json'), '--out', join(dir, 'x.html'), '--goal', 'secure-calls']);
    expect(JSON.parse(rep.stdout).recommendations[0].goal).toBe('secure-calls');
    const bad = cli(['compare', '--goal', 'cheap']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe('io-pgtable compare: --goal: "cheap" is not one of balanced, latency, memory, secure-calls\n');
  });

  it('--trace FILE...: the captures, ftrace text or our trace, are the workloads, through every stack', () => {
    const dir = tempDir();
    const cap = join(dir, 'cap.txt');
    writeFileSync(cap, CAPTURE);
    const ours = join(dir, 'ours.trace.jsonl');
    const imp = cli(['import-ftrace', cap, '-o', ours]);
    expect(imp.status, imp.stderr).toBe(0);
    const r = cli(['compare', '--json', '--out-dir', dir, '--reps', '1', '--trace', cap, ours, '--constraint', 'async-vm-bind']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect([...new Set(j.results.map((x: { workload: string }) => x.workload))]).toEqual(['cap.txt', 'ours.trace.jsonl']);
    expect(j.results).toHaveLength(2 * STACKS.length);
    // Both are the same capture: the same tables under every stack.
    const tables = (w: string) => j.results.filter((x: { workload: string }) => x.workload === w).map((x: { tablesAllocated: number }) => x.tablesAllocated);
    expect(tables('cap.txt')).toEqual(tables('ours.trace.jsonl'));
    for (const rec of j.recommendations) expect(rec.stack).toMatch(/^reserve-/);
  });

  it('a bad capture among several is left out and reported; the others still run; exit 2', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'good.txt'), CAPTURE);
    writeFileSync(join(dir, 'bad.txt'), CAPTURE.replace('size=16384\n', 'size=16384\n  gpu-1 [000] ..... 1.5: map: IOMMU: iova=0x10 paddr=0x0 size=4096\n'));
    const r = cli(['compare', '--json', '--out-dir', dir, '--reps', '1', '--trace', join(dir, 'good.txt'), join(dir, 'bad.txt')]);
    expect(r.status).toBe(2);
    const j = JSON.parse(r.stdout);
    expect([...new Set(j.results.map((x: { workload: string }) => x.workload))]).toEqual(['good.txt']);
    expect(j.failed).toEqual([{ file: join(dir, 'bad.txt'), error: expect.stringMatching(new RegExp(`^${join(dir, 'bad.txt').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: `)) }]);
    expect(r.stderr.trim().split('\n')).toHaveLength(2);
    expect(r.stderr).toContain(`captures: 1 ran, 1 failed (${join(dir, 'bad.txt')})`);
    // The report holds what ran, and re-renders.
    expect(cli(['report', '--in', join(dir, 'data.json'), '--out', join(dir, 'r.html')]).status).toBe(0);
  });

  it('--json prints exactly one JSON object and nothing on stderr', () => {
    const dir = tempDir();
    const r = cli(['compare', '--json', '--out-dir', dir, ...FAST, '--workload', 'random-churn', '--stack', 'system,pool']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toHaveLength(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ command: 'compare', results: [{ stack: 'system' }, { stack: 'pool' }] });
  });

  it('--stack restricts, +NAME adds; unknown names, bad --jobs and --shard are usage errors with one line', () => {
    const dir = tempDir();
    const only = JSON.parse(cli(['compare', '--json', '--out-dir', dir, ...FAST, '--workload', 'random-churn', '--stack', 'batched']).stdout);
    expect(only.results.map((x: { stack: string }) => x.stack)).toEqual(['batched']);
    for (const [args, msg] of [
      [['--stack', 'system,nope'], '--stack: unknown stack "nope"'],
      [['--jobs', '0'], '--jobs must be in 1..256'],
      [['--shard', '3/2'], '--shard: "3/2" is not i/n'],
      [['--shard', '1/0'], '--shard: "1/0" is not i/n'],
      [['--trace', dir], 'is a directory'],
      [['--constraint', 'fast', '--trace', join(dir, 'data.json')], '--constraint: "fast" is not one of'],
    ] as Array<[string[], string]>) {
      const r = cli(['compare', '--out-dir', dir, ...args]);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(msg);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });

  it('an --out-dir that is a file is a usage error naming it, and nothing is written', () => {
    const dir = tempDir();
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    const r = cli(['compare', '--out-dir', file, ...FAST, '--workload', 'random-churn', '--stack', 'system']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^io-pgtable compare: .*file: cannot write the report: (EEXIST|ENOTDIR) \([a-z ]+\)\n$/);
    expect(readFileSync(file, 'utf8')).toBe('x');
  });
});

describe('--help of the matrix commands', { timeout: 300_000 }, () => {
  const known = new Set([...WORKLOADS.map((w) => w.name), ...STACKS.map((s) => s.name)]);
  it.each(['compare', 'simulate', 'bench', 'report'])('%s --help has Examples whose workload and stack names exist', (c) => {
    const r = cli([c, '--help']);
    expect(r.status).toBe(0);
    const ex = r.stdout.slice(r.stdout.indexOf('Examples:'));
    expect(r.stdout).toContain('Examples:\n  io-pgtable ');
    const names = [...ex.matchAll(/--(?:workload|stack) \+?([^\s]+)/g)].flatMap((m) => m[1]!.split(','));
    // Lower-case names are ours and must exist; upper-case ones are the reader's placeholders.
    for (const n of names.filter((x) => x === x.toLowerCase() && !x.includes('/') && !x.endsWith('.wasm'))) expect(known.has(n), n).toBe(true);
    for (const line of ex.split('\n').filter((l) => l.startsWith('  io-pgtable '))) expect(line.split(' ')[3] ?? line.split(' ')[2]).toBeDefined();
  });
});

describe('io-pgtable report: bad data', { timeout: 300_000 }, () => {
  it('a broken data file names the file and line, exit 2', () => {
    const dir = tempDir();
    const f = join(dir, 'data.json');
    writeFileSync(f, '{\n "results": [],\n "workloads": [,\n}\n');
    const r = cli(['report', '--in', f]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3: not valid JSON`));
  });

  it('data of the wrong shape is rejected against the schema with one message naming the field; nothing is written', () => {
    const dir = tempDir();
    const good = join(dir, 'good');
    expect(cli(['compare', '--out-dir', good, ...FAST, '--workload', 'random-churn', '--stack', 'system,pool']).status).toBe(0);
    const base = JSON.parse(readFileSync(join(good, 'data.json'), 'utf8'));
    const cases: Array<[string, (d: any) => unknown, string]> = [
      ['array root', () => [], '$: expected an object, got an array'],
      ['no results', (d) => ({ ...d, results: undefined }), '$: missing "results"'],
      ['string seed', (d) => ({ ...d, config: { ...d.config, seed: '<script>' } }), '$.config.seed: expected an integer, got a string'],
      ['results not an array', (d) => ({ ...d, results: {} }), '$.results: expected an array, got an object'],
      ['number as string', (d) => ({ ...d, results: [{ ...d.results[0], peakPages: '5' }, d.results[1]] }), '$.results[0].peakPages: expected an integer, got a string'],
      ['series of strings', (d) => ({ ...d, results: [{ ...d.results[0], pagesOverTime: ['x'] }, d.results[1]] }), '$.results[0].pagesOverTime[0]: expected a number'],
      ['unknown stack', (d) => ({ ...d, results: [{ ...d.results[0], stack: 'ghost' }, d.results[1]] }), '$.results[0].stack is not in $.stacks'],
      ['missing pair', (d) => ({ ...d, results: [d.results[0]] }), '1 results for 1 workloads x 2 stacks'],
      ['extra field', (d) => ({ ...d, evil: 1 }), '$: unknown field "evil"'],
      ['null', () => null, '$: expected an object, got null'],
    ];
    for (const [name, mutate, msg] of cases) {
      const f = join(dir, `${name.replace(/ /g, '-')}.json`);
      writeFileSync(f, JSON.stringify(mutate(structuredClone(base)) ?? null));
      const out = join(dir, `${name}.html`);
      const r = cli(['report', '--in', f, '--out', out]);
      expect(r.status, name).toBe(2);
      expect(r.stderr, name).toContain(msg);
      expect(r.stderr.trim().split('\n'), name).toHaveLength(1);
      expect(r.stderr, name).not.toMatch(/\n\s+at /);
      expect(existsSync(out), name).toBe(false);
    }
  });
});
