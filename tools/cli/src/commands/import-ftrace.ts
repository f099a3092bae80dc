/** `io-pgtable import-ftrace`: iommu:map/unmap tracepoint text -> replayable trace, streamed. */
import { resolve } from 'node:path';
import { FORMATS, PROT_BY_NAME, Quirk, type FormatName, type ProtName } from '@io-pgtable/core';
import { flag, intOpt, listOpt, oneOf, str, u64Opt, type Command } from '../command.js';
import { DEFAULT_MAX_OPS_PER_EVENT, FtraceConverter } from '../ftrace.js';
import { AtomicOutput, CliError, EXIT_OK, EXIT_USAGE, openInput, quote, readLines, requirePipedStdin, toCliError, write, type Io } from '../io.js';

/** Bytes of trace a --json answer on stdout may hold (it is one object, so it is built in memory). */
const MAX_JSON_TRACE = 64 * 1024 * 1024;

/** Where converted lines go: batched writes with backpressure, to a file (atomic) or stdout. */
interface Sink {
  write(text: string): Promise<void>;
}

/** Bytes of converted lines held before stdout gets any: a capture that fails early prints nothing there. */
const HOLD_BYTES = 1 << 20;

/**
 * stdout cannot be taken back once written, so: the first {@link HOLD_BYTES} are held (a
 * short capture that fails leaves stdout empty); after that, lines go out in whole-line
 * batches, and a failure ends them with one line that is not a trace line,
 * `{"error":"import-ftrace failed: FILE:LINE: ..."}`, which `replay` rejects: a cut-off
 * trace can never be mistaken for a whole one (and the exit status is 2).
 */
class StdoutSink implements Sink {
  private held: string[] | null = [];
  private heldBytes = 0;

  constructor(private readonly io: Io) {}

  async write(text: string): Promise<void> {
    if (this.held !== null) {
      this.held.push(text);
      this.heldBytes += text.length;
      if (this.heldBytes < HOLD_BYTES) return;
      text = this.held.join('');
      this.held = null;
    }
    await write(this.io.stdout, text);
  }

  async end(): Promise<void> {
    if (this.held !== null) await write(this.io.stdout, this.held.join(''));
    this.held = null;
  }

  /** After a failure: drop what is held, or end what was written with the error line. */
  async fail(message: string): Promise<void> {
    if (this.held !== null) {
      this.held = null;
      return;
    }
    await write(this.io.stdout, JSON.stringify({ error: `import-ftrace failed: ${message}` }) + '\n');
  }
}

