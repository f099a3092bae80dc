import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, tempDir } from './helpers';

// /sys/kernel/tracing/trace, kernel >= 5.17 (iova range in the message).
const TRACE_FILE = `# tracer: nop
#
# entries-in-buffer/entries-written: 4/4   #P:8
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
     panthor-vm-812     [002] ..... 10421.518337: map: IOMMU: iova=0x00000000001ff000 - 0x0000000000401000 paddr=0x00000000809ff000 size=2105344
     panthor-vm-812     [002] ..... 10421.518391: map: IOMMU: iova=0x00000000011ff000 - 0x0000000001202000 paddr=0x0000000090000000 size=12288
     kworker/u16:1-77   [000] ..... 10421.602114: unmap: IOMMU: iova=0x00000000001ff000 - 0x0000000000401000 size=2105344 unmapped_size=2105344
     kworker/u16:1-77   [000] ..... 10421.602180: unmap: IOMMU: iova=0x00000000011ff000 - 0x0000000001202000 size=12288 unmapped_size=12288
`;

// trace-cmd report, kernel before 5.17 (no range), with an unrelated event in between.
const TRACE_CMD = `cpus=4
     kworker/1:2-140   [001]   512.000100: map:                  IOMMU: iova=0x0000000040000000 paddr=0x0000000080000000 size=1073741824
          <idle>-0     [003]   512.000150: sched_switch:         prev_comm=swapper/3 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=kworker/3:0 next_pid=33 next_prio=120
     kworker/1:2-140   [001]   512.000200: unmap:                IOMMU: iova=0x0000000040000000 size=1073741824 unmapped_size=1073741824
`;

