import { describe, expect, it } from 'vitest';
import { configByName } from '../src/configs.js';
import { knownFinding } from '../src/findings.js';
import { FAULT_KINDS, FLUSH_REGIMES, MATRIX_STACKS, cellApplies, matrixCell, runMatrix, type FaultKind } from '../src/matrix.js';

/**
 * A spread of configurations: every format family, a 52-bit 64K table, a tiny PGD, a
 * concatenated stage-2 PGD, TTBR1, and a non-coherent walk (the DMA map faults).
 * `npm run fault-matrix` runs every configuration and every k.
 */
const CONFIGS = ['s1-4k-48-48-hd', 's2-4k-42-42-concat8', 's1-64k-52-52-4t', 'mali-4k-33-33-pgd8', 's1-4k-44-44-noncoh', 's1-16k-47-48-ttbr1', 's1-32-4k-32-40'].map(configByName);
/** Call indices tried per fault kind and cell (the first, the last, and seeded picks between). */
const SAMPLE = 4;

describe('the fault matrix', () => {
  it.each(MATRIX_STACKS.map((s) => [s] as const))('%s: every fault kind at every sampled k, under both flush regimes, ends typed, unchanged on failure and leak-free (or is a reported finding)', (stack) => {
    const runs: Partial<Record<FaultKind, number>> = {};
    const failing: Partial<Record<FaultKind, string[]>> = {};
    let deferredCells = 0;
    for (const cfg of CONFIGS) for (const regime of FLUSH_REGIMES) {
      if (!cellApplies(cfg, stack, regime)) continue;
      if (regime === 'deferred') deferredCells++;
      const r = matrixCell(cfg, stack, { sample: SAMPLE, regime });
      // The clean run holds and every planned fault fired.
      expect(r.failures.filter((f) => f.startsWith('clean run') || f.includes('never fired'))).toEqual([]);
      for (const k of FAULT_KINDS) {
        runs[k] = (runs[k] ?? 0) + (r.runs[k] ?? 0);
        if ((r.failing[k] ?? 0) > 0) (failing[k] ??= []).push(...r.failures.filter((f) => f.includes(` ${k} #`)));
      }
    }
    // The matrix really reached every site this stack has: allocations, frees, the page
    // table's free hook and the TLB callbacks everywhere, the monitor on secure stacks, DMA
    // maps on the non-coherent configuration (not on VM_BIND stacks, whose Vm has no DMA ops).
    for (const k of ['alloc-null', 'alloc-throw', 'free-throw', 'pt-free-throw', 'flush-throw'] as const) expect(runs[k], k).toBeGreaterThan(0);
    const secure = stack.includes('secure');
    for (const k of ['scm-assign-fail', 'scm-assign-fail-unknown', 'scm-unassign-fail', 'scm-unassign-fail-unknown'] as const) {
      if (secure) expect(runs[k], k).toBeGreaterThan(0);
      else expect(runs[k] ?? 0, k).toBe(0);
    }
    for (const k of ['dma-map-fail', 'dma-map-moved'] as const) {
      if (stack.startsWith('reservation')) expect(runs[k] ?? 0, k).toBe(0);
      else expect(runs[k], k).toBeGreaterThan(0);
    }
    // Deferred flush ops (tables freed under the gather's token, completed by iotlbSync) on
    // every stack that reuses only after the flush; not the bare system allocator (it reuses
    // at once, which core refuses with deferred ops) nor VM_BIND stacks (the Vm flushes).
    if (stack === 'system' || stack.startsWith('reservation')) expect(deferredCells).toBe(0);
    else expect(deferredCells).toBe(CONFIGS.length);

    for (const k of FAULT_KINDS) {
      const bad = failing[k] ?? [];
      const entry = knownFinding(stack, k);
      if (entry === undefined) expect(bad, `${stack} ${k}:\n${bad.slice(0, 3).join('\n')}`).toEqual([]);
      else expect(bad.length, `${stack} ${k} no longer fails: ${entry.owner} fixed "${entry.what.slice(0, 80)}..."; remove ${stack} from its entry in src/findings.ts`).toBeGreaterThan(0);
    }
  });
});

describe('the fault matrix checks what it claims', () => {
  const cfg = configByName('s1-4k-48-48');

  it('a throwing page-table free hook on the bare system allocator: TableFreeError, then the retried free returns every page', () => {
    const clean = runMatrix(cfg, 'system', null);
    expect(clean.failure).toBeNull();
    expect(clean.calls.ptFree).toBeGreaterThan(2);
    for (const k of [0, clean.calls.ptFree - 1]) {
      const r = runMatrix(cfg, 'system', { kind: 'pt-free-throw', k });
      expect(r.fired).toBe(`pt-free-throw #${k}`);
      expect(r.failure).toBeNull();
      expect(r.errors).toEqual({ TableFreeError: 1 });
    }
  });

  it('a throwing bottom alloc under the bare system allocator surfaces as AllocatorFaultError (core types it)', () => {
    const r = runMatrix(cfg, 'system', { kind: 'alloc-throw', k: 1 });
    expect(r.failure).toBeNull();
    expect(r.errors).toEqual({ AllocatorFaultError: 1 });
  });

  it('a secure call that fails leaving the state unknown quarantines its pages with the reason, and nothing else stays away from the host', () => {
    const clean = runMatrix(cfg, 'secure-share', null);
    const k = clean.scmKinds.indexOf('assign');
    expect(k).toBeGreaterThanOrEqual(0);
    const r = runMatrix(cfg, 'secure-share', { kind: 'scm-assign-fail-unknown', k });
    expect(r.failure).toBeNull();
    // One assign batch of secure-share's 4 pages, never reused or released.
    expect(r.quarantined).toBe(4 * 4096);
  });

  it('donate mode: every map is refused with a typed access violation, and teardown gives every page back', () => {
    const r = runMatrix(cfg, 'secure-donate', null);
    expect(r.failure).toBeNull();
    expect(r.errors.AllocatorMisuseError).toBeGreaterThan(0);
    expect(Object.keys(r.errors)).toEqual(['AllocatorMisuseError']);
  });

  it('a TLB walk flush that throws mid-unmap: FlushCallbackError, the unmap completes, and nothing leaks (core carries on as the kernel would)', () => {
    const clean = runMatrix(cfg, 'system', null);
    expect(clean.calls.flush).toBeGreaterThan(0);
    const r = runMatrix(cfg, 'system', { kind: 'flush-throw', k: 0 });
    expect(r.fired).toBe('flush-throw #0');
    expect(r.failure).toBeNull();
    expect(r.errors).toEqual({ FlushCallbackError: 1 });
  });
});
