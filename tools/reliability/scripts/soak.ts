/**
 * Soak: `npm run soak [-- --ops N --config NAME --stack NAME --seed S --job J]`. Runs N
 * random operations (default 1,000,000) through the largest plugin stack with the IOMMU
 * model in front, in episodes of 100,000 that each end with teardown and a leak check.
 * Over a reservation stack maps and unmaps are VM_BIND jobs of up to J ops (default 8:
 * submit = count + admission + prepare, run in the signalling section, cleanup), reads go
 * to the table between jobs. Samples the heap (after a forced GC) and the page
 * accounting, and reports whether memory stayed flat.
 */
import { xorshift32 } from '@io-pgtable/core';
import type { AbstractCmd } from '../src/commands.js';
import { concretize } from '../src/commands.js';
import { configByName } from '../src/configs.js';
import { cutsBlock } from '../src/bind.js';
import { Harness, type JobCmd } from '../src/harness.js';
import { LARGEST_STACK, SYSTEM_BASE, isBindStack, makeStack, type StackName } from '../src/stacks.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : dflt;
}
const ops = Number(arg('ops', '1000000'));
const cfg = configByName(arg('config', 's1-4k-48-48-hd'));
const stackName = arg('stack', LARGEST_STACK) as StackName;
const seed = Number(arg('seed', '12345')) >>> 0 || 1;
const jobSize = Number(arg('job', '16'));
const bindStack = isBindStack(stackName);
const EPISODE = 100_000;
const SAMPLE = 50_000;

