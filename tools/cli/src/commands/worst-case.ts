/** `io-pgtable worst-case`: the reservation counter for a format, granule and ranges. */
import { configureLpae, createSystemAllocator, FORMATS, type FormatName, type Geometry } from '@io-pgtable/core';
import * as reservation from '@io-pgtable/reservation';
import { flag, intOpt, lookup, oneOf, str, u64Opt, type Command } from '../command.js';
import { CliError, EXIT_OK, EXIT_USAGE, quote, write } from '../io.js';
import { fmtInt, renderTable } from '../table.js';

const GRANULE_BITMAP: Readonly<Record<string, bigint>> = Object.freeze({ '4K': 0x40201000n, '16K': 0x2004000n, '64K': 0x20010000n });
const MERGES: readonly reservation.MergeStrategy[] = ['per-op', 'msm', 'union'];
const SPLITS: readonly reservation.CountSplitPolicy[] = ['none', 'split'];

function parseSize(v: string, what: string): number {
  const m = /^(0x[0-9a-f]{1,16}|[0-9]{1,20})([KMGT]?)$/i.exec(v.trim());
  if (!m) throw new CliError(`${what}: ${quote(v)} is not a size (e.g. 0x200000, 2M, 4096)`, EXIT_USAGE);
  const unit = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const n = Number(BigInt(m[1]!)) * unit;
  if (!Number.isSafeInteger(n)) throw new CliError(`${what}: ${quote(v)} is too large: worst-case counts addresses and sizes below 2^53`, EXIT_USAGE);
  return n;
}

const hex = (v: number | bigint): string => '0x' + v.toString(16);

/** A range as given: the op, and the paddr when `=PADDR` was written. */
interface RangeSpec {
  op: reservation.CountOp;
  paddr: number | undefined;
}

function parseRange(spec: string, i: number, bitmap: bigint): RangeSpec {
  const what = `--range #${i + 1}`;
  const m = /^(?:(map|unmap):)?([^+@=]+)\+([^@=]+)(?:@([^=]+))?(?:=(.+))?$/.exec(spec.trim());
  if (!m) throw new CliError(`${what}: ${quote(spec)} is not [map|unmap:]IOVA+SIZE[@PGSIZE][=PADDR]`);
  const kind = (m[1] ?? 'map') as 'map' | 'unmap';
  const iova = parseSize(m[2]!, `${what} iova`);
  const size = parseSize(m[3]!, `${what} size`);
  const paddr = m[5] !== undefined ? parseSize(m[5], `${what} paddr`) : undefined;
  if (kind === 'unmap') {
    if (m[4] !== undefined || paddr !== undefined) throw new CliError(`${what}: an unmap takes no @PGSIZE or =PADDR`);
    return { op: { kind, iova, size }, paddr };
  }
  if (m[4] === undefined) return { op: { kind, iova, size }, paddr };
  const pgsize = parseSize(m[4], `${what} pgsize`);
  // The kernel's map_pages refuses (-EINVAL, nothing allocated) a size that is not one bit
  // of the table's bitmap, even when it is a block size of the granule.
  const bit = BigInt(pgsize);
  if (pgsize <= 0 || (bit & (bit - 1n)) !== 0n || (bitmap & bit) === 0n) {
    throw new CliError(`${what}: @PGSIZE ${hex(pgsize)} is not in the page-size bitmap ${hex(bitmap)}: map_pages returns -EINVAL for it and allocates nothing (use a size of the bitmap, or no @PGSIZE)`);
  }
  return { op: { kind, iova, size, pgsize }, paddr };
}

