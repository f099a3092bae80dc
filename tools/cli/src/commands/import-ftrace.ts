/** `io-pgtable import-ftrace`: iommu:map/unmap tracepoint text -> replayable trace. */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { FORMATS, PROT_BY_NAME, type FormatName, type ProtName } from '@io-pgtable/core';
import { flag, intOpt, str, type Command } from '../command.js';
import { FtraceError, importFtrace } from '../ftrace.js';
import { CliError, EXIT_OK, EXIT_USAGE, readAll, write } from '../io.js';

function list(v: string | undefined): string[] {
  return v === undefined || v === '' ? [] : v.split(',').map((s) => s.trim()).filter(Boolean);
}

export const importFtraceCommand: Command = {
  name: 'import-ftrace',
  summary: "convert the kernel's iommu:map/iommu:unmap tracepoint output into a trace",
  usage: ['[options] [FILE] [-o OUT.trace.jsonl]'],
  description: `Reads /sys/kernel/tracing/trace or 'trace-cmd report' text (stdin when FILE is
omitted). Each iommu_map()/iommu_unmap() event becomes the map_pages/unmap_pages calls the
kernel makes for it (largest fitting page size, split at table boundaries). Other lines are
ignored. The result replays with 'io-pgtable replay' and simulates with
'io-pgtable simulate --workload trace --trace OUT.trace.jsonl'.

Capture on the device:
  echo 1 > /sys/kernel/tracing/events/iommu/map/enable
  echo 1 > /sys/kernel/tracing/events/iommu/unmap/enable
  cat /sys/kernel/tracing/trace > iommu.txt`,
  options: {
    out: { type: 'string', short: 'o', arg: 'FILE', help: 'write the trace here instead of stdout' },
    format: { type: 'string', arg: 'FMT', help: `page-table format (${FORMATS.join(', ')})`, default: 'ARM_64_LPAE_S1' },
    bitmap: { type: 'string', arg: 'HEX', help: "the driver's pgsize_bitmap", default: '0x40201000' },
    ias: { type: 'string', arg: 'BITS', help: 'input address size', default: '48' },
    oas: { type: 'string', arg: 'BITS', help: 'output address size', default: '48' },
    quirks: { type: 'string', arg: 'LIST', help: 'comma-separated quirk names (e.g. ARM_NS,ARM_TTBR1)' },
    'non-coherent': { type: 'boolean', help: 'the walker is not cache-coherent (coherentWalk false)' },
    prot: { type: 'string', arg: 'LIST', help: 'prot of every map (not in the tracepoint)', default: 'read,write,cache' },
  },
  async run(args, io) {
    const format = str(args, 'format') ?? 'ARM_64_LPAE_S1';
    if (!(FORMATS as readonly string[]).includes(format)) throw new CliError(`--format: ${format} is not one of ${FORMATS.join(', ')}`);
    const bitmapText = str(args, 'bitmap') ?? '0x40201000';
    if (!/^(0x[0-9a-f]+|[0-9]+)$/i.test(bitmapText)) throw new CliError(`--bitmap: ${JSON.stringify(bitmapText)} is not an integer`);
    const prot = list(str(args, 'prot') ?? 'read,write,cache');
    for (const p of prot) if (!(p in PROT_BY_NAME)) throw new CliError(`--prot: unknown prot ${JSON.stringify(p)} (${Object.keys(PROT_BY_NAME).join(', ')})`);
    if (args.positionals.length > 1) throw new CliError('give at most one input file');
    const file = args.positionals[0];
    let text: string;
    if (file !== undefined) {
      try {
        text = readFileSync(resolve(io.cwd, file), 'utf8');
      } catch (e) {
        throw new CliError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT_USAGE, file);
      }
    } else text = await readAll(io.stdin);

    let result;
    try {
      result = importFtrace(text, {
        format: format as FormatName,
        pgsizeBitmap: BigInt(bitmapText),
        ias: intOpt(args, 'ias', 48),
        oas: intOpt(args, 'oas', 48),
        quirks: list(str(args, 'quirks')),
        coherentWalk: !flag(args, 'non-coherent'),
        prot: prot as ProtName[],
        file: file ?? '<stdin>',
      });
    } catch (e) {
      if (e instanceof FtraceError) throw new CliError(e.detail, EXIT_USAGE, e.file, e.line || undefined);
      throw e;
    }
    const out = str(args, 'out');
    const traceText = result.lines.join('\n') + '\n';
    if (out !== undefined) writeFileSync(resolve(io.cwd, out), traceText);
    for (const w of result.warnings) io.stderr.write(`${file ?? '<stdin>'}:${w.line}: warning: ${w.message}\n`);
    const summary = {
      command: 'import-ftrace',
      input: file ?? '<stdin>',
      output: out ?? null,
      mapEvents: result.mapEvents,
      unmapEvents: result.unmapEvents,
      ops: result.ops,
      ignoredLines: result.ignoredLines,
      warnings: result.warnings,
    };
    if (flag(args, 'json')) {
      await write(io.stdout, JSON.stringify(out === undefined ? { ...summary, trace: result.lines } : summary) + '\n');
    } else if (out === undefined) {
      await write(io.stdout, traceText);
    } else {
      await write(io.stdout, `wrote ${out}: ${result.mapEvents} map and ${result.unmapEvents} unmap events -> ${result.ops} ops (${result.ignoredLines} other lines ignored, ${result.warnings.length} warnings)\n`);
    }
    return EXIT_OK;
  },
};
