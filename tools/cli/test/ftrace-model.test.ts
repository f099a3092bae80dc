/**
 * import-ftrace against an independent re-derivation of what the kernel calls for each
 * traced iommu_map/iommu_unmap (v5.14+), on captures written here in every line style
 * and both message layouts.
 *
 * The model is written from the kernel's rules, not from the importer's code:
 *  - iommu_pgsize(): the largest size of the bitmap that is <= what is left and that
 *    both addresses are multiples of; the count is what is left in whole pages, unless
 *    the next larger size of the bitmap is reachable (iova and paddr congruent modulo it,
 *    and at least one whole larger page fits after the boundary): then only the pages up
 *    to that boundary.
 *  - map_pages/unmap_pages at the level of `pgsize` stop at the end of the leaf table
 *    (granule / 8 entries), so they do min(count, entries left in the table) pages.
 * It uses modular arithmetic on BigInt where the importer uses bit tricks.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importFtrace } from '../src/ftrace';
import { cli, tempDir } from './helpers';

type Op = { op: 'map'; iova: string; paddr: string; pgsize: string; pgcount: number } | { op: 'unmap'; iova: string; pgsize: string; pgcount: number };

interface Config {
  name: string;
  format: 'ARM_64_LPAE_S1' | 'ARM_64_LPAE_S2';
  bitmap: bigint;
  granule: bigint;
  ias: number;
}

const CONFIGS: Config[] = [
  { name: '4K 2M 1G', format: 'ARM_64_LPAE_S1', bitmap: 0x40201000n, granule: 0x1000n, ias: 48 },
  { name: '4K only', format: 'ARM_64_LPAE_S1', bitmap: 0x1000n, granule: 0x1000n, ias: 48 },
  { name: '4K 2M', format: 'ARM_64_LPAE_S1', bitmap: 0x201000n, granule: 0x1000n, ias: 48 },
  { name: '16K 32M', format: 'ARM_64_LPAE_S1', bitmap: 0x2004000n, granule: 0x4000n, ias: 48 },
  { name: '64K 512M', format: 'ARM_64_LPAE_S1', bitmap: 0x20010000n, granule: 0x10000n, ias: 48 },
  { name: 'S2 40-bit 4K 2M', format: 'ARM_64_LPAE_S2', bitmap: 0x201000n, granule: 0x1000n, ias: 40 },
];

const hex = (v: bigint) => '0x' + v.toString(16);

function sizesOf(bitmap: bigint): bigint[] {
  const out: bigint[] = [];
  for (let b = 0n; b < 64n; b++) if ((bitmap >> b) & 1n) out.push(1n << b);
  return out; // ascending
}

/** iommu_pgsize(), re-derived. */
function pgsizeModel(sizes: bigint[], iova: bigint, paddr: bigint, left: bigint): { pgsize: bigint; count: bigint } {
  const fits = sizes.filter((s) => s <= left && iova % s === 0n && paddr % s === 0n);
  const pgsize = fits[fits.length - 1]!;
  const next = sizes.find((s) => s > pgsize);
  if (next !== undefined && (iova - paddr) % next === 0n) {
    const toBoundary = next - (iova % next);
    if (toBoundary + next <= left) return { pgsize, count: toBoundary / pgsize };
  }
  return { pgsize, count: left / pgsize };
}

/** The map_pages/unmap_pages calls of one traced range (everything it unmaps is mapped). */
function callsModel(cfg: Config, kind: 'map' | 'unmap', iova: bigint, paddr: bigint, size: bigint): Op[] {
  const sizes = sizesOf(cfg.bitmap);
  const entries = cfg.granule / 8n;
  const out: Op[] = [];
  let done = 0n;
  while (done < size) {
    const iv = iova + done;
    const pa = kind === 'map' ? paddr + done : iv;
    const { pgsize, count } = pgsizeModel(sizes, iv, pa, size - done);
    const left = entries - ((iv / pgsize) % entries);
    const did = (count < left ? count : left) * pgsize;
    out.push(kind === 'map' ? { op: 'map', iova: hex(iv), paddr: hex(pa), pgsize: hex(pgsize), pgcount: Number(count) } : { op: 'unmap', iova: hex(iv), pgsize: hex(pgsize), pgcount: Number(count) });
    done += did;
  }
  return out;
}

