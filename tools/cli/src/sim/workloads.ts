/**
 * Named, seeded workloads: realistic VM_BIND patterns as jobs of map/unmap ranges.
 * Each range is what a driver hands to iommu_map/iommu_unmap (or the io-pgtable
 * equivalent); the simulator splits it into map_pages/unmap_pages calls.
 */
import { CliError, EXIT_USAGE, readTextFileSync } from '../io.js';
import { mulberry32, parseTrace } from '@io-pgtable/core';
import { importFtrace } from '../ftrace.js';

export const SZ_4K = 0x1000;
export const SZ_64K = 0x10000;
export const SZ_2M = 0x20_0000;
export const SZ_1G = 0x4000_0000;

/** One range operation (bytes; addresses below 2^53). */
export interface RangeOp {
  kind: 'map' | 'unmap';
  iova: number;
  /** Physical address (map only). */
  paddr: number;
  size: number;
}

/** A VM_BIND job on one context: its ops run back to back, then the TLB flush completes. */
export interface Job {
  ctx: number;
  ops: RangeOp[];
}

export interface PgtableSpec {
  format: 'ARM_64_LPAE_S1' | 'ARM_64_LPAE_S2' | 'ARM_32_LPAE_S1' | 'ARM_32_LPAE_S2' | 'ARM_MALI_LPAE';
  pgsizeBitmap: number;
  ias: number;
  oas: number;
}

/**
 * Hard requirements a driver places on its allocator for a workload (recommend.ts):
 * - `async-vm-bind`: jobs run asynchronously (VM_BIND queues), and the run phase runs in
 *   the fence-signalling path, which must not allocate: tables must be reserved beforehand;
 * - `shared-vmid`: the tables are shared with another VMID (a secure VM), so every table
 *   page must be assigned through the secure monitor.
 */
export type WorkloadNeed = 'async-vm-bind' | 'shared-vmid';
export const WORKLOAD_NEEDS: readonly WorkloadNeed[] = ['async-vm-bind', 'shared-vmid'];

export interface Workload {
  name: string;
  description: string;
  /** Hard constraints on the allocator (none: any stack qualifies). */
  needs: WorkloadNeed[];
  seed: number;
  /** Page-table configuration shared by every context. */
  pgtable: PgtableSpec;
  /** Number of contexts (page tables); secure stacks give each its own VMID. */
  contexts: number;
  jobs: Job[];
}

export interface WorkloadOptions {
  seed: number;
  /** Multiplies the default amount of work (1 = the default configuration). */
  scale: number;
  /** For `trace`: a trace file (ours, .jsonl) or ftrace text to replay instead of the embedded capture. */
  traceFile?: string;
}

export interface WorkloadDef {
  name: string;
  description: string;
  needs: WorkloadNeed[];
  build(opts: WorkloadOptions): Workload;
}

/** Small fast PRNG (core's mulberry32): deterministic for a seed, no allocation per draw. */
export const rng: (seed: number) => () => number = mulberry32;

/** Remove and return a random element (order is not kept: O(1) swap with the last). */
function takeRandom<T>(list: T[], r: () => number): T {
  const i = Math.floor(r() * list.length);
  const v = list[i]!;
  list[i] = list[list.length - 1]!;
  list.pop();
  return v;
}

const S1_48: PgtableSpec = { format: 'ARM_64_LPAE_S1', pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };

/**
 * Vulkan sparse residency: 64 KiB tiles of a huge sparse image bound and unbound in
 * small, unsorted batches (vkQueueBindSparse). Tiles land all over a 64 GiB VA range, so
 * nearly every bind needs fresh level-2/level-3 tables and unbinds leave them behind.
 */
const vulkanSparse: WorkloadDef = {
  name: 'vulkan-sparse',
  needs: ['async-vm-bind'],
  description: 'Vulkan sparse binding: many tiny unsorted 64 KiB tile binds/unbinds over a 64 GiB range',
  build({ seed, scale }) {
    const r = rng(seed);
    const tiles = 1 << 20; // 64 GiB / 64 KiB
    const base = 0x10_0000_0000;
    const live: number[] = [];
    const isLive = new Set<number>();
    const jobs: Job[] = [];
    const nJobs = Math.round(600 * scale);
    for (let j = 0; j < nJobs; j++) {
      const ops: RangeOp[] = [];
      const n = 4 + Math.floor(r() * 28);
      for (let k = 0; k < n; k++) {
        if (live.length > 0 && r() < 0.4) {
          const t = takeRandom(live, r);
          isLive.delete(t);
          ops.push({ kind: 'unmap', iova: base + t * SZ_64K, paddr: 0, size: SZ_64K });
        } else {
          // Tiles cluster a little (mip levels of one resource) but arrive unsorted.
          const cluster = Math.floor(r() * 256) * 4096;
          const t = cluster + Math.floor(r() * 4096);
          if (isLive.has(t % tiles)) continue;
          isLive.add(t);
          live.push(t);
          ops.push({ kind: 'map', iova: base + t * SZ_64K, paddr: 0x1_0000_0000 + Math.floor(r() * 0x10000) * SZ_64K, size: SZ_64K });
        }
      }
      jobs.push({ ctx: 0, ops });
    }
    return { name: this.name, description: this.description, needs: this.needs, seed, pgtable: S1_48, contexts: 1, jobs };
  },
};