export const worstCaseCommand: Command = {
  name: 'worst-case',
  summary: 'how many tables a set of map/unmap ranges can allocate (the reservation counter)',
  usage: [
    '--range [map|unmap:]IOVA+SIZE[@PGSIZE][=PADDR]... [--format FMT] [--granule 4K|16K|64K | --bitmap HEX] [--ias N] [--oas N] [--merge per-op|msm|union] [--split none|split] [--exact-page-sizes]',
  ],
  description: `Counts, per level, the tables a VM_BIND job of these ranges may need on a tree that
already has its root: what a driver must reserve before the run phase.

How a map's page size is counted:
  @PGSIZE    the whole range is counted as ONE map_pages size, every page of it PGSIZE (a
             driver that forces the size), not iommu_map's split into several sizes.
             PGSIZE must be in the page-size bitmap: map_pages refuses any other size
             (-EINVAL, nothing allocated), so it is an error here too.
  no size    counted as granule pages: the safe upper bound whatever sizes iommu_map picks.
  --exact-page-sizes with =PADDR
             counted with the pages iommu_map will really use (iommu_pgsize() from iova,
             paddr and size): the reservation package's exactPageSizes counting.
Sizes and addresses are decimal or 0x hex, with an optional K, M, G or T suffix.
`,
  options: {
    range: { type: 'string', multiple: true, arg: 'SPEC', help: 'an op: [map|unmap:]IOVA+SIZE[@PGSIZE][=PADDR] (repeatable, in order)' },
    format: { type: 'string', arg: 'FMT', help: `page-table format (${FORMATS.join(', ')})`, default: 'ARM_64_LPAE_S1' },
    granule: { type: 'string', arg: 'G', help: 'granule: 4K, 16K or 64K', default: '4K' },
    bitmap: { type: 'string', arg: 'HEX', help: 'pgsize bitmap (overrides --granule)' },
    ias: { type: 'string', arg: 'BITS', help: 'input address size', default: '48' },
    oas: { type: 'string', arg: 'BITS', help: 'output address size', default: '48' },
    merge: { type: 'string', arg: 'HOW', help: 'per-op, msm or union', default: 'per-op' },
    split: { type: 'string', arg: 'HOW', help: 'none (Linux >= 6.13) or split (partial block unmaps remap)', default: 'none' },
    'exact-page-sizes': { type: 'boolean', help: "count maps without @PGSIZE by iommu_map's page sizes (needs =PADDR on each)" },
  },
  async run(p, io) {
    const format = oneOf(str(p, 'format') ?? 'ARM_64_LPAE_S1', FORMATS, '--format');
    const bitmap = str(p, 'bitmap') !== undefined ? u64Opt(p, 'bitmap', 0n) : lookup(GRANULE_BITMAP, (str(p, 'granule') ?? '4K').toUpperCase(), '--granule');
    const ias = intOpt(p, 'ias', 48);
    const oas = intOpt(p, 'oas', 48);
    const merge = oneOf(str(p, 'merge') ?? 'per-op', MERGES, '--merge');
    const split = oneOf(str(p, 'split') ?? 'none', SPLITS, '--split');
    const exact = flag(p, 'exact-page-sizes');
    const setup = configureLpae({ fmt: format as FormatName, quirks: 0, pgsizeBitmap: bitmap, ias, oas, coherentWalk: true });
    if (!setup.ok) throw new CliError(`configuration rejected: ${setup.reason.replace(/\b(0x[0-9a-f]+)n\b/g, '$1')}`);
    const g = setup.setup.geometry;
    const effective = BigInt(setup.setup.pgsizeBitmap);

    const specs = (p.values.range as string[] | undefined) ?? [];
    if (specs.length === 0) throw new CliError('give at least one --range (see --help)');
    const ranges = specs.map((spec, i) => parseRange(spec, i, effective));
    // One group of counted ops per --range (an exact split makes several of one range).
    const groups = exact ? exactGroups(format as FormatName, bitmap, ias, oas, ranges) : ranges.map((r) => [r.op]);
    const ops = groups.flat();
    const count = countGroups(g, groups, { merge, split, pgsizeBitmap: setup.setup.pgsizeBitmap });
    const result = {
      command: 'worst-case',
      format,
      granule: g.granule,
      ias: g.ias,
      oas: g.oas,
      startLevel: g.startLevel,
      pgsizeBitmap: '0x' + setup.setup.pgsizeBitmap.toString(16),
      merge,
      split,
      exactPageSizes: exact,
      ops: ranges.length,
      /** Ops counted: the ranges, or with --exact-page-sizes the runs of pages they become. */
      countedOps: ops.length,
      tables: count.total,
      bytes: count.total * g.granule,
      perLevel: count.perLevel,
    };
    if (flag(p, 'json')) {
      await write(io.stdout, JSON.stringify(result) + '\n');
    } else {
      const rows = count.perLevel.map((n, l) => [`level ${l}`, l < g.startLevel ? '-' : fmtInt(n)]);
      await write(
        io.stdout,
        `${format} ${g.granule / 1024}K granule, ias ${g.ias}, oas ${g.oas}, start level ${g.startLevel}, bitmap ${result.pgsizeBitmap}; ${ranges.length} op(s), merge ${merge}, split ${split}${exact ? ', exact page sizes' : ''}\n` +
          renderTable(['level', 'tables'], rows, [false, true]) +
          `worst case: ${fmtInt(count.total)} tables (${fmtInt(result.bytes)} bytes) beyond the root\n`,
      );
    }
    return EXIT_OK;
  },
};

