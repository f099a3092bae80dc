// In-process: an internal error (a bug, not bad input) in one trace of a run must not stop
// the others. No trace triggers one on purpose, so the core's replayStream is wrapped to
// throw for one file; everything else is the real command.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';

vi.mock('@io-pgtable/core', async (importOriginal) => {
  const core = await importOriginal<typeof import('@io-pgtable/core')>();
  return {
    ...core,
    replayStream: (input: Parameters<typeof core.replayStream>[0], opts: Parameters<typeof core.replayStream>[1] = {}) => {
      if (!opts.file?.includes('boom')) return core.replayStream(input, opts);
      // Some output first, then the bug: no partial result may be left behind.
      return (async function* () {
        yield '{"cfg":{}}\n';
        throw new TypeError('boom: cannot read properties of undefined');
      })();
    },
  };
});

const { main } = await import('../src/main.js');

function sink() {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

const TRACE = '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48,"dumpEvery":false}\n{"op":"map","iova":"0x1000","paddr":"0x2000","pgsize":"0x1000","prot":["read"]}\n';

describe('replay of many traces with an internal error in the middle', () => {
  it('writes every other result, names the failing trace on stderr, counts it, exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iopgt-iso-'));
    for (const n of ['a', 'boom', 'c']) writeFileSync(join(dir, `${n}.trace.jsonl`), TRACE);
    // A stale result from an earlier run must not survive to claim success.
    mkdirSync(join(dir, 'out'));
    writeFileSync(join(dir, 'out', 'boom.result.jsonl'), 'stale');
    const out = sink();
    const err = sink();
    const status = await main(['replay', '--out-dir', join(dir, 'out'), ...['a', 'boom', 'c'].map((n) => join(dir, `${n}.trace.jsonl`))], {
      stdout: out.stream,
      stderr: err.stream,
      stdin: process.stdin,
      env: {},
      cwd: dir,
    });
    expect(status).toBe(1);
    expect(err.text()).toBe(`${join(dir, 'boom.trace.jsonl')}: internal error: boom: cannot read properties of undefined\n`);
    expect(out.text()).toMatch(/^replay: 3 traces: 2 written, 0 matched, 0 differed, 1 failed$/m);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(['a.result.jsonl', 'c.result.jsonl']);
    const want = '{"ret":0,"mapped":"0x1000","events":[["alloc","0x1000","0x80001000"],["alloc","0x1000","0x80002000"],["alloc","0x1000","0x80003000"]]}';
    for (const n of ['a', 'c']) expect(readFileSync(join(dir, 'out', `${n}.result.jsonl`), 'utf8').split('\n')[1]).toBe(want);
    expect(existsSync(join(dir, 'out', 'boom.result.jsonl'))).toBe(false);
  });

  it('--check: the failing trace is counted as failed, the others matched', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'iopgt-iso-'));
    const good = mkdtempSync(join(tmpdir(), 'iopgt-iso-out-'));
    for (const n of ['a', 'boom', 'c']) writeFileSync(join(dir, `${n}.trace.jsonl`), TRACE);
    const first = await main(['replay', '--out-dir', good, join(dir, 'a.trace.jsonl')], { stdout: sink().stream, stderr: sink().stream, stdin: process.stdin, env: {}, cwd: dir });
    expect(first).toBe(0);
    for (const n of ['a', 'boom', 'c']) writeFileSync(join(dir, `${n}.expected.jsonl`), readFileSync(join(good, 'a.result.jsonl')));
    const out = sink();
    const err = sink();
    const status = await main(['replay', '--check', dir], { stdout: out.stream, stderr: err.stream, stdin: process.stdin, env: {}, cwd: dir });
    expect(status).toBe(1);
    expect(out.text()).toMatch(/^ok {3}a \(3 lines\)$/m);
    expect(out.text()).toMatch(/^ok {3}c \(3 lines\)$/m);
    expect(out.text()).toMatch(/^FAIL boom: .*internal error: boom/m);
    expect(out.text()).toMatch(/^replay: 3 traces: 0 written, 2 matched, 0 differed, 1 failed$/m);
    expect(err.text()).toContain('boom.trace.jsonl: internal error: boom');
  });
});