/**
 * Large buffers: 2 MiB-aligned GPU buffers of 2-64 MiB. Physically contiguous ones map
 * as 2 MiB blocks; scattered ones (4 KiB-aligned backing) need pages, so one buffer
 * often mixes both at its edges. Buffers live for a while and are unmapped whole.
 */
const largeBuffers: WorkloadDef = {
  name: 'large-buffers',
  needs: [],
  description: 'large buffers: 2 MiB-aligned 2-64 MiB maps/unmaps mixing 2 MiB blocks and 4 KiB pages',
  build({ seed, scale }) {
    const r = rng(seed);
    let nextVa = 0x40_0000_0000;
    const live: Array<{ iova: number; size: number }> = [];
    const jobs: Job[] = [];
    const nJobs = Math.round(300 * scale);
    for (let j = 0; j < nJobs; j++) {
      const ops: RangeOp[] = [];
      if (live.length > 24 || (live.length > 0 && r() < 0.35)) {
        const b = takeRandom(live, r);
        ops.push({ kind: 'unmap', iova: b.iova, paddr: 0, size: b.size });
      } else {
        const size = (1 + Math.floor(r() * 32)) * SZ_2M;
        const contiguous = r() < 0.6;
        // Some buffers start one guard page into their 2 MiB slot: the first 2 MiB then
        // maps as pages and the rest as blocks.
        const guard = r() < 0.3 ? SZ_4K : 0;
        const iova = nextVa + guard;
        const len = size - guard;
        nextVa += size + SZ_2M;
        // Contiguous backing shares the IOVA's 2 MiB alignment (blocks); scattered backing
        // is only page-aligned, so iommu_map falls back to 4 KiB pages for the whole run.
        const paddr = contiguous ? 0x2_0000_0000 + Math.floor(r() * 0x4000) * SZ_2M + guard : 0x2_0000_0000 + Math.floor(r() * 0x4000) * SZ_2M + SZ_4K * (1 + Math.floor(r() * 511)) + guard;
        ops.push({ kind: 'map', iova, paddr, size: len });
        live.push({ iova, size: len });
      }
      jobs.push({ ctx: 0, ops });
    }
    return { name: this.name, description: this.description, needs: this.needs, seed, pgtable: S1_48, contexts: 1, jobs };
  },
};

/** Random churn: maps and unmaps of 4 KiB-1 MiB at random places in a 16 GiB window. */
const randomChurn: WorkloadDef = {
  name: 'random-churn',
  needs: [],
  description: 'random churn: 4 KiB-1 MiB maps and unmaps at random places in a 16 GiB window',
  build({ seed, scale }) {
    const r = rng(seed);
    const slots = 16384; // 16 GiB / 1 MiB
    const base = 0x80_0000_0000;
    const live = new Map<number, number>();
    const liveList: number[] = [];
    const jobs: Job[] = [];
    const nJobs = Math.round(1500 * scale);
    for (let j = 0; j < nJobs; j++) {
      const ops: RangeOp[] = [];
      for (let k = 0; k < 4; k++) {
        if (liveList.length > 0 && (liveList.length > 2000 || r() < 0.45)) {
          const s = takeRandom(liveList, r);
          ops.push({ kind: 'unmap', iova: base + s * 0x10_0000, paddr: 0, size: live.get(s)! });
          live.delete(s);
        } else {
          const s = Math.floor(r() * slots);
          if (live.has(s)) continue;
          const size = (1 + Math.floor(r() * 256)) * SZ_4K;
          live.set(s, size);
          liveList.push(s);
          ops.push({ kind: 'map', iova: base + s * 0x10_0000, paddr: 0x3_0000_0000 + Math.floor(r() * 0x40000) * SZ_4K, size });
        }
      }
      jobs.push({ ctx: 0, ops });
    }
    return { name: this.name, description: this.description, needs: this.needs, seed, pgtable: S1_48, contexts: 1, jobs };
  },
};

