import { describe, expect, it } from 'vitest';
import { TERMINAL_CONTROL, VECTORS, cli } from './helpers';

const COMMANDS = ['compare', 'replay', 'simulate', 'bench', 'report', 'worst-case', 'import-ftrace'];

describe('io-pgtable (conventions)', () => {
  it('lists every command in the global help', () => {
    const r = cli(['--help']);
    expect(r.status).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c} +\\S`, 'm'));
  });

  it('no command prints the help and exits 2', () => {
    const r = cli([]);
    expect(r.status).toBe(2);
    expect(r.stdout).toContain('Usage: io-pgtable <command>');
  });

  it.each(COMMANDS)('%s --help prints usage and options and exits 0', (c) => {
    const r = cli([c, '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`io-pgtable ${c} `);
    expect(r.stdout).toContain('--json');
    expect(r.stdout).toContain('-h, --help');
  });

  it('an unknown command exits 2 and names the commands', () => {
    const r = cli(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command "frobnicate"');
  });

  it('an unknown option exits 2 with a usage hint, also as JSON with --json', () => {
    const r = cli(['simulate', '--bogus']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("Unknown option '--bogus'");
    const j = cli(['worst-case', '--json', '--range', 'nonsense']);
    expect(j.status).toBe(2);
    expect(JSON.parse(j.stdout)).toMatchObject({ exitCode: 2 });
    expect(JSON.parse(j.stdout).error).toContain('--range #1');
  });

  it('colour: off on a pipe, on with FORCE_COLOR, and NO_COLOR wins', () => {
    const args = ['replay', '--check', `${VECTORS}/000_sanity_4k_48_48.trace.jsonl`];
    expect(cli(args).stdout).not.toMatch(TERMINAL_CONTROL);
    expect(cli(args, { env: { FORCE_COLOR: '1' } }).stdout).toContain('\x1b[32mok\x1b[39m');
    expect(cli(args, { env: { FORCE_COLOR: '1', NO_COLOR: '1' } }).stdout).not.toMatch(TERMINAL_CONTROL);
  });

  it('--version prints the version', () => {
    const r = cli(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});