const draw = xorshift32(seed);
/** A draw below n from core's xorshift32 stream. */
function rnd(n: number): number {
  return draw() % n;
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
  if (r < unmapBias) {
    // A VM unmap removes everything mapped in its range (a raw unmap stops at the first
    // hole), so VM_BIND jobs unmap mostly at the granule to keep the tree near 100 leaves.
    const size = bindStack ? (rnd(16) === 0 ? 1 : 0) : rnd(8);
    return { k: 'unmap', useLeaf: rnd(5) !== 0, pick: rnd(1000), size, anchor: rnd(5), slot: rnd(8), count: 1 + rnd(3) };
  }
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
// A fresh stack per episode: the SCM mock of secure-share logs every call it gets and
// never forgets one, which would be measured as heap growth of the stack.
let stack = makeStack(stackName);
const dirty = cfg.format === 'ARM_64_LPAE_S1' && cfg.quirks.includes('ARM_HD');
const samples: Array<{ op: number; scmCalls: number; heapMiB: number; externalMiB: number; chunks: number; systemOutstanding: number; topLive: number; cached: number; leaves: number; tables: number }> = [];
const t0 = performance.now();
let done = 0;
let h = new Harness(cfg, stack, { mode: 'strict', checkEvery: false, keepLog: false });
const heap0 = heap();
/** Reservation and admission counters of one episode's stack. */
function bindTotals(): number[] {
  const c = stack.bind!.reservation.counters();
  const a = stack.bind!.admission.counters();
  return [c.reservations, c.reserved, c.consumed, c.returned, c.exhaustions, c.failedPrepares, c.violations, a.peak, a.outstanding, stack.secureCalls?.() ?? 0];
}
const totals: number[][] = [];
let nextCheck = 1000;
let nextSample = SAMPLE;
let nextEpisode = Math.min(EPISODE, ops);
let jobs = 0;
let jobOps = 0;
const job: JobCmd[] = [];
let refused = 0;

/**
 * A driver validates VM_BIND ops at submit (drm_gpuvm refuses overlapping maps, Panthor
 * unmaps that cut a block); a job stops at its first failed op. The soak submits the
 * ops a driver would accept, so jobs run whole; invalid ops are what the fuzz and
 * fault-injection runs exercise.
 */
function acceptable(c: JobCmd): boolean {
  const m = h.model;
  if (c.op === 'unmap') return !cutsBlock(m, h.shape, c.iova, c.pgsize * c.pgcount);
  if ((c.prot & 3) === 0) return false;
  const s = c.iova;
  const e = s + c.pgsize * m.chunk(c.iova, c.pgsize, c.pgcount);
  for (const l of m.leaves.values()) if (l.iova < e && s < l.iova + l.size) return false;
  for (const j of job) if (j.op === 'map' && j.iova < e && s < j.iova + j.pgsize * m.chunk(j.iova, j.pgsize, j.pgcount)) return false;
  return true;
}
const copts = { dirty, access: true, noWrite: [SYSTEM_BASE, SYSTEM_BASE + 0x1000_0000] as const };
while (done < ops) {
  const c = concretize(h.shape, h.model, next(h.model.leaves.size + job.length), copts);
  if (h.bind !== null && (c.op === 'map' || c.op === 'unmap')) {
    // A job's commands are made against the tree as it is before the job runs.
    if (c.op === 'unmap' && cutsBlock(h.model, h.shape, c.iova, c.pgsize * c.pgcount)) {
      // Unmap the whole block instead, as a driver splitting nothing would.
      const l = h.model.leafAt(c.iova) ?? h.model.leafAt(c.iova + c.pgsize * c.pgcount)!;
      c.iova = l.iova;
      c.pgsize = l.size;
      c.pgcount = 1;
    }
    if (!acceptable(c)) {
      refused++;
      continue;
    }
    job.push(c);
    if (job.length >= jobSize || done + job.length >= nextEpisode) {
      const ran = h.runJob(job);
      jobs++;
      jobOps += ran;
      done += ran;
      job.length = 0;
    }
  } else {
    h.run(c);
    done++;
  }
  if (done >= nextCheck) {
    h.checkAll();
    nextCheck = done + 1000;
  }
  if (done >= nextSample) {
    nextSample += SAMPLE;
    const layers = stack.layers.map((l) => l.stats());
    samples.push({
      op: done,
      scmCalls: stack.secureCalls?.() ?? 0,
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
    console.log(`${String(done).padStart(8)} ops  heap ${s.heapMiB.toFixed(1)} MiB  arrayBuffers ${s.externalMiB.toFixed(0)} MiB (${s.chunks} 1-MiB memory chunks)  system outstanding ${s.systemOutstanding}  top live ${s.topLive}  cached+pending ${s.cached}  leaves ${s.leaves}  tables ${s.tables}${stack.secureCalls ? `  scm log ${s.scmCalls}` : ''}`);
  }
  if (done >= nextEpisode) {
    if (job.length > 0) throw new Error('unreachable: a job was left unsubmitted at the end of an episode');
    h.teardown(); // throws on any leak
    nextEpisode = Math.min(nextEpisode + EPISODE, ops);
    if (done < ops) {
      if (stack.bind) totals.push(bindTotals());
      stack = makeStack(stackName);
      h = new Harness(cfg, stack, { mode: 'strict', checkEvery: false, keepLog: false });
    }
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
if (stack.bind) {
  totals.push(bindTotals());
  const sum = (i: number) => totals.reduce((n, t) => n + t[i]!, 0);
  const peak = Math.max(...totals.map((t) => t[7]!));
  console.log(`VM_BIND: ${jobs} jobs (up to ${jobSize} ops, ${jobOps} map/unmap ops ran, ${refused} invalid ops not submitted, strategy ${stack.bind.strategy}); reservations ${sum(0)}, pages reserved ${sum(1)}, consumed ${sum(2)}, returned ${sum(3)}, exhaustions ${sum(4)}, failed prepares ${sum(5)}, section violations ${sum(6)}; admission peak ${peak} pages, outstanding ${sum(8)}; secure calls ${sum(9)}`);
}
console.log(`heap: start ${(heap0 / 2 ** 20).toFixed(1)} MiB, min ${Math.min(...heaps).toFixed(1)}, max ${Math.max(...heaps).toFixed(1)}, mean of 2nd half - mean of 1st half = ${growth.toFixed(2)} MiB`);
console.log(`after final teardown + drain: system outstanding ${end.outstanding} bytes, live tables ${end.liveTables}; secure calls (last episode) ${stack.secureCalls?.() ?? 0}`);
const flat = Math.abs(growth) < 2 && end.outstanding === stack.layers.reduce((n, l) => n + l.stats().quarantined, 0);
console.log(flat ? 'memory flat: yes' : 'memory flat: NO');
process.exit(flat ? 0 : 1);