/**
 * Several secure contexts: four VMs (stage-2, 40-bit, as a hypervisor-managed SMMU
 * context per VMID) interleaving small buffer binds; every table page must be shared
 * with its VMID through the secure monitor.
 */
const secureContexts: WorkloadDef = {
  name: 'secure-vmids',
  needs: ['shared-vmid'],
  description: 'several secure contexts: 4 VMIDs (S2, 40-bit) interleaving 16 KiB-512 KiB binds',
  build({ seed, scale }) {
    const r = rng(seed);
    const contexts = 4;
    const live: Array<Array<{ iova: number; size: number }>> = Array.from({ length: contexts }, () => []);
    const nextVa = Array.from({ length: contexts }, () => 0x1_0000_0000);
    const jobs: Job[] = [];
    const nJobs = Math.round(800 * scale);
    for (let j = 0; j < nJobs; j++) {
      const ctx = Math.floor(r() * contexts);
      const ops: RangeOp[] = [];
      const l = live[ctx]!;
      if (l.length > 64 || (l.length > 0 && r() < 0.45)) {
        const b = takeRandom(l, r);
        ops.push({ kind: 'unmap', iova: b.iova, paddr: 0, size: b.size });
      } else {
        const size = (4 + Math.floor(r() * 125)) * SZ_4K;
        const iova = nextVa[ctx]!;
        // Each buffer gets its own 2 MiB-aligned slot far from the last: new leaf tables.
        nextVa[ctx] = iova + (1 + Math.floor(r() * 8)) * SZ_2M * 4;
        ops.push({ kind: 'map', iova, paddr: 0x4_0000_0000 + Math.floor(r() * 0x40000) * SZ_4K, size });
        l.push({ iova, size });
      }
      jobs.push({ ctx, ops });
    }
    return {
      name: this.name,
      description: this.description,
      needs: this.needs,
      seed,
      pgtable: { format: 'ARM_64_LPAE_S2', pgsizeBitmap: 0x40201000, ias: 40, oas: 40 },
      contexts,
      jobs,
    };
  },
};

/**
 * A capture in the kernel's ftrace text format, written here from a seeded model of a
 * compositor's buffer churn (a real device capture is passed with --trace). It goes
 * through the same import path as a real capture.
 */
export function embeddedCapture(seed: number, events: number): string {
  const r = rng(seed);
  const out: string[] = ['# tracer: nop', '#', '#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION', '#              | |         |   |||||     |         |'];
  const live: Array<{ iova: number; size: number }> = [];
  let va = 0x1_0000_0000;
  let ts = 1000;
  const h16 = (v: number) => '0x' + v.toString(16).padStart(16, '0');
  for (let i = 0; i < events; i++) {
    ts += r() * 0.001;
    const stamp = `${ts.toFixed(6)}`;
    if (live.length > 0 && (live.length > 48 || r() < 0.45)) {
      const b = takeRandom(live, r);
      out.push(`     kworker/u16:2-${100 + (i % 7)}    [00${i % 4}] ..... ${stamp}: unmap: IOMMU: iova=${h16(b.iova)} - ${h16(b.iova + b.size)} size=${b.size} unmapped_size=${b.size}`);
    } else {
      // Frame buffers (8 MiB, often contiguous) and small command buffers (pages).
      const big = r() < 0.3;
      const size = big ? 0x80_0000 : (1 + Math.floor(r() * 64)) * SZ_4K;
      const paddr = big && r() < 0.7 ? 0x9000_0000 + Math.floor(r() * 256) * SZ_2M : 0x9000_0000 + Math.floor(r() * 0x20000) * SZ_4K;
      const iova = va;
      va += Math.ceil(size / SZ_2M) * SZ_2M + SZ_2M;
      live.push({ iova, size });
      out.push(`  composer@2.4-se-${500 + (i % 3)}    [00${i % 4}] ..... ${stamp}: map: IOMMU: iova=${h16(iova)} - ${h16(iova + size)} paddr=${h16(paddr)} size=${size}`);
    }
  }
  return out.join('\n') + '\n';
}

/**
 * Turn a trace of map_pages/unmap_pages calls back into the iommu_map/iommu_unmap ranges
 * they came from, one job each. iommu_map asks map_pages for the rest of the range, and
 * map_pages stops at the end of a leaf table, so one range is several calls whose spans
 * overlap: a call that starts inside the previous call's span (same iova-paddr offset)
 * continues that range. Replaying each call as its own range would map pages twice.
 */
