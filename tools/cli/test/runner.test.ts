/**
 * The shared command runner: every failure of every command, whatever threw it, is one
 * line and an exit status; help has examples whose names exist; a terminal's stdin is
 * refused rather than waited on.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Command } from '../src/command';
import { commands } from '../src/commands/index';
import { CliError, type Io } from '../src/io';
import { main, runCommand } from '../src/main';
import { STACKS } from '../src/sim/stacks';
import { WORKLOADS } from '../src/sim/workloads';
import { cli, tempDir } from './helpers';

function fakeIo(env: Record<string, string> = {}, stdin: NodeJS.ReadableStream = new PassThrough()): Io & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const sink = (add: (s: string) => void) => Object.assign(new PassThrough(), { write: (s: string) => (add(String(s)), true) });
  return {
    stdout: sink((s) => (out += s)) as unknown as Io['stdout'],
    stderr: sink((s) => (err += s)) as unknown as Io['stderr'],
    stdin,
    env,
    cwd: process.cwd(),
    out: () => out,
    err: () => err,
  };
}

const thrower = (e: unknown): Command => ({
  name: 'boom',
  summary: 'throws',
  usage: [''],
  options: {},
  run: async () => {
    throw e;
  },
});

describe('the command runner', () => {
  it('an internal error is exit 1 and one line; the stack only with IOPGT_DEBUG=1', async () => {
    const io = fakeIo();
    expect(await runCommand(thrower(new TypeError("Cannot read properties of undefined (reading 'x')\n    at f (a.js:1:2)")), [], io)).toBe(1);
    expect(io.err()).toBe("io-pgtable boom: internal error: TypeError: Cannot read properties of undefined (reading 'x') (IOPGT_DEBUG=1 prints the stack trace)\n");
    const dbg = fakeIo({ IOPGT_DEBUG: '1' });
    expect(await runCommand(thrower(new Error('bug')), [], dbg)).toBe(1);
    expect(dbg.err().split('\n')[0]).toBe('io-pgtable boom: internal error: Error: bug');
    expect(dbg.err()).toMatch(/^\s+at .+runner\.test\.ts/m);
  });

  it('a file-system error from any command is exit 2, one line naming the path', async () => {
    const e = Object.assign(new Error("EACCES: permission denied, open '/x/y'"), { code: 'EACCES', syscall: 'open', path: '/x/y', errno: -13 });
    const io = fakeIo();
    expect(await runCommand(thrower(e), [], io)).toBe(2);
    expect(io.err()).toBe('io-pgtable boom: /x/y: cannot open: EACCES (permission denied)\n');
  });

  it('a stack overflow on deep input is exit 2, not a crash', async () => {
    const io = fakeIo();
    expect(await runCommand(thrower(new RangeError('Maximum call stack size exceeded')), ['--json'], io)).toBe(2);
    expect(io.err()).toContain('input nested too deeply to process');
    expect(JSON.parse(io.out())).toMatchObject({ exitCode: 2, error: expect.stringContaining('nested too deeply') });
  });

  it('error messages are capped, whatever the command put in them', async () => {
    const io = fakeIo();
    expect(await runCommand(thrower(new CliError(`bad value ${'7'.repeat(5_000_000)}`)), [], io)).toBe(2);
    expect(io.err().length).toBeLessThan(600);
    expect(io.err()).toMatch(/\.\.\. \(4,999,\d+ more characters\)\n$/);
  });

  it('a usage error is one line', async () => {
    const io = fakeIo();
    expect(await main(['worst-case', '--bogus'], io)).toBe(2);
    expect(io.err().trim().split('\n')).toHaveLength(1);
    expect(io.err()).toContain("Unknown option '--bogus'");
  });

  it('import-ftrace refuses to wait on a terminal stdin, as replay does', async () => {
    const tty = Object.assign(new PassThrough(), { isTTY: true });
    const io = fakeIo({}, tty);
    expect(await main(['import-ftrace'], io)).toBe(2);
    expect(io.err()).toContain('reading a capture from the terminal: pipe one in, or pass FILE');
  });

  it('prototype names as option and command names are unknown, never looked up', () => {
    for (const args of [['constructor'], ['__proto__'], ['simulate', '--__proto__'], ['worst-case', '--toString', 'x']]) {
      const r = cli(args);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });
});

describe('every --help', () => {
  const workloads = new Set(WORKLOADS.map((w) => w.name));
  const stacks = new Set(STACKS.map((s) => s.name));
  const names = new Set(commands.map((c) => c.name));

  it.each(commands.map((c) => c.name))('%s has an Examples section whose names exist', (name) => {
    const r = cli([name, '--help']);
    expect(r.status).toBe(0);
    const ex = r.stdout.split('\nExamples:\n')[1];
    expect(ex, 'an Examples section').toBeDefined();
    const lines = ex!.split('\n\n')[0]!.split('\n').filter((l) => l.includes('io-pgtable '));
    expect(lines.length).toBeGreaterThan(0);
    const cmd = commands.find((c) => c.name === name)!;
    for (const l of lines) {
      const words = l.slice(l.indexOf('io-pgtable ') + 'io-pgtable '.length).split(/\s+/);
      expect(names.has(words[0]!), l).toBe(true);
      const target = commands.find((c) => c.name === words[0])!;
      words.forEach((w, i) => {
        if (!w.startsWith('--')) return;
        const opt = w.slice(2);
        expect(opt === 'help' || opt === 'json' || Object.hasOwn(target.options, opt), `${l}: --${opt}`).toBe(true);
        const v = words[i + 1] ?? '';
        if (opt === 'workload') for (const n of v.split(',')) expect(n === 'all' || workloads.has(n), `${l}: workload ${n}`).toBe(true);
        // `+PACKAGE` (a plugin package) and file paths are stacks by reference, not registry names.
        if (opt === 'stack') for (const n of v.split(',')) expect(n === 'all' || n.startsWith('+') || n.includes('/') || stacks.has(n), `${l}: stack ${n}`).toBe(true);
      });
      void cmd;
    }
  });

  it("the worst-case and import-ftrace examples run (with the files they name)", () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'iommu.txt'), '  a-1 [000] ..... 1.0: map: IOMMU: iova=0x0000000000200000 - 0x0000000000400000 paddr=0x0000000080000000 size=2097152\n');
    for (const name of ['worst-case', 'import-ftrace']) {
      const ex = cli([name, '--help']).stdout.split('\nExamples:\n')[1]!.split('\n\n')[0]!;
      for (const l of ex.split('\n').filter((x) => x.trim().startsWith(`io-pgtable ${name} `))) {
        const r = cli(l.trim().split(/\s+/).slice(1), { cwd: dir });
        expect(r.status, `${l}\n${r.stderr}`).toBe(0);
      }
    }
  });
});