/** A seeded generator (xorshift32) so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

interface Event {
  kind: 'map' | 'unmap';
  iova: bigint;
  paddr: bigint;
  size: bigint;
}

/** Maps of random sizes and alignments on disjoint ranges, then their unmaps in random order. */
function events(cfg: Config, seed: number, n: number): Event[] {
  const r = rng(seed);
  const sizes = sizesOf(cfg.bitmap);
  const top = sizes[sizes.length - 1]!;
  const g = cfg.granule;
  const maps: Event[] = [];
  let va = top; // start past 0 so that iova 0 is not special
  for (let i = 0; i < n; i++) {
    const big = r() < 0.15;
    const pages = BigInt(1 + Math.floor(r() * (big ? 4 * Number(top / g) : 700)));
    const size = r() < 0.05 ? 0n : pages * g;
    // Start on a random alignment: a granule, or a block size, plus some pages.
    const align = sizes[Math.floor(r() * sizes.length)]!;
    va = ((va + align - 1n) / align) * align + (r() < 0.5 ? BigInt(Math.floor(r() * 600)) * g : 0n);
    const congruent = r() < 0.6;
    const paddr = congruent ? (va % top) + top * BigInt(1 + Math.floor(r() * 64)) : g * BigInt(Math.floor(r() * 2 ** 24));
    maps.push({ kind: 'map', iova: va, paddr, size });
    va += size + g * BigInt(Math.floor(r() * 1000));
  }
  const unmaps = maps.map((m) => ({ ...m, kind: 'unmap' as const }));
  for (let i = unmaps.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [unmaps[i], unmaps[j]] = [unmaps[j]!, unmaps[i]!];
  }
  return [...maps, ...unmaps];
}

const h16 = (v: bigint) => '0x' + v.toString(16).padStart(16, '0');
const U64 = (1n << 64n) - 1n;

type Layout = 'new' | 'old';
type Style = 'tracefs' | 'tracefs-noirq' | 'tracefs-tgid' | 'trace-cmd' | 'perf';

function message(e: Event, layout: Layout): string {
  const range = layout === 'new' ? ` - ${h16((e.iova + e.size) & U64)}` : '';
  return e.kind === 'map' ? `IOMMU: iova=${h16(e.iova)}${range} paddr=${h16(e.paddr)} size=${e.size}` : `IOMMU: iova=${h16(e.iova)}${range} size=${e.size} unmapped_size=${e.size}`;
}

function line(style: Style, event: string, msg: string, i: number): string {
  const ts = (100 + i * 0.000731).toFixed(6);
  const cpu = String(i % 8).padStart(3, '0');
  switch (style) {
    case 'tracefs':
      return `${'panthor-vm'.padStart(16)}-812     [${cpu}] ..... ${ts}: ${event}: ${msg}`;
    case 'tracefs-noirq':
      return `${'kworker/u16:1'.padStart(16)}-77      [${cpu}] ${ts}: ${event}: ${msg}`;
    case 'tracefs-tgid':
      return `${'<...>'.padStart(16)}-4242    (   4200) [${cpu}] d..1. ${ts}: ${event}: ${msg}`;
    case 'trace-cmd':
      return `     kworker/1:2-140   [${cpu}]   ${ts}: ${(event + ':').padEnd(22)}${msg}`;
    case 'perf':
      return `     kworker/1:2   140 [${cpu}]   ${ts}: iommu:${event}: ${msg}`;
  }
}

/** A capture: header lines, the events, and noise that must be ignored (trace_marker text included). */
function capture(cfg: Config, evs: Event[], style: Style, layout: Layout): string {
  const out = style === 'trace-cmd' ? ['cpus=8'] : ['# tracer: nop', '#', '#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION'];
  evs.forEach((e, i) => {
    if (i % 7 === 3) out.push(line(style, 'sched_switch', 'prev_comm=swapper/3 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=kworker/3:0 next_pid=33 next_prio=120', i));
    // What user space writes to trace_marker: it reads like an event but is not one.
    if (i % 11 === 5) out.push(line(style, 'tracing_mark_write', `${e.kind}: ${message({ ...e, iova: e.iova + cfg.granule }, layout)}`, i));
    out.push(line(style, e.kind, message(e, layout), i));
  });
  return out.join('\n') + '\n';
}