export function jobsFromTrace(text: string, file: string): { pgtable: PgtableSpec; jobs: Job[] } {
  const t = parseTrace(text, file);
  const jobs: Job[] = [];
  let cur: RangeOp | null = null;
  const flush = (): void => {
    if (cur) jobs.push({ ctx: 0, ops: [cur] });
    cur = null;
  };
  for (const op of t.ops) {
    if (op.op !== 'map' && op.op !== 'unmap') continue;
    // The simulator's addresses are numbers: a legal u64 it cannot hold exactly is refused
    // (rounded, it would map somewhere else and report costs of a different workload).
    const end = op.iova + op.pgsize * op.pgcount;
    const pa = op.op === 'map' ? op.paddr : 0n;
    if (end > MAX_SIM_ADDR || pa + op.pgsize * op.pgcount > MAX_SIM_ADDR) {
      const what = end > MAX_SIM_ADDR ? `iova 0x${op.iova.toString(16)}` : `paddr 0x${pa.toString(16)}`;
      throw new CliError(`${op.op}: ${what} + size 0x${(op.pgsize * op.pgcount).toString(16)} reaches 2^53 or above: the simulator holds addresses as numbers (replay runs any u64 trace)`, EXIT_USAGE, file, op.line);
    }
    const iova = Number(op.iova);
    const size = Number(op.pgsize * op.pgcount);
    const paddr = op.op === 'map' ? Number(op.paddr) : 0;
    const c = cur as RangeOp | null;
    if (c && c.kind === op.op && iova > c.iova && iova <= c.iova + c.size && (op.op === 'unmap' || paddr - c.paddr === iova - c.iova)) {
      c.size = Math.max(c.size, iova + size - c.iova);
      continue;
    }
    flush();
    cur = { kind: op.op, iova, paddr, size };
  }
  flush();
  const h = t.header;
  return { pgtable: { format: h.format, pgsizeBitmap: Number(h.pgsizeBitmap), ias: h.ias, oas: h.oas }, jobs };
}

const DEFAULT_IMPORT = { format: 'ARM_64_LPAE_S1', pgsizeBitmap: 0x40201000n, ias: 48, oas: 48 } as const;

/** Largest address + size the simulator holds exactly. */
const MAX_SIM_ADDR = BigInt(Number.MAX_SAFE_INTEGER);

/** A capture is read whole (its jobs are built in memory): bounded, so /dev/zero or a 1 GB line cannot fill memory. */
export const MAX_CAPTURE_BYTES = 128 * 1024 * 1024;
/** Trace and tracefs lines are a few hundred bytes; the trace format's own limit is 1 MiB. */
const MAX_CAPTURE_LINE = 1 << 20;

function readCapture(file: string): string {
  return readTextFileSync(file, file, MAX_CAPTURE_BYTES, 'a --trace capture (simulate, bench and compare hold it in memory; replay and import-ftrace stream any size)', MAX_CAPTURE_LINE);
}

/**
 * A user's capture as a workload: our `.trace.jsonl` (starts with its JSON header) or
 * ftrace text, imported on the fly as `io-pgtable import-ftrace` would.
 */
export function traceWorkload(file: string, name: string, needs: WorkloadNeed[] = []): Workload {
  let text = readCapture(file);
  if (!text.trimStart().startsWith('{')) text = importFtrace(text, { ...DEFAULT_IMPORT, file }).lines.join('\n');
  const { pgtable, jobs } = jobsFromTrace(text, file);
  return { name, description: `capture ${file}`, needs, seed: 0, pgtable, contexts: 1, jobs };
}

const traceReplay: WorkloadDef = {
  name: 'trace-replay',
  needs: [],
  description: 'replay of a captured trace (embedded ftrace capture of compositor churn, or --trace FILE)',
  build({ seed, scale, traceFile }) {
    let text: string;
    let file: string;
    if (traceFile !== undefined) {
      text = readCapture(traceFile);
      file = traceFile;
      // Our own trace format starts with a JSON header; anything else is ftrace text.
      if (!text.trimStart().startsWith('{')) text = importFtrace(text, { ...DEFAULT_IMPORT, file }).lines.join('\n');
    } else {
      file = '<embedded capture>';
      text = importFtrace(embeddedCapture(seed, Math.round(3000 * scale)), { ...DEFAULT_IMPORT, file }).lines.join('\n');
    }
    const { pgtable, jobs } = jobsFromTrace(text, file);
    return { name: this.name, description: this.description, needs: this.needs, seed, pgtable, contexts: 1, jobs };
  },
};

export const WORKLOADS: readonly WorkloadDef[] = [vulkanSparse, largeBuffers, randomChurn, secureContexts, traceReplay];

export function findWorkload(name: string): WorkloadDef | undefined {
  return WORKLOADS.find((w) => w.name === name);
}
