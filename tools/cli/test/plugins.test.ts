import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, cli, tempDir } from './helpers';

/** A third-party plugin package, plain JS and dependency-free: a counting decorator. */
function pluginProject(): string {
  const dir = tempDir('iopgt-plugin-');
  const pkg = join(dir, 'node_modules', 'acme-table-cache');
  mkdirSync(pkg, { recursive: true });
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({ name: 'acme-table-cache', version: '1.0.0', type: 'module', exports: { '.': { import: './index.js' } } }));
  writeFileSync(
    join(pkg, 'index.js'),
    `export function withAcme(inner) {
  let calls = 0;
  return { caps: { ...inner.caps, name: 'acme(' + inner.caps.name + ')' }, inner, memory: inner.memory,
    alloc(size, ctx) { calls++; return inner.alloc(size, ctx); },
    free(paddr, size, ctx) { inner.free(paddr, size, ctx); },
    stats() { return { ...inner.stats(), backingCalls: calls }; },
    flushDone(token) { inner.flushDone(token); } };
}
`,
  );
  writeFileSync(join(dir, 'stacks.mjs'), `import { withAcme } from 'acme-table-cache';\nexport const ioPgtableStacks = [{ name: 'acme-a', description: 'acme, first', build: (env) => { const a = withAcme(env.system); return { allocators: Array(env.contexts).fill(a), metrics: () => ({}), teardown() {} }; } }, { name: 'acme-b', description: 'acme, second', traits: { reservesBeforeRun: false }, build: (env) => { const a = withAcme(env.system); return { allocators: Array(env.contexts).fill(a), metrics: () => ({}), teardown() {} }; } }];\n`);
  return dir;
}

const FAST = ['--workload', 'random-churn', '--scale', '0.03', '--reps', '1'];

describe('--stack with third-party plugins', { timeout: 300_000 }, () => {
  it('a plugin package by name runs beside the built-ins (+), on worker threads too', () => {
    const dir = pluginProject();
    for (const jobs of ['1', '2']) {
      const r = cli(['simulate', '--json', ...FAST, '--stack', '+acme-table-cache', '--jobs', jobs], { cwd: dir });
      expect(r.status, r.stderr).toBe(0);
      const results = JSON.parse(r.stdout).results as Array<{ stack: string; tablesAllocated: number; leakedPages: number }>;
      expect(results.map((x) => x.stack)).toEqual(['system', 'pool', 'batched', 'pool+batched', 'reserve-per-op', 'reserve-merged', 'secure-pooled', 'secure-per-table', 'acme-table-cache']);
      const acme = results.at(-1)!;
      expect(acme.tablesAllocated).toBe(results[0]!.tablesAllocated);
      expect(acme.leakedPages).toBe(0);
    }
  });

  it('a module exporting ioPgtableStacks brings every stack it lists', () => {
    const dir = pluginProject();
    const r = cli(['simulate', '--json', ...FAST, '--stack', 'system,./stacks.mjs', '--jobs', '2'], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).results.map((x: { stack: string }) => x.stack)).toEqual(['system', 'acme-a', 'acme-b']);
  });

  it('an unknown package, a module without stacks, and a .wasm that is not one fail with one clear line', () => {
    const dir = pluginProject();
    writeFileSync(join(dir, 'empty.mjs'), 'export const x = 1;\n');
    writeFileSync(join(dir, 'bad.wasm'), 'not wasm');
    for (const [spec, msg] of [
      ['no-such-plugin', 'no package no-such-plugin in node_modules'],
      ['./empty.mjs', 'exports no stack'],
      ['./missing.wasm', 'cannot read: ENOENT'],
      ['./bad.wasm', 'not a valid WebAssembly module'],
      ['constructor', 'no package constructor in node_modules'],
    ] as Array<[string, string]>) {
      const r = cli(['simulate', ...FAST, '--stack', spec], { cwd: dir });
      expect(r.status, spec).toBe(2);
      expect(r.stderr, spec).toContain(msg);
      expect(r.stderr.trim().split('\n'), spec).toHaveLength(1);
    }
  });

  it('a C allocator built to .wasm runs as a stack through @io-pgtable/c-allocator', () => {
    const dir = tempDir('iopgt-wasm-');
    const wasm = join(dir, 'reservation.wasm');
    const b = cli(['build-c', join(REPO_ROOT, 'examples/c-reservation/reservation.c'), '-o', wasm]);
    expect(b.status, b.stderr).toBe(0);
    const r = cli(['compare', '--json', '--out-dir', dir, '--workload', 'vulkan-sparse', '--scale', '0.03', '--reps', '1', '--stack', `system,${wasm}`, '--jobs', '2']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.results.map((x: { stack: string }) => x.stack)).toEqual(['system', 'c:reservation']);
    const c = j.results[1];
    expect(c.leakedPages).toBe(0);
    expect(c.runPhaseAllocs).toBe(0);
    expect(c.reservedTables).toBeGreaterThanOrEqual(c.usedTables);
    // It reserves before the run phase, so it qualifies for the async VM_BIND workload.
    expect(j.recommendations[0].stack).toBe('c:reservation');
  });
});
