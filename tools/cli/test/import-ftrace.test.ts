import { readFileSync, writeFileSync } from 'node:fs';
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
