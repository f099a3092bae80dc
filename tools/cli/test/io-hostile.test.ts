/**
 * The shared input and option handling every command goes through (src/io.ts, src/command.ts),
 * on hostile input. The whole CLI is run on the same classes, command by command, by the
 * catalogue (tools/reliability/src/catalogue/cli-hostile.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { intOpt, parseCommandArgs, type Command } from '../src/command';
import { CliError, TextCheck, openInput, readLines, readTextFileSync } from '../src/io';

const dir = mkdtempSync(join(tmpdir(), 'iopgt-io-'));
const file = (name: string, content: string | Uint8Array): string => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};
const thrown = (f: () => unknown): CliError => {
  try {
    f();
  } catch (e) {
    return e as CliError;
  }
  throw new Error('did not throw');
};
async function thrownAsync(f: () => Promise<unknown>): Promise<CliError> {
  try {
    await f();
  } catch (e) {
    return e as CliError;
  }
  throw new Error('did not throw');
}

describe('TextCheck: input is UTF-8 text without NUL, checked in constant memory', () => {
  it('accepts a multi-byte character split across chunks at every position', () => {
    const text = Buffer.from('line one\nß €\n𝄞 end\n');
    for (let cut = 1; cut < text.length; cut++) {
      const c = new TextCheck('t');
      c.push(text.subarray(0, cut));
      c.push(text.subarray(cut));
      expect(() => c.end(), `cut at ${cut}`).not.toThrow();
    }
  });

  it('names the line of an invalid byte, also when it arrives in a later chunk', () => {
    const c = new TextCheck('t.jsonl');
    c.push(Buffer.from('a\nb\n'));
    const e = thrown(() => c.push(Buffer.concat([Buffer.from('c\nd'), Buffer.from([0xff]), Buffer.from('\n')])));
    expect(e).toBeInstanceOf(CliError);
    expect(e.located()).toBe('t.jsonl:4: not valid UTF-8 text');
  });

  it('a sequence cut off at the end of the input is invalid', () => {
    const c = new TextCheck('t');
    c.push(Buffer.from([0x61, 0x0a, 0xe2, 0x82]));
    expect(thrown(() => c.end()).located()).toBe('t:2: not valid UTF-8 text');
  });

  it('a NUL byte is an error naming its line', () => {
    const c = new TextCheck('t');
    expect(thrown(() => c.push(Buffer.from('x\ny\n\0'))).located()).toBe('t:3: NUL byte: not a text file');
  });

  it('a line longer than the limit fails when it passes it, without waiting for its end', () => {
    const c = new TextCheck('t', 10);
    c.push(Buffer.from('short\n12345'));
    expect(thrown(() => c.push(Buffer.from('678901'))).located()).toBe('t:2: line longer than 10 bytes');
  });
});

describe('reading input files', () => {
  it('readTextFileSync refuses more than its limit (/dev/zero is refused at its first byte)', () => {
    expect(thrown(() => readTextFileSync(file('big.txt', 'x'.repeat(5000)), 'big.txt', 4096, 'a test file')).located()).toBe('big.txt: larger than 0.004 MiB: too large for a test file');
    expect(thrown(() => readTextFileSync('/dev/zero', '/dev/zero', 1 << 20, 'a test file')).located()).toBe('/dev/zero:1: NUL byte: not a text file');
  });

  it('readTextFileSync drops a byte-order mark and names a directory', () => {
    expect(readTextFileSync(file('bom.json', '\ufeff{"a":1}'), 'bom.json', 100, 'x')).toBe('{"a":1}');
    expect(thrown(() => readTextFileSync(dir, 'd', 100, 'x')).located()).toBe('d: cannot read: EISDIR (is a directory)');
  });

  it('a FIFO with no writer is empty input, not a wait that never ends', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(readTextFileSync(fifo, 'fifo', 100, 'x')).toBe('');
    const lines: string[] = [];
    for await (const l of readLines(openInput(fifo, 'fifo'), 'fifo')) lines.push(l);
    expect(lines).toEqual([]);
  });

  it('readLines: CRLF line ends and a byte-order mark are read as plain lines; invalid UTF-8 names the line', async () => {
    const lines: string[] = [];
    for await (const l of readLines(openInput(file('crlf.txt', '\ufeffa\r\nb\r\n'), 'crlf.txt'), 'crlf.txt')) lines.push(l);
    expect(lines).toEqual(['a', 'b']);
    const bad = file('bad.txt', Buffer.from([0x61, 0x0a, 0x62, 0xc3, 0x28, 0x0a]));
    const e = await thrownAsync(async () => {
      for await (const _ of readLines(openInput(bad, 'bad.txt'), 'bad.txt'));
    });
    expect(e.located()).toBe('bad.txt:2: not valid UTF-8 text');
  });
});

describe('options', () => {
  const cmd: Command = {
    name: 'x',
    summary: 's',
    usage: [],
    options: { seed: { type: 'string', help: 'h' }, trace: { type: 'string', multiple: true, help: 'h' } },
    run: async () => 0,
  };

  it('an option that takes one value, given twice, is a usage error (not "the last one wins")', () => {
    expect(thrown(() => parseCommandArgs(cmd, ['--seed', '1', '--seed', '2'])).message).toBe("--seed given more than once (it takes one value)\nRun 'io-pgtable x --help' for usage.");
    expect(parseCommandArgs(cmd, ['--trace', 'a', '--trace', 'b']).values.trace).toEqual(['a', 'b']);
  });

  it('--help wins over any other argument, good or bad, before --', () => {
    expect(parseCommandArgs(cmd, ['--bogus', '--seed', '--help']).values.help).toBe(true);
    expect(thrown(() => parseCommandArgs(cmd, ['--bogus', '--', '--help'])).message).toMatch(/^Unknown option '--bogus'/);
  });

  it('a u64 at or above 2^53 is "too large", not "not an integer", and never rounded', () => {
    const p = (v: string) => ({ values: { seed: v }, positionals: [] });
    expect(thrown(() => intOpt(p('9007199254740993'), 'seed', 0)).message).toBe('--seed: "9007199254740993" is too large (at most 9007199254740991, 2^53-1)');
    expect(intOpt(p('9007199254740991'), 'seed', 0)).toBe(9007199254740991);
    expect(thrown(() => intOpt(p('-1'), 'seed', 0)).message).toBe('--seed: "-1" is not a non-negative integer');
  });
});

describe('messages', () => {
  it('a BigInt formatted with its suffix is shown as the number it is', () => {
    expect(new CliError('iova 0x0n + size 4096n wraps').message).toBe('iova 0x0 + size 4096 wraps');
  });
});