/**
 * Count the groups (one per --range). Per-op counts each range on its own, the pieces of
 * an exact split together (they share their tables, as the queue's exactPageSizes count
 * does); msm and union merge every op of the job.
 */
function countGroups(g: Geometry, groups: readonly (readonly reservation.CountOp[])[], policy: reservation.CountPolicy): reservation.TableCount {
  const owner = groups.flatMap((grp, i) => grp.map(() => i));
  const rangeError = (e: unknown, index: (opIndex: number) => number): never => {
    if (e instanceof reservation.CountError) throw new CliError(`--range #${index(e.opIndex) + 1}: ${e.message.replace(/^\[iopgt\] \[reservation\] EINVAL: op -?\d+: /, '')}`);
    throw e;
  };
  if (policy.merge !== 'per-op') {
    try {
      return reservation.tablesNeeded(g, groups.flat(), policy);
    } catch (e) {
      return rangeError(e, (i) => owner[i] ?? i);
    }
  }
  const perLevel = [0, 0, 0, 0];
  groups.forEach((grp, i) => {
    let c: reservation.TableCount;
    try {
      c = reservation.tablesNeeded(g, grp, { ...policy, merge: grp.length > 1 ? 'union' : 'per-op' });
    } catch (e) {
      return rangeError(e, () => i);
    }
    c.perLevel.forEach((n, l) => (perLevel[l]! += n));
  });
  return { total: perLevel.reduce((a, b) => a + b, 0), perLevel };
}

/**
 * The ops as `exactPageSizes` counts them: a map without @PGSIZE becomes the runs of
 * pages iommu_map will use, computed by the reservation package's own VM (so the CLI
 * counts exactly what the queue option counts).
 */
function exactGroups(format: FormatName, bitmap: bigint, ias: number, oas: number, ranges: readonly RangeSpec[]): reservation.CountOp[][] {
  ranges.forEach((r, i) => {
    if (r.op.kind === 'map' && r.op.pgsize === undefined && r.paddr === undefined) {
      throw new CliError(`--range #${i + 1}: --exact-page-sizes needs the physical address of a map without @PGSIZE (IOVA+SIZE=PADDR): iommu_map's page sizes depend on it`);
    }
  });
  let vm: reservation.Vm;
  try {
    vm = reservation.createVm(reservation.withReservation(createSystemAllocator()), { format, cfg: { pgsizeBitmap: bitmap, ias, oas } });
  } catch (e) {
    throw new CliError(`configuration rejected: ${(e as Error).message}`);
  }
  const gran = vm.geometry.granule;
  try {
    return ranges.map((r, i) => {
      if (r.op.kind === 'unmap' || r.op.pgsize !== undefined) return [r.op];
      const paddr = r.paddr!;
      if (r.op.iova % gran !== 0 || r.op.size % gran !== 0 || paddr % gran !== 0 || r.op.size <= 0) {
        throw new CliError(`--range #${i + 1}: iova ${hex(r.op.iova)}, size ${hex(r.op.size)} and paddr ${hex(paddr)} must be positive multiples of the ${fmtInt(gran)}-byte granule`);
      }
      return vm.countOps({ kind: 'map', iova: r.op.iova, size: r.op.size, paddr }, true);
    });
  } finally {
    vm.pageTable.free();
  }
}
