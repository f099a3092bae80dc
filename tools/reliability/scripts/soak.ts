/**
 * Soak: `npm run soak [-- --ops N --config NAME --stack NAME --seed S]`. Runs N random
 * operations (default 1,000,000) through the largest plugin stack with the IOMMU model in
 * front, in episodes of 100,000 that each end with teardown and a leak check. Samples the
 * heap (after a forced GC) and the page accounting, and reports whether memory stayed flat.
 */
import type { AbstractCmd } from '../src/commands.js';
import { concretize } from '../src/commands.js';
import { configByName } from '../src/configs.js';
import { Harness } from '../src/harness.js';
import { LARGEST_STACK, SYSTEM_BASE, makeStack, type StackName } from '../src/stacks.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}
const ops = Number(arg('ops', '1000000'));
const cfg = configByName(arg('config', 's1-4k-48-48-hd'));
const stackName = arg('stack', LARGEST_STACK) as StackName;
let seed = Number(arg('seed', '12345')) >>> 0 || 1;
const EPISODE = 100_000;
const SAMPLE = 50_000;

/** xorshift32: a cheap deterministic stream, no allocation per draw. */
function rnd(n: number): number {
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed % n;
}

/**
 * Data PAs stay inside a few hundred MiB: every device write touches a 1 MiB chunk of
 * simulated memory that is never released, so random PAs over 4 GiB would measure the
 * simulated RAM the test writes (about 250 heap bytes per chunk), not the page tables.
 */
function next(leaves: number): AbstractCmd {
  const r = rnd(100);
  // Keep the tree around 100 leaves: unmap more when it grows.
  const unmapBias = leaves > 120 ? 60 : leaves > 60 ? 35 : 20;
  if (r < unmapBias) return { k: 'unmap', useLeaf: rnd(5) !== 0, pick: rnd(1000), size: rnd(8), anchor: rnd(5), slot: rnd(8), count: 1 + rnd(3) };
  if (r < unmapBias + 40) return { k: 'map', size: rnd(4) === 0 ? 1 : 0, anchor: rnd(5), slot: rnd(256), count: 1 + rnd(4), pa: rnd(64), prot: 1 + rnd(63) };
  if (r < unmapBias + 55) return { k: 'access', pick: rnd(1000), write: rnd(2) === 0 };
  if (r < unmapBias + 65) return { k: 'dirty', pick: rnd(1000), span: 1 + rnd(4), noClear: rnd(2) === 0 };
  return { k: 'phys', useLeaf: rnd(2) === 0, pick: rnd(1000), off: rnd(1 << 30) };
}

const gc = (globalThis as { gc?: () => void }).gc;
const heap = (): number => {
  gc?.();
  return process.memoryUsage().heapUsed;
};
const stack = makeStack(stackName);
const dirty = cfg.format === 'ARM_64_LPAE_S1' && cfg.quirks.includes('ARM_HD');
const samples: Array<{ op: number; heapMiB: number; externalMiB: number; chunks: number; systemOutstanding: number; topLive: number; cached: number; leaves: number; tables: number }> = [];
const t0 = performance.now();
let done = 0;
let h = new Harness(cfg, stack, { mode: 'strict', checkEvery: false, keepLog: false });
const heap0 = heap();
while (done < ops) {
  h.run(concretize(h.shape, h.model, next(h.model.leaves.size), { dirty, access: true, noWrite: [SYSTEM_BASE, SYSTEM_BASE + 0x1000_0000] }));
  done++;
  if (done % 1000 === 0) h.checkAll();
  if (done % SAMPLE === 0) {
    const layers = stack.layers.map((l) => l.stats());
    samples.push({
      op: done,
      heapMiB: heap() / 2 ** 20,
      externalMiB: process.memoryUsage().arrayBuffers / 2 ** 20,
      chunks: stack.memory.touchedChunks,
      systemOutstanding: stack.system.stats().outstanding,
      topLive: layers[0]!.live,
      cached: layers.reduce((n, s) => n + s.cached + s.pendingFlush, 0),
      leaves: h.model.leaves.size,
      tables: h.model.tableCount,
    });
    const s = samples[samples.length - 1]!;
    console.log(`${String(done).padStart(8)} ops  heap ${s.heapMiB.toFixed(1)} MiB  arrayBuffers ${s.externalMiB.toFixed(0)} MiB (${s.chunks} 1-MiB memory chunks)  system outstanding ${s.systemOutstanding}  top live ${s.topLive}  cached+pending ${s.cached}  leaves ${s.leaves}  tables ${s.tables}`);
  }
  if (done % EPISODE === 0 || done === ops) {
    h.teardown(); // throws on any leak
    if (done < ops) h = new Harness(cfg, stack, { mode: 'strict', checkEvery: false, keepLog: false });
  }
}
const secs = (performance.now() - t0) / 1000;
const heaps = samples.map((s) => s.heapMiB);
const first = heaps.slice(0, Math.max(1, heaps.length >> 1));
const last = heaps.slice(heaps.length >> 1);
const avg = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
const growth = avg(last) - avg(first);
const end = stack.system.stats();
console.log(`\nsoak: ${done} ops (${cfg.name}, stack ${stackName}) in ${secs.toFixed(1)} s, ${Math.round(done / secs)} ops/s${gc ? '' : ' (no --expose-gc: heap numbers are noisy)'}`);
console.log(`heap: start ${(heap0 / 2 ** 20).toFixed(1)} MiB, min ${Math.min(...heaps).toFixed(1)}, max ${Math.max(...heaps).toFixed(1)}, mean of 2nd half - mean of 1st half = ${growth.toFixed(2)} MiB`);
console.log(`after final teardown + drain: system outstanding ${end.outstanding} bytes, live tables ${end.liveTables}; secure calls ${stack.secureCalls?.() ?? 0}`);
const flat = Math.abs(growth) < 2 && end.outstanding === stack.layers.reduce((n, l) => n + l.stats().quarantined, 0);
console.log(flat ? 'memory flat: yes' : 'memory flat: NO');
process.exit(flat ? 0 : 1);
