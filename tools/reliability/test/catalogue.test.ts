import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TraceError, parseTrace, replayTrace } from '@io-pgtable/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALL_CASES, API_CASES, CLI_CASES, TRACE_CASES, makeFixture, prepare, snapshot } from '../src/catalogue.js';

const CLI = resolve(__dirname, '../../cli/dist/bin.js');

describe('bad-input catalogue', () => {
  it('has at least 40 distinct cases across the API, the trace format and the CLI', () => {
    const ids = ALL_CASES.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(API_CASES.length + TRACE_CASES.length + CLI_CASES.length).toBeGreaterThanOrEqual(40);
    expect(API_CASES.length).toBeGreaterThanOrEqual(20);
    expect(TRACE_CASES.length).toBeGreaterThanOrEqual(10);
  });

  it.each(API_CASES.map((c) => [c.id, c] as const))('%s: typed error, state unchanged', (_id, c) => {
    const f = makeFixture();
    prepare(c, f);
    const before = snapshot(f);
    let threw: unknown = null;
    let result: unknown;
    try {
      result = c.act(f);
    } catch (e) {
      threw = e;
    }
    const e = c.expect;
    if (e.kind === 'throw') {
      expect(threw, 'must throw').toBeInstanceOf(Error);
      const err = threw as Error & { code?: string; rule?: string };
      expect(err.name).toBe(e.cls);
      if (e.code) expect(err.code ?? err.rule).toBe(e.code);
      expect(err.message).toMatch(e.match);
      expect(err.message).toMatch(/^\[iopgt\] \[[^\]]+\] /);
    } else {
      expect(threw).toBeNull();
      if (e.kind === 'ret') expect(result).toBe(e.value);
      else {
        const r = result as { error?: string; message?: string; mapped?: number; unmapped?: number };
        expect(r.error).toBe(e.code);
        expect(r.message).toMatch(e.match);
        expect(r.mapped ?? r.unmapped).toBe(0);
      }
    }
    expect(snapshot(f)).toBe(before);
  });

  it.each(TRACE_CASES.map((c) => [c.id, c] as const))('%s: TraceError naming the line', (_id, c) => {
    for (const run of [() => parseTrace(c.text, 'case.trace.jsonl'), () => replayTrace(c.text, 'case.trace.jsonl')]) {
      let threw: unknown = null;
      try {
        run();
      } catch (e) {
        threw = e;
      }
      expect(threw).toBeInstanceOf(TraceError);
      const t = threw as TraceError;
      expect(t.line).toBe(c.line);
      expect(t.message).toMatch(new RegExp(`^case\\.trace\\.jsonl:${c.line}: `));
      expect(t.detail).toMatch(c.match);
    }
  });

  const dir = mkdtempSync(join(tmpdir(), 'iopgt-cat-'));
  const emptyDir = mkdtempSync(join(tmpdir(), 'iopgt-empty-'));
  const runs = new Map<string, { status: number | null; stderr: string; file: string }>();
  // Node start-up dominates each CLI run: spawn them all at once, check each result below.
  beforeAll(async () => {
    await Promise.all(
      CLI_CASES.map(
        (c) =>
          new Promise<void>((done) => {
            const file = join(dir, `${c.id}.trace.jsonl`);
            if (c.text !== undefined) writeFileSync(file, c.text);
            const args = c.args.map((a) => (a === 'FILE' ? file : a === 'DIR' ? emptyDir : a));
            const child = spawn(process.execPath, [CLI, 'replay', ...args], { env: { ...process.env, NO_COLOR: '1', CI: '1' } });
            let stderr = '';
            child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
            child.on('close', (status) => {
              runs.set(c.id, { status, stderr, file });
              done();
            });
          }),
      ),
    );
  });
  it.each(CLI_CASES.map((c) => [c.id, c] as const))('%s: exit status 2 with file and line', (_id, c) => {
    const r = runs.get(c.id)!;
    expect(r.status, r.stderr).toBe(c.exit);
    const stderr = r.stderr.split(r.file).join('FILE').split(emptyDir).join('DIR');
    expect(stderr).toMatch(c.match);
  });
});
