import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { TraceError, parseTrace, replayTrace } from '@io-pgtable/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ALL_CASES, makeFixture, snapshot, type ApiCase, type CheckCase, type CliCase, type TraceCase } from '../src/catalogue/index.js';
import { CLI_CLASSES, CLI_COMMANDS, NOT_APPLICABLE } from '../src/catalogue/cli-hostile.js';
import { findDoc } from '../src/catalogue/doc-path.js';
import { renderCatalogue, replaceSection } from '../src/catalogue/render.js';

/** The built CLI; IOPGT_CLI runs the catalogue against another build (e.g. one from before a fix). */
const CLI = process.env.IOPGT_CLI ?? resolve(__dirname, '../../cli/dist/bin.js');
const API_CASES = ALL_CASES.filter((c): c is ApiCase => c.surface === 'api');
const TRACE_CASES = ALL_CASES.filter((c): c is TraceCase => c.surface === 'trace');
const CLI_CASES = ALL_CASES.filter((c): c is CliCase => c.surface === 'cli');
const CHECK_CASES = ALL_CASES.filter((c): c is CheckCase => c.surface === 'check');
/** CLI runs at once: node start-up dominates each, but the machine has 2 cores shared by everyone. */
const CLI_PARALLEL = 4;

describe('bad-input catalogue', () => {
  it('has distinct ids and at least 40 cases across the API, the trace format and the CLI', () => {
    const ids = ALL_CASES.map((c) => c.id);
    expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
    expect(ALL_CASES.length).toBeGreaterThanOrEqual(40);
    expect(API_CASES.length).toBeGreaterThanOrEqual(20);
    expect(TRACE_CASES.length).toBeGreaterThanOrEqual(10);
  });

  it('every CLI command has a case of every hostile-input class (or a reason why none can exist)', () => {
    const missing: string[] = [];
    for (const cmd of CLI_COMMANDS) {
      for (const cls of CLI_CLASSES) {
        const has = CLI_CASES.some((c) => c.args[0] === cmd && (c.category ?? 'bad-value') === cls);
        const exempt = NOT_APPLICABLE[cmd]?.[cls] !== undefined;
        if (has === exempt) missing.push(`${cmd} x ${cls}: ${has ? 'has a case but is listed as not applicable' : 'no case'}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('docs/reliability.md holds the table rendered from the whole catalogue (npm run catalogue -- --write)', () => {
    const doc = readFileSync(findDoc(), 'utf8');
    expect(replaceSection(doc, renderCatalogue(ALL_CASES))).toBe(doc);
  });

  it.each(API_CASES.map((c) => [c.id, c] as const))('%s: typed error, state unchanged', (_id, c) => {
    const f = (c.fixture ?? makeFixture)();
    c.prepare?.(f);
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

  it.each(CHECK_CASES.map((c) => [c.id, c] as const))('%s', async (_id, c) => {
    await c.run();
  });

  const root = mkdtempSync(join(tmpdir(), 'iopgt-cat-'));
  interface Run {
    status: number | null;
    stderr: string;
    stdout: string;
    timedOut: boolean;
    /** Peak RSS of the CLI, MiB (only when the case bounds it). */
    rssMiB: number | null;
    /** Paths of `absent` that exist after the run. */
    present: string[];
  }
  const runs = new Map<string, Run>();
  // Writes the child's peak RSS (getrusage, KiB) to the file named by IOPGT_CAT_RSS at exit.
  const RSS_HOOK = 'data:text/javascript,import{writeFileSync}from"node:fs";process.on("exit",()=>writeFileSync(process.env.IOPGT_CAT_RSS,String(process.resourceUsage().maxRSS)))';
  const runOne = (c: CliCase, i: number) =>
    new Promise<void>((done) => {
      const tmp = join(root, String(i));
      mkdirSync(tmp);
      for (const [name, text] of Object.entries(c.files ?? {})) {
        mkdirSync(dirname(join(tmp, name)), { recursive: true });
        writeFileSync(join(tmp, name), text);
      }
      for (const d of c.dirs ?? []) mkdirSync(join(tmp, d), { recursive: true });
      c.setup?.(tmp);
      const sub = (a: string) => a.split('{tmp}').join(tmp);
      const args = c.args.map(sub);
      const rssFile = join(tmp, '.maxrss');
      const out = c.stdoutTo !== undefined ? openSync(sub(c.stdoutTo), 'w') : 'pipe';
      const child = spawn(process.execPath, [...(c.maxRssMiB !== undefined ? ['--import', RSS_HOOK] : []), CLI, ...args], {
        cwd: tmp,
        env: { ...process.env, NO_COLOR: '1', CI: '1', IOPGT_CAT_RSS: rssFile },
        stdio: ['pipe', out, 'pipe'],
      });
      if (typeof out === 'number') closeSync(out);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, c.timeoutMs ?? 60_000);
      const stdin = child.stdin!;
      let stderr = '';
      let stdout = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      let seen = 0;
      child.stdout?.on('data', (d: Buffer) => {
        stdout += d.toString();
        seen += d.length;
        if (c.closeStdoutAfter !== undefined && seen >= c.closeStdoutAfter) child.stdout!.destroy();
      });
      stdin.on('error', () => {});
      if (c.stdinFill) {
        const piece = Buffer.from(c.stdinFill.fill.repeat(Math.ceil(65536 / c.stdinFill.fill.length)).slice(0, 65536));
        let left = c.stdinFill.bytes;
        let open = true;
        stdin.on('close', () => (open = false));
        const pump = (): void => {
          while (open && left > 0) {
            const n = Math.min(left, piece.length);
            left -= n;
            if (!stdin.write(n === piece.length ? piece : piece.subarray(0, n))) return void stdin.once('drain', pump);
          }
          if (open) stdin.end();
        };
        pump();
      } else stdin.end(c.stdin ?? '');
      child.on('close', (status) => {
        clearTimeout(timer);
        const rssKiB = c.maxRssMiB !== undefined && existsSync(rssFile) ? Number(readFileSync(rssFile, 'utf8')) : null;
        runs.set(c.id, {
          status,
          stderr: stderr.split(tmp).join('{tmp}'),
          stdout: stdout.split(tmp).join('{tmp}'),
          timedOut,
          rssMiB: rssKiB === null ? null : rssKiB / 1024,
          present: (c.absent ?? []).filter((p) => existsSync(sub(p))),
        });
        done();
      });
    });
  beforeAll(async () => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < CLI_CASES.length) {
        const i = next++;
        await runOne(CLI_CASES[i]!, i);
      }
    };
    await Promise.all(Array.from({ length: CLI_PARALLEL }, worker));
  }, 600_000);
  it.each(CLI_CASES.map((c) => [c.id, c] as const))('%s: exit status and message', (_id, c) => {
    const r = runs.get(c.id)!;
    expect(r.timedOut, 'the run must end on its own (no hang)').toBe(false);
    expect(r.status, r.stderr).toBe(c.exit);
    expect(r.stderr).toMatch(c.match);
    if (c.stdout) expect(r.stdout).toMatch(c.stdout);
    // Whatever the status: a message, never a stack trace.
    expect(r.stderr, 'a message, not a stack trace').not.toMatch(/^\s+at .+[(:]\d+/m);
    expect(r.present, 'no output file may claim success').toEqual([]);
  });
  const linesOf = (c: CliCase): number | undefined => c.stderrLines ?? (c.exit === 2 ? 1 : undefined);
  it.each(CLI_CASES.filter((c) => linesOf(c) !== undefined).map((c) => [c.id, c] as const))('%s: one message per problem on stderr', (_id, c) => {
    const r = runs.get(c.id)!;
    expect(r.stderr.split('\n').filter((l) => l !== '')).toHaveLength(linesOf(c)!);
  });
  it.each(CLI_CASES.filter((c) => c.maxRssMiB !== undefined).map((c) => [c.id, c] as const))('%s: peak RSS bounded', (_id, c) => {
    expect(runs.get(c.id)!.rssMiB).toBeLessThan(c.maxRssMiB!);
  });
});