const ops = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('io-pgtable import-ftrace', () => {
  it('splits each iommu_map into the map_pages calls iommu_map makes', () => {
    const r = cli(['import-ftrace'], { input: TRACE_FILE });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const [header, ...rest] = ops(r.stdout);
    expect(header).toMatchObject({ format: 'ARM_64_LPAE_S1', pgsizeBitmap: '0x40201000', ias: 48, oas: 48, dumpEvery: false });
    const prot = ['read', 'write', 'cache'];
    expect(rest).toEqual([
      // iova and paddr agree modulo 2M: one page up to the 2M boundary, a block, one page.
      { op: 'map', iova: '0x1ff000', paddr: '0x809ff000', pgsize: '0x1000', pgcount: 1, prot },
      { op: 'map', iova: '0x200000', paddr: '0x80a00000', pgsize: '0x200000', pgcount: 1, prot },
      { op: 'map', iova: '0x400000', paddr: '0x80c00000', pgsize: '0x1000', pgcount: 1, prot },
      // paddr is not 2M-congruent with iova: 3 pages asked at once, but map_pages stops at
      // the end of the level-3 table (0x1200000), so iommu_map calls again for the rest.
      { op: 'map', iova: '0x11ff000', paddr: '0x90000000', pgsize: '0x1000', pgcount: 3, prot },
      { op: 'map', iova: '0x1200000', paddr: '0x90001000', pgsize: '0x1000', pgcount: 2, prot },
      { op: 'unmap', iova: '0x1ff000', pgsize: '0x1000', pgcount: 1 },
      { op: 'unmap', iova: '0x200000', pgsize: '0x200000', pgcount: 1 },
      { op: 'unmap', iova: '0x400000', pgsize: '0x1000', pgcount: 1 },
      { op: 'unmap', iova: '0x11ff000', pgsize: '0x1000', pgcount: 3 },
      { op: 'unmap', iova: '0x1200000', pgsize: '0x1000', pgcount: 2 },
      { op: 'free' },
    ]);
  });

  it('reads trace-cmd report output of older kernels and ignores other events', () => {
    const r = cli(['import-ftrace', '--json'], { input: TRACE_CMD });
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ mapEvents: 1, unmapEvents: 1, ops: 3, ignoredLines: 2, warnings: [] });
    expect(j.trace.slice(1).map((l: string) => JSON.parse(l))).toEqual([
      { op: 'map', iova: '0x40000000', paddr: '0x80000000', pgsize: '0x40000000', pgcount: 1, prot: ['read', 'write', 'cache'] },
      { op: 'unmap', iova: '0x40000000', pgsize: '0x40000000', pgcount: 1 },
      { op: 'free' },
    ]);
  });

  it('writes a trace that replays cleanly (-o, header options)', () => {
    const dir = tempDir();
    const input = join(dir, 'cap.txt');
    writeFileSync(input, TRACE_FILE);
    const out = join(dir, 'cap.trace.jsonl');
    const r = cli(['import-ftrace', input, '-o', out, '--format', 'ARM_64_LPAE_S2', '--ias', '40', '--oas', '40', '--prot', 'read,write']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('2 map and 2 unmap events -> 11 ops');
    const text = readFileSync(out, 'utf8');
    expect(JSON.parse(text.split('\n')[0]!)).toMatchObject({ format: 'ARM_64_LPAE_S2', ias: 40, oas: 40 });
    const rep = cli(['replay', out]);
    expect(rep.status).toBe(0);
    const lines = ops(rep.stdout);
    expect(lines[0].cfg.format).toBe('ARM_64_LPAE_S2');
    // Every map and unmap succeeds in full, and the final free leaves no table behind.
    const mapped = lines.slice(1, 6).map((l: { ret: number; mapped: string }) => [l.ret, l.mapped]);
    expect(mapped).toEqual([[0, '0x1000'], [0, '0x200000'], [0, '0x1000'], [0, '0x1000'], [0, '0x2000']]);
    expect(lines.at(-1)).toEqual({ final: { tables: {} } });
  });

  it('warns with the line when the capture lost an unmap', () => {
    const lost = TRACE_FILE.split('\n').filter((l) => !l.includes('unmap: IOMMU: iova=0x00000000011ff000')).join('\n') +
      '     panthor-vm-812     [002] ..... 10422.000000: map: IOMMU: iova=0x00000000011ff000 - 0x0000000001200000 paddr=0x00000000a0000000 size=4096\n';
    const r = cli(['import-ftrace'], { input: lost });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^<stdin>:16: warning: map of 0x11ff000 \+ 0x1000 fails here with EEXIST/m);
  });

  it('a malformed event line is reported with file and line, exit 2', () => {
    const dir = tempDir();
    const input = join(dir, 'bad.txt');
    writeFileSync(input, TRACE_FILE.replace('paddr=0x0000000090000000', 'paddr=0xZZ'));
    const r = cli(['import-ftrace', input]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${input}:14: map event is not "IOMMU: iova=0x... [- 0x...] paddr=0x... size=N"`);
  });

  it('a range end that is not iova + size is rejected with the line', () => {
    const r = cli(['import-ftrace'], { input: TRACE_FILE.replace('- 0x0000000000401000 paddr', '- 0x0000000000402000 paddr') });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('<stdin>:13: range end 0x402000 is not iova + size (0x401000)');
  });

  it('input without iommu events is an error, exit 2', () => {
    const r = cli(['import-ftrace'], { input: '# tracer: nop\n#\n' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('no iommu map/unmap events found');
  });

  it('a bad --format is a usage error', () => {
    const r = cli(['import-ftrace', '--format', 'ARM_V7S'], { input: TRACE_FILE });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--format: "ARM_V7S" is not one of');
  });
});

const h16 = (v: bigint) => '0x' + v.toString(16).padStart(16, '0');
const mapLine = (iova: bigint, paddr: bigint, size: bigint, event = 'map') =>
  `     panthor-vm-812     [002] ..... 10421.518337: ${event}: IOMMU: iova=${h16(iova)} - ${h16((iova + size) & ((1n << 64n) - 1n))} paddr=${h16(paddr)} size=${size}`;
const unmapLine = (iova: bigint, size: bigint, unmapped = size) =>
  `     kworker/u16:1-77   [000] ..... 10421.602114: unmap: IOMMU: iova=${h16(iova)} - ${h16(iova + size)} size=${size} unmapped_size=${unmapped}`;

describe('io-pgtable import-ftrace: what the kernel really writes', () => {
  it('trace_marker text that reads like an event is not imported (the event-name field decides)', () => {
    const marker = `     mesa-worker-900   [001] ..... 10421.500000: tracing_mark_write: map: IOMMU: iova=${h16(0x5000n)} - ${h16(0x6000n)} paddr=${h16(0x9000n)} size=4096`;
    const markerOld = `  mesa-worker-900   [001] 10421.500001: tracing_mark_write:   unmap: IOMMU: iova=${h16(0x5000n)} size=4096 unmapped_size=4096`;
    const r = cli(['import-ftrace', '--json'], { input: [marker, markerOld, mapLine(0x1000n, 0x8000_0000n, 0x1000n), ''].join('\n') });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ mapEvents: 1, unmapEvents: 0, ops: 2, ignoredLines: 2 });
    expect(JSON.parse(j.trace[1])).toMatchObject({ op: 'map', iova: '0x1000' });
    // Only marker lines: no event at all.
    const only = cli(['import-ftrace'], { input: marker + '\n' });
    expect(only.status).toBe(2);
    expect(only.stderr).toContain('no iommu map/unmap events found');
  });

  it('a zero-size map or unmap is an event of zero ops, not a failed file', () => {
    const r = cli(['import-ftrace', '--json'], { input: [mapLine(0x1000n, 0x8000_0000n, 0n), unmapLine(0x2000n, 0n), mapLine(0x1000n, 0x8000_0000n, 0x1000n), ''].join('\n') });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ mapEvents: 2, unmapEvents: 1, ops: 2 });
    expect(j.trace.slice(1).map((l: string) => JSON.parse(l).op)).toEqual(['map', 'free']);
  });

  it('a CRLF capture imports exactly as the LF one', () => {
    const lf = cli(['import-ftrace'], { input: TRACE_FILE });
    const crlf = cli(['import-ftrace'], { input: TRACE_FILE.replace(/\n/g, '\r\n') });
    expect(crlf.status, crlf.stderr).toBe(0);
    expect(crlf.stderr).toBe('');
    expect(crlf.stdout).toBe(lf.stdout);
  });

  it('[LOST n EVENTS] warns with the line and is counted', () => {
    const input = [mapLine(0x1000n, 0x8000_0000n, 0x1000n), 'CPU:2 [LOST 17 EVENTS]', unmapLine(0x1000n, 0x1000n), ''].join('\n');
    const r = cli(['import-ftrace', '--json'], { input });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^<stdin>:2: warning: CPU 2 lost 17 events/m);
    expect(JSON.parse(r.stdout)).toMatchObject({ lostEvents: 17, warningCount: 1, ops: 3 });
  });

  it('one line that expands past the per-event limit is refused, naming the option; the option raises it', () => {
    // 40 GiB of 4K pages: 20,480 map_pages calls (one per level-3 table).
    const line = mapLine(0n, 0n, 40n << 30n);
    const r = cli(['import-ftrace', '--bitmap', '0x1000'], { input: line + '\n' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^io-pgtable import-ftrace: <stdin>:1: map of 0x0 \+ 0xa00000000 becomes more than 16,384 map_pages calls; raise the limit with --max-ops-per-event N/);
    expect(r.stdout.split('\n').length).toBeLessThan(3);
    const ok = cli(['import-ftrace', '--bitmap', '0x1000', '--max-ops-per-event', '30000', '--json'], { input: line + '\n' });
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ mapEvents: 1, ops: 20_481 });
  });

  it('a range that wraps past 2^64 (TTBR1) is refused: no trace replay would reject is written', () => {
    const dir = tempDir();
    const out = join(dir, 'wrap.trace.jsonl');
    const wrap = `  a-1 [000] ..... 1.0: map: IOMMU: iova=0xfffffffffffff000 paddr=0x0000000080000000 size=8192`;
    const r = cli(['import-ftrace', '--quirks', 'ARM_TTBR1', '-o', out], { input: wrap + '\n' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('<stdin>:1: iova 0xfffffffffffff000 + size 0x2000 wraps past 2^64');
    expect(r.stdout).toBe('');
    expect(existsSync(out)).toBe(false);
    // The same range one page lower fits, and replays.
    const fits = cli(['import-ftrace', '--quirks', 'ARM_TTBR1', '-o', out], { input: wrap.replace('0xfffffffffffff000', '0xffffffffffffe000') + '\n' });
    expect(fits.status, fits.stderr).toBe(0);
    expect(cli(['replay', out]).status).toBe(0);
  });

  it('no message prints a BigInt as 0x...n', () => {
    for (const args of [['--bitmap', '0x10000000000000000'], ['--bitmap', '0x0'], ['--bitmap', '0x3']]) {
      const r = cli(['import-ftrace', ...args], { input: mapLine(0n, 0n, 0x1000n) + '\n' });
      expect(r.status).toBe(2);
      expect(r.stderr).not.toMatch(/0x[0-9a-f]+n\b/);
    }
  });

  it('a failed import with -o leaves no output file (and does not replace an old one)', () => {
    const dir = tempDir();
    const out = join(dir, 'out.trace.jsonl');
    writeFileSync(out, 'old\n');
    const r = cli(['import-ftrace', '-o', out], { input: TRACE_FILE + 'x-1 [000] 1.0: map: IOMMU: iova=0xZZ\n' });
    expect(r.status).toBe(2);
    expect(readFileSync(out, 'utf8')).toBe('old\n');
    expect(readdirSync(dir)).toEqual(['out.trace.jsonl']);
  });

  it('file-system errors name the path in one line, exit 2', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), 'x');
    const cases: Array<[string[], RegExp]> = [
      [['import-ftrace', dir], new RegExp(`${dir}: cannot read: EISDIR`)],
      [['import-ftrace', join(dir, 'missing.txt')], /missing\.txt: cannot read: ENOENT/],
      [['import-ftrace', '-o', dir], new RegExp(`${dir}: cannot write: EISDIR`)],
      [['import-ftrace', '-o', join(dir, 'nodir', 'x.jsonl')], /nodir\/x\.jsonl: cannot write: ENOENT/],
      [['import-ftrace', '-o', join(dir, 'file', 'x.jsonl')], /file\/x\.jsonl: cannot write: ENOTDIR/],
    ];
    for (const [args, re] of cases) {
      const r = cli(args, { input: TRACE_FILE });
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  it('names inherited from Object.prototype are not prot, quirk or format names', () => {
    for (const [opt, name] of [['--prot', 'toString'], ['--prot', '__proto__'], ['--quirks', 'constructor'], ['--quirks', '__proto__'], ['--format', 'hasOwnProperty']]) {
      const r = cli(['import-ftrace', opt!, name!], { input: TRACE_FILE });
      expect(r.status, `${opt} ${name}`).toBe(2);
      expect(r.stderr).toContain(`${opt}: "${name}" is not one of`);
      expect(r.stdout).toBe('');
    }
  });

  it('a huge number in a capture is refused without echoing it', () => {
    const r = cli(['import-ftrace'], { input: mapLine(0n, 0n, 0x1000n).replace('size=4096', `size=${'9'.repeat(50_000)}`) + '\n' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('<stdin>:1: size does not fit in 64 bits');
    expect(r.stderr.length).toBeLessThan(600);
    const long = cli(['import-ftrace'], { input: 'x'.repeat(200_000) + '\n' });
    expect(long.status).toBe(2);
    expect(long.stderr).toContain('<stdin>:1: line longer than 65,536 characters');
    expect(long.stderr.length).toBeLessThan(600);
  });

  it('--help names the layouts and kernel versions, what is not supported, and examples that exist', () => {
    const r = cli(['import-ftrace', '--help']);
    expect(r.stdout).toContain('v5.17+, commit 94aedac49d92');
    expect(r.stdout).toContain('from v5.14');
    expect(r.stdout).toMatch(/Not supported: vendor tracepoints \(Intel VT-d/);
    expect(r.stdout).toContain('--max-ops-per-event');
    expect(r.stdout).not.toContain('--workload trace ');
    expect(r.stdout).toContain('simulate --workload trace-replay');
  });
});
