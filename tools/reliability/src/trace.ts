/**
 * Concrete commands as a trace in the reference-vector format (packages/vectors/FORMAT.md),
 * and back. The format has map, unmap, iova_to_phys and free; dirty reads and device
 * accesses have no line of their own and are left out (listed separately by the caller).
 */
import type { TraceOp } from '@io-pgtable/core';
import type { Cmd } from './commands.js';
import type { FuzzConfig } from './configs.js';
import { protNames } from './decode.js';

const hex = (v: number | bigint): string => '0x' + v.toString(16);

export function u64Iova(cfg: FuzzConfig, x: number): bigint {
  return cfg.quirks.includes('ARM_TTBR1') ? (1n << 64n) - (1n << BigInt(cfg.ias)) + BigInt(x) : BigInt(x);
}

/** Header + one line per traceable command, canonical key order, hex strings. */
export function toTrace(cfg: FuzzConfig, cmds: readonly Cmd[]): { text: string; omitted: Cmd[] } {
  const lines: string[] = [
    JSON.stringify({
      format: cfg.format,
      pgsizeBitmap: hex(cfg.pgsizeBitmap),
      ias: cfg.ias,
      oas: cfg.oas,
      quirks: cfg.quirks,
      coherentWalk: cfg.coherentWalk,
      dumpEvery: false,
    }),
  ];
  const omitted: Cmd[] = [];
  for (const c of cmds) {
    switch (c.op) {
      case 'map':
        lines.push(JSON.stringify({ op: 'map', iova: hex(u64Iova(cfg, c.iova)), paddr: hex(c.pa), pgsize: hex(c.pgsize), pgcount: c.pgcount, prot: protNames(c.prot) }));
        break;
      case 'unmap':
        lines.push(JSON.stringify({ op: 'unmap', iova: hex(u64Iova(cfg, c.iova)), pgsize: hex(c.pgsize), pgcount: c.pgcount }));
        break;
      case 'iova_to_phys':
        lines.push(JSON.stringify({ op: 'iova_to_phys', iova: hex(u64Iova(cfg, c.iova)) }));
        break;
      case 'free':
        lines.push(JSON.stringify({ op: 'free' }));
        break;
      default:
        omitted.push(c);
    }
  }
  return { text: lines.join('\n') + '\n', omitted };
}

const PROT_BITS: Record<string, number> = { read: 1, write: 2, cache: 4, noexec: 8, mmio: 16, priv: 32 };

/** Parsed trace ops (core's parseTrace) as concrete commands, TTBR1 addresses back to offsets. */
export function fromTraceOps(cfg: FuzzConfig, ops: readonly TraceOp[]): Cmd[] {
  const base = cfg.quirks.includes('ARM_TTBR1') ? (1n << 64n) - (1n << BigInt(cfg.ias)) : 0n;
  const off = (v: bigint): number => Number(BigInt.asUintN(64, v - base));
  return ops.map((o): Cmd => {
    switch (o.op) {
      case 'map':
        return { op: 'map', iova: off(o.iova), pa: Number(o.paddr), pgsize: Number(o.pgsize), pgcount: Number(o.pgcount), prot: o.prot.reduce((m, p) => m | PROT_BITS[p]!, 0) };
      case 'unmap':
        return { op: 'unmap', iova: off(o.iova), pgsize: Number(o.pgsize), pgcount: Number(o.pgcount) };
      case 'iova_to_phys':
        return { op: 'iova_to_phys', iova: off(o.iova) };
      case 'free':
        return { op: 'free' };
    }
  });
}