export const importFtraceCommand: Command = {
  name: 'import-ftrace',
  summary: "convert the kernel's iommu:map/iommu:unmap tracepoint output into a trace",
  usage: ['[options] [FILE] [-o OUT.trace.jsonl]'],
  description: `Reads /sys/kernel/tracing/trace (or trace_pipe), 'trace-cmd report' or 'perf script'
text: FILE, or stdin when FILE is omitted (stdin must be a pipe or a file, not the terminal).
Each iommu_map()/iommu_unmap() event becomes the map_pages/unmap_pages calls the kernel makes
for it: iommu_pgsize()'s page size and count, split again where a call stops at the end of a
leaf table. Both message layouts are read: with the range end (v5.17+, commit 94aedac49d92)
and without it (before v5.17). The calls match the kernel's from v5.14 (map_pages with a page
count); older kernels mapped page by page. A zero-size event is read and becomes no call.
The event name is the field after the timestamp: other events and trace_marker text
(tracing_mark_write) are ignored, whatever they contain. CRLF line ends are accepted.
'[LOST n EVENTS]' markers and captures that cannot have happened on this table (an unmap
of nothing, a map over a live mapping) are warned about as FILE:LINE: warning.

Not supported: vendor tracepoints (Intel VT-d intel_iommu:*, virtio-iommu viommu_map,
Tegra SMMU smmu_set_pte, Qualcomm/Android vendor arm-smmu events, Apple DART, AMD),
the tracers' raw/hex/binary output (trace-cmd report -R, trace.dat itself, options/raw),
and prot: the tracepoint does not record it, so every map uses --prot.

With -o the trace is written to a temporary file and renamed into place only when the
whole capture converted: a failed import leaves no output file. On stdout, the first MiB
is held back (a capture that fails there prints nothing on stdout); after that, lines are
written as they are converted, in whole lines, and a failure ends them with the line
{"error":"import-ftrace failed: FILE:LINE: ..."} (which replay rejects), exit status 2.
The input must be UTF-8 text without NUL bytes (anything else is an error naming the line).

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
    quirks: { type: 'string', arg: 'LIST', help: `comma-separated quirk names (${Object.keys(Quirk).join(', ')})` },
    'non-coherent': { type: 'boolean', help: 'the walker is not cache-coherent (coherentWalk false)' },
    prot: { type: 'string', arg: 'LIST', help: `prot of every map (not in the tracepoint; ${Object.keys(PROT_BY_NAME).join(', ')})`, default: 'read,write,cache' },
    'max-ops-per-event': {
      type: 'string',
      arg: 'N',
      help: 'most map_pages/unmap_pages calls one event may become (one line can describe a range of hundreds of thousands of calls)',
      default: String(DEFAULT_MAX_OPS_PER_EVENT),
    },
  },
  async run(args, io) {
    const format = oneOf(str(args, 'format') ?? 'ARM_64_LPAE_S1', FORMATS, '--format');
    const bitmap = u64Opt(args, 'bitmap', 0x40201000n);
    const prot = listOpt(args, 'prot', 'read,write,cache').map((p) => oneOf(p, Object.keys(PROT_BY_NAME) as ProtName[], '--prot'));
    const quirks = listOpt(args, 'quirks').map((q) => oneOf(q.replace(/^IO_PGTABLE_QUIRK_/, ''), Object.keys(Quirk), '--quirks'));
    const maxOps = intOpt(args, 'max-ops-per-event', DEFAULT_MAX_OPS_PER_EVENT);
    if (maxOps < 1) throw new CliError('--max-ops-per-event must be at least 1', EXIT_USAGE);
    if (args.positionals.length > 1) throw new CliError(`give at most one input file (got ${args.positionals.length}: ${args.positionals.slice(0, 3).map((p) => quote(p)).join(', ')}...)`);
    const file = args.positionals[0];
    const shown = file ?? '<stdin>';
    const json = flag(args, 'json');
    const out = str(args, 'out');

    // Everything that can be refused is checked before any output is opened.
    const conv = new FtraceConverter({
      format: format as FormatName,
      pgsizeBitmap: bitmap,
      ias: intOpt(args, 'ias', 48),
      oas: intOpt(args, 'oas', 48),
      quirks,
      coherentWalk: !flag(args, 'non-coherent'),
      prot,
      file: shown,
      maxOpsPerEvent: maxOps,
      onWarning: (w) => io.stderr.write(`${shown}:${w.line}: warning: ${w.message}\n`),
    });
    let input: AsyncIterable<Buffer | string> & { destroy?: () => void };
    if (file !== undefined) input = openInput(resolve(io.cwd, file), file);
    else {
      requirePipedStdin(io, 'a capture', 'import-ftrace');
      input = io.stdin as AsyncIterable<Buffer>;
    }

    // The trace goes to -o (atomic), to stdout as it is made, or (--json without -o) into
    // the one JSON answer, which is bounded.
    const atomic = out !== undefined ? new AtomicOutput(resolve(io.cwd, out), out) : undefined;
    const jsonTrace: string[] | undefined = json && atomic === undefined ? [] : undefined;
    let jsonBytes = 0;
    const stdout = atomic === undefined && !jsonTrace ? new StdoutSink(io) : undefined;
    const sink: Sink = atomic ?? stdout ?? { write: async () => undefined };
    let batch = '';
    const emit = async (lines: string[]): Promise<void> => {
      for (const l of lines) {
        if (jsonTrace) {
          jsonBytes += l.length;
          if (jsonBytes > MAX_JSON_TRACE) throw new CliError(`the trace is larger than ${MAX_JSON_TRACE / 2 ** 20} MiB: too large for one --json answer; write it with -o FILE`, EXIT_USAGE, shown);
          jsonTrace.push(l);
        } else batch += l + '\n';
      }
      if (batch.length >= 64 * 1024) {
        const b = batch;
        batch = '';
        await sink.write(b);
      }
    };
    try {
      await emit([conv.header]);
      let lineNo = 0;
      for await (const line of readLines(input, shown)) {
        lineNo++;
        const lines = conv.push(line, lineNo);
        if (lines.length) await emit(lines);
      }
      await emit(conv.end(lineNo));
      if (batch) await sink.write(batch);
      await atomic?.commit();
      await stdout?.end();
    } catch (e) {
      atomic?.abort();
      input.destroy?.();
      await stdout?.fail(toCliError(e).located());
      throw e;
    }

    const s = conv.summary();
    const summary = {
      command: 'import-ftrace',
      input: shown,
      output: out ?? null,
      mapEvents: s.mapEvents,
      unmapEvents: s.unmapEvents,
      ops: s.ops,
      ignoredLines: s.ignoredLines,
      lostEvents: s.lostEvents,
      warningCount: s.warningCount,
      warnings: s.warnings,
    };
    if (json) await write(io.stdout, JSON.stringify(jsonTrace ? { ...summary, trace: jsonTrace } : summary) + '\n');
    else if (out !== undefined) {
      await write(
        io.stdout,
        `wrote ${out}: ${s.mapEvents} map and ${s.unmapEvents} unmap events -> ${s.ops} ops (${s.ignoredLines} other lines ignored, ${s.warningCount} warnings)\n`,
      );
    }
    return EXIT_OK;
  },
};