const STYLES: Style[] = ['tracefs', 'tracefs-noirq', 'tracefs-tgid', 'trace-cmd', 'perf'];
const LAYOUTS: Layout[] = ['new', 'old'];

describe('import-ftrace splits every event as iommu_map/iommu_unmap do (independent model)', () => {
  for (const cfg of CONFIGS) {
    it(`${cfg.name}: ${STYLES.length} line styles x ${LAYOUTS.length} layouts, op for op`, () => {
      const evs = events(cfg, 0x5eed + Number(cfg.bitmap % 1000n), 60);
      const expected = evs.flatMap((e) => callsModel(cfg, e.kind, e.iova, e.paddr, e.size));
      expect(expected.length).toBeGreaterThan(evs.length);
      for (const style of STYLES) {
        for (const layout of LAYOUTS) {
          const r = importFtrace(capture(cfg, evs, style, layout), { format: cfg.format, pgsizeBitmap: cfg.bitmap, ias: cfg.ias, oas: 48 });
          const got = r.lines.slice(1, -1).map((l) => {
            const o = JSON.parse(l) as Op & { prot?: unknown };
            delete o.prot;
            return o;
          });
          expect(got, `${style} ${layout}`).toEqual(expected);
          expect(r.warnings, `${style} ${layout}`).toEqual([]);
          expect(r.mapEvents + r.unmapEvents).toBe(evs.length);
          expect(JSON.parse(r.lines.at(-1)!)).toEqual({ op: 'free' });
        }
      }
    });
  }

  it('the model itself: hand-derived splits', () => {
    const c = CONFIGS[0]!;
    // 4K up to the 2M boundary, one 2M block, then 4K pages.
    expect(callsModel(c, 'map', 0x1ff000n, 0x809ff000n, 0x202000n).map((o) => [o.iova, o.pgsize, o.pgcount])).toEqual([
      ['0x1ff000', '0x1000', 1],
      ['0x200000', '0x200000', 1],
      ['0x400000', '0x1000', 1],
    ]);
    // Incongruent paddr: 4K pages only, asked for at once, cut at the level-3 table end.
    expect(callsModel(c, 'map', 0x11ff000n, 0x90000000n, 0x3000n).map((o) => [o.iova, o.pgcount])).toEqual([
      ['0x11ff000', 3],
      ['0x1200000', 2],
    ]);
    // 4K only, 3 MiB from 0: 768 pages asked, 512 done (one table), then 256.
    expect(callsModel(CONFIGS[1]!, 'map', 0n, 0n, 0x300000n).map((o) => [o.iova, o.pgcount])).toEqual([
      ['0x0', 768],
      ['0x200000', 256],
    ]);
  });

  it('the imported traces replay in kernel mode with every call succeeding', () => {
    const dir = tempDir();
    for (const cfg of [CONFIGS[0]!, CONFIGS[3]!]) {
      const evs = events(cfg, 99, 40);
      const input = join(dir, `${cfg.granule}.txt`);
      writeFileSync(input, capture(cfg, evs, 'tracefs', 'new'));
      const out = join(dir, `${cfg.granule}.trace.jsonl`);
      const imp = cli(['import-ftrace', input, '-o', out, '--format', cfg.format, '--bitmap', hex(cfg.bitmap), '--ias', String(cfg.ias)]);
      expect(imp.status, imp.stderr).toBe(0);
      const rep = cli(['replay', out]);
      expect(rep.status, rep.stderr).toBe(0);
      const rets = rep.stdout
        .trim()
        .split('\n')
        .slice(1, -1)
        .map((l) => (JSON.parse(l) as { ret: unknown }).ret);
      expect(rets.length).toBeGreaterThan(0);
      expect(new Set(rets)).toEqual(new Set([0]));
    }
  });
});
