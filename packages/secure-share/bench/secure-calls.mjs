#!/usr/bin/env node
// Secure calls per 1,000 page-table allocations, and the time they would take under the
// mock's cost model, for three ways of sharing table pages with a VM:
//   rfc      one assign per table at alloc, one reassign per table at free (the 2023 RFC)
//   pooled   per-VMID pool topped up in prepare, one call per page (batch 1)
//   batched  per-VMID pool topped up in prepare, one call per `batch` pages
// Two workloads drive a real ARM LPAE stage-1 table through @io-pgtable/core:
//   churn    VM_BIND jobs that map 16 fresh 2 MiB windows (one leaf table each) and unmap
//            16 older ones, so freed tables come back
//   growth   the same maps without unmaps: nothing is recycled, every table is new
// Usage: node bench/secure-calls.mjs [--tables N] [--batch B] [--call-ns X] [--page-ns Y]
// Needs `npx nx run @io-pgtable/secure-share:build` first (imports ../dist).
import { PhysMemory, Prot, createPageTable, createSystemAllocator } from '@io-pgtable/core';
import { createScmMock, withSecureShare } from '../dist/index.js';
import { benchArgs } from '../../../tools/bench/args.mjs';

const values = benchArgs('@io-pgtable/secure-share bench: secure calls per 1,000 table allocations and their modelled time\nfor the rfc, pooled and batched strategies on churn and growth workloads; prints a markdown table.', {
  tables: { default: 10000, help: 'table allocations per run (at least)' },
  batch: { default: 32, help: 'pages per assign call (batched strategy)' },
  'call-ns': { default: 50000, help: 'modelled cost of one secure call, ns' },
  'page-ns': { default: 1000, help: 'modelled cost per page moved, ns' },
});
const TARGET = values.tables;
const BATCH = values.batch;
const callNs = values['call-ns'];
const pageNs = values['page-ns'];
const JOB = 16;
const TWO_MB = 0x20_0000;
const RW = Prot.READ | Prot.WRITE;
const VMID = 10;
const RUN = Object.freeze({ mayBlock: true, phase: 'run' });
const BLOCKING = Object.freeze({ mayBlock: true });

const STRATEGIES = {
  rfc: { batch: 1, poolTarget: 0, reclaimOnFlush: true, prepare: false },
  pooled: { batch: 1, poolTarget: 2 * JOB, reclaimOnFlush: false, prepare: true },
  batched: { batch: BATCH, poolTarget: 2 * JOB, reclaimOnFlush: false, prepare: true },
};

function run(strategyName, workload) {
  const s = STRATEGIES[strategyName];
  const memory = new PhysMemory();
  const backing = createSystemAllocator({ memory, limit: 0x4000_0000 });
  const scm = createScmMock({ callNs, pageNs });
  const share = withSecureShare(backing, { scm, vmid: VMID, batch: s.batch, poolTarget: s.poolTarget, reclaimOnFlush: s.reclaimOnFlush });
  let tables = 0;
  const counting = { ...share, alloc(size, ctx) { const p = share.alloc(size, ctx); if (p !== null) tables++; return p; } };
  const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 }, { allocator: counting });
  let runCalls = 0;
  let next = 0;
  const live = [];
  const t0 = performance.now();
  while (tables < TARGET) {
    if (s.prepare) share.topUp(); // prepare: may sleep, may make secure calls
    const before = scm.calls;
    const ctx = s.prepare ? RUN : BLOCKING; // the RFC cannot run in the fence path at all
    for (let i = 0; i < JOB; i++) {
      const w = next++;
      const r = pt.mapPages(w * TWO_MB, 0x4000_0000, 4096, 1, RW, ctx);
      if (r.error) throw new Error(`${strategyName}/${workload}: map failed with ${r.error} after ${tables} tables`);
      live.push(w);
    }
    if (workload === 'churn' && live.length > 2 * JOB) {
      for (const w of live.splice(0, JOB)) pt.unmapPages(w * TWO_MB, TWO_MB, 1);
    }
    share.flushDone(); // the driver's "walk-cache flush done" signal, still inside the job
    if (s.prepare) runCalls += scm.calls - before;
  }
  const wallMs = performance.now() - t0;
  const st = share.secureStats();
  return {
    strategy: strategyName,
    workload,
    tables,
    assignCalls: st.assignCalls,
    unassignCalls: st.unassignCalls,
    callsPer1000: (1000 * scm.calls) / tables,
    pagesPer1000: (1000 * scm.pagesMoved) / tables,
    modelledMsPer1000: (1000 * scm.modelledNs) / tables / 1e6,
    runPhaseCalls: s.prepare ? runCalls : 'n/a',
    wallMs,
  };
}

const rows = [];
for (const workload of ['churn', 'growth']) for (const name of Object.keys(STRATEGIES)) rows.push(run(name, workload));

console.log(`secure calls per 1,000 table allocations (>= ${TARGET} tables per run, jobs of ${JOB} maps, batch ${BATCH}, cost ${callNs / 1000} us/call + ${pageNs / 1000} us/page)`);
const header = ['workload', 'strategy', 'tables', 'assign', 'unassign', 'calls/1k', 'pages/1k', 'modelled ms/1k', 'calls in run', 'wall ms'];
const body = rows.map((r) => [
  r.workload,
  r.strategy,
  String(r.tables),
  String(r.assignCalls),
  String(r.unassignCalls),
  r.callsPer1000.toFixed(1),
  r.pagesPer1000.toFixed(1),
  r.modelledMsPer1000.toFixed(2),
  String(r.runPhaseCalls),
  r.wallMs.toFixed(1),
]);
const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
const line = (cells) => '| ' + cells.map((c, i) => c.padEnd(widths[i])).join(' | ') + ' |';
console.log(line(header));
console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
for (const b of body) console.log(line(b));
