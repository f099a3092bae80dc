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
});
