/** `io-pgtable worst-case`: the reservation counter for a format, granule and ranges. */
import { configureLpae, FORMATS, type FormatName } from '@io-pgtable/core';
import * as reservation from '@io-pgtable/reservation';
import { flag, str, type Command } from '../command.js';
import { CliError, EXIT_OK, EXIT_USAGE, write } from '../io.js';
import { fmtInt, renderTable } from '../table.js';

const GRANULE_BITMAP: Record<string, bigint> = { '4K': 0x40201000n, '16K': 0x2004000n, '64K': 0x20010000n };

function parseSize(v: string, what: string): number {
  const m = /^(0x[0-9a-f]+|[0-9]+)([KMGT]?)$/i.exec(v.trim());
  if (!m) throw new CliError(`${what}: ${JSON.stringify(v)} is not a size (e.g. 0x200000, 2M, 4096)`, EXIT_USAGE);
  const unit = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  const n = Number(BigInt(m[1]!)) * unit;
  if (!Number.isSafeInteger(n)) throw new CliError(`${what}: ${v} is too large`, EXIT_USAGE);
  return n;
}

export const worstCaseCommand: Command = {
  name: 'worst-case',
  summary: 'how many tables a set of map/unmap ranges can allocate (the reservation counter)',
  usage: ['--range [map|unmap:]IOVA+SIZE[@PGSIZE]... [--format FMT] [--granule 4K|16K|64K] [--ias N] [--oas N] [--merge per-op|msm|union] [--split none|split]'],
  description: `Counts, per level, the tables a VM_BIND job of these ranges may need on a tree that
already has its root: what a driver must reserve before the run phase. Without @PGSIZE a map
is counted with the granule (the worst case).

Examples:
  io-pgtable worst-case --range 0x1ff000+0x2000
  io-pgtable worst-case --granule 16K --ias 40 --oas 40 --format ARM_64_LPAE_S2 --range 0+1G@32M
  io-pgtable worst-case --merge union --range 0x100000+64K --range 0x110000+64K`,
  options: {
    range: { type: 'string', multiple: true, arg: 'SPEC', help: 'an op: [map|unmap:]IOVA+SIZE[@PGSIZE] (repeatable, in order)' },
    format: { type: 'string', arg: 'FMT', help: `page-table format (${FORMATS.join(', ')})`, default: 'ARM_64_LPAE_S1' },
    granule: { type: 'string', arg: 'G', help: 'granule: 4K, 16K or 64K', default: '4K' },
    bitmap: { type: 'string', arg: 'HEX', help: 'pgsize bitmap (overrides --granule)' },
    ias: { type: 'string', arg: 'BITS', help: 'input address size', default: '48' },
    oas: { type: 'string', arg: 'BITS', help: 'output address size', default: '48' },
    merge: { type: 'string', arg: 'HOW', help: 'per-op, msm or union', default: 'per-op' },
    split: { type: 'string', arg: 'HOW', help: 'none (Linux >= 6.13) or split (partial block unmaps remap)', default: 'none' },
  },
  async run(p, io) {
    const format = str(p, 'format') ?? 'ARM_64_LPAE_S1';
    if (!(FORMATS as readonly string[]).includes(format)) throw new CliError(`--format: ${format} is not one of ${FORMATS.join(', ')}`);
    const granule = (str(p, 'granule') ?? '4K').toUpperCase();
    const bitmapText = str(p, 'bitmap');
    let bitmap: bigint;
    if (bitmapText !== undefined) {
      if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(bitmapText)) throw new CliError(`--bitmap: ${JSON.stringify(bitmapText)} is not an integer`);
      bitmap = BigInt(bitmapText);
    } else {
      const b = GRANULE_BITMAP[granule];
      if (b === undefined) throw new CliError(`--granule: ${JSON.stringify(granule)} is not 4K, 16K or 64K`);
      bitmap = b;
    }
    const ias = Number(str(p, 'ias') ?? 48);
    const oas = Number(str(p, 'oas') ?? 48);
    if (!Number.isInteger(ias) || !Number.isInteger(oas)) throw new CliError('--ias and --oas must be integers');
    const merge = str(p, 'merge') ?? 'per-op';
    const split = str(p, 'split') ?? 'none';
    if (!['per-op', 'msm', 'union'].includes(merge)) throw new CliError(`--merge: ${JSON.stringify(merge)} is not per-op, msm or union`);
    if (!['none', 'split'].includes(split)) throw new CliError(`--split: ${JSON.stringify(split)} is not none or split`);
    const setup = configureLpae({ fmt: format as FormatName, quirks: 0, pgsizeBitmap: bitmap, ias, oas, coherentWalk: true });
    if (!setup.ok) throw new CliError(`configuration rejected: ${setup.reason}`);
    const g = setup.setup.geometry;

    const specs = (p.values.range as string[] | undefined) ?? [];
    if (specs.length === 0) throw new CliError('give at least one --range (see --help)');
    const ops: reservation.CountOp[] = specs.map((spec, i) => {
      const m = /^(?:(map|unmap):)?([^+@]+)\+([^@]+)(?:@(.+))?$/.exec(spec.trim());
      if (!m) throw new CliError(`--range #${i + 1}: ${JSON.stringify(spec)} is not [map|unmap:]IOVA+SIZE[@PGSIZE]`);
      const kind = (m[1] ?? 'map') as 'map' | 'unmap';
      const iova = parseSize(m[2]!, `--range #${i + 1} iova`);
      const size = parseSize(m[3]!, `--range #${i + 1} size`);
      if (kind === 'unmap') {
        if (m[4] !== undefined) throw new CliError(`--range #${i + 1}: an unmap takes no @PGSIZE`);
        return { kind, iova, size };
      }
      return m[4] !== undefined ? { kind, iova, size, pgsize: parseSize(m[4], `--range #${i + 1} pgsize`) } : { kind, iova, size };
    });
    let count: reservation.TableCount;
    try {
      count = reservation.tablesNeeded(g, ops, { merge: merge as reservation.MergeStrategy, split: split as reservation.CountSplitPolicy, pgsizeBitmap: setup.setup.pgsizeBitmap });
    } catch (e) {
      if (e instanceof reservation.CountError) throw new CliError(`--range #${e.opIndex + 1}: ${e.message.replace(/^\[iopgt\] \[reservation\] EINVAL: op \d+: /, '')}`);
      throw e;
    }
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
      ops: ops.length,
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
        `${format} ${g.granule / 1024}K granule, ias ${g.ias}, oas ${g.oas}, start level ${g.startLevel}; ${ops.length} op(s), merge ${merge}, split ${split}\n` +
          renderTable(['level', 'tables'], rows, [false, true]) +
          `worst case: ${fmtInt(count.total)} tables (${fmtInt(result.bytes)} bytes) beyond the root\n`,
      );
    }
    return EXIT_OK;
  },
};
