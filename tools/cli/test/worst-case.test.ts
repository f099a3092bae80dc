import { describe, expect, it } from 'vitest';
import { cli } from './helpers';

describe('io-pgtable worst-case', () => {
  it('two pages across a level-3 table boundary need L1, L2 and two L3 tables', () => {
    const r = cli(['worst-case', '--json', '--range', '0x1ff000+0x2000']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ tables: 4, perLevel: [0, 1, 1, 2], startLevel: 0, bytes: 16384 });
  });

  it('a 2M-block map needs no level-3 table; the text output shows the total', () => {
    const r = cli(['worst-case', '--range', '0x40000000+2M@2M']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('worst case: 2 tables (8,192 bytes) beyond the root');
  });

  it('merging counts shared tables once', () => {
    const ranges = ['--range', '0x100000+64K', '--range', '0x110000+64K'];
    const perOp = JSON.parse(cli(['worst-case', '--json', ...ranges]).stdout);
    const merged = JSON.parse(cli(['worst-case', '--json', '--merge', 'union', ...ranges]).stdout);
    expect(perOp.tables).toBe(6);
    expect(merged.tables).toBe(3);
  });

  it('16K stage-2 40-bit starts at level 2 (concatenated PGD), so 32M blocks need no table', () => {
    const r = cli(['worst-case', '--json', '--granule', '16K', '--format', 'ARM_64_LPAE_S2', '--ias', '40', '--oas', '40', '--range', '0+1G@32M']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ startLevel: 2, granule: 16384, tables: 0 });
  });

  it('a misaligned range is bad input, exit 2', () => {
    const r = cli(['worst-case', '--range', '0x1001+0x2000']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--range #1');
  });

  it('a rejected configuration is bad input, exit 2', () => {
    const r = cli(['worst-case', '--format', 'ARM_32_LPAE_S1', '--ias', '48', '--range', '0+4K']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('configuration rejected');
  });

  it('an @PGSIZE that is a block size of the granule but not in the bitmap is refused, naming the bitmap', () => {
    // map_pages returns -EINVAL for a size outside the bitmap and allocates nothing.
    for (const [bitmap, range, size] of [
      ['0x1000', '0+2M@2M', '0x200000'],
      ['0x201000', '0+1G@1G', '0x40000000'],
      ['0x40001000', '0x200000+2M@2M', '0x200000'],
    ]) {
      const r = cli(['worst-case', '--bitmap', bitmap!, '--range', range!]);
      expect(r.status, `${bitmap} ${range}`).toBe(2);
      expect(r.stderr).toBe(`io-pgtable worst-case: --range #1: @PGSIZE ${size} is not in the page-size bitmap ${bitmap}: map_pages returns -EINVAL for it and allocates nothing (use a size of the bitmap, or no @PGSIZE)\n`);
    }
    const j = cli(['worst-case', '--json', '--granule', '16K', '--range', '0+4M@2M']);
    expect(j.status).toBe(2);
    expect(JSON.parse(j.stdout).error).toContain('is not in the page-size bitmap 0x2004000');
    // The same sizes in the bitmap are counted (hand-derived: L1 + L2, no level-3 table).
    expect(JSON.parse(cli(['worst-case', '--json', '--bitmap', '0x201000', '--range', '0+2M@2M']).stdout)).toMatchObject({ tables: 2, perLevel: [0, 1, 1, 0] });
  });

  it('--exact-page-sizes counts the pages iommu_map will use, from iova, paddr and size', () => {
    const run = (range: string) => JSON.parse(cli(['worst-case', '--json', '--exact-page-sizes', '--range', range]).stdout);
    // Congruent paddr: 4K, one 2M block, 4K: level-3 tables only at both ends (hand-derived).
    expect(run('0x1ff000+0x202000=0x809ff000')).toMatchObject({ tables: 4, perLevel: [0, 1, 1, 2], ops: 1, countedOps: 3, exactPageSizes: true });
    // Incongruent paddr: all 4K pages, three level-3 windows: the granule worst case.
    expect(run('0x1ff000+0x202000=0x80000000')).toMatchObject({ tables: 5, perLevel: [0, 1, 1, 3] });
    expect(JSON.parse(cli(['worst-case', '--json', '--range', '0x1ff000+0x202000']).stdout)).toMatchObject({ tables: 5 });
    // 2M-aligned both sides: blocks only, no level-3 table.
    expect(run('0x200000+0x400000=0x80000000')).toMatchObject({ tables: 2, perLevel: [0, 1, 1, 0] });
    const missing = cli(['worst-case', '--exact-page-sizes', '--range', '0x1ff000+0x202000']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('--range #1: --exact-page-sizes needs the physical address of a map without @PGSIZE (IOVA+SIZE=PADDR)');
  });

  it('--help says how @PGSIZE and the default are counted', () => {
    const h = cli(['worst-case', '--help']).stdout;
    expect(h).toContain('counted as ONE map_pages size');
    expect(h).toContain("not iommu_map's split");
    expect(h).toContain('counted as granule pages: the safe upper bound');
    expect(h).toContain('--exact-page-sizes');
  });

  it('names inherited from Object.prototype and huge values are usage errors with short messages', () => {
    for (const args of [['--granule', '__proto__'], ['--granule', 'constructor'], ['--merge', 'toString'], ['--split', '__proto__'], ['--format', 'valueOf']]) {
      const r = cli(['worst-case', ...args, '--range', '0+4K']);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(/is not one of/);
    }
    const huge = cli(['worst-case', '--range', `${'1'.repeat(100_000)}+4K`]);
    expect(huge.status).toBe(2);
    expect(huge.stderr.length).toBeLessThan(600);
  });
});
