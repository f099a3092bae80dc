import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, TERMINAL_CONTROL, VECTORS, cli, tempDir } from './helpers';

const traces = readdirSync(VECTORS).filter((f) => f.endsWith('.trace.jsonl')).sort();
const nonEmpty = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

describe('io-pgtable replay', () => {
  it('finds the 47 public vectors', () => {
    expect(traces).toHaveLength(47);
  });

  it('--check reproduces all 47 kernel vectors', () => {
    const r = cli(['replay', '--check', VECTORS]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const oks = r.stdout.split('\n').filter((l) => l.startsWith('ok '));
    expect(oks).toHaveLength(47);
    expect(r.stdout).toMatch(/^47 passed, 0 failed$/m);
    expect(r.stdout).toMatch(/^replay: 47 traces: 0 written, 47 matched, 0 differed, 0 failed$/m);
    expect(r.stdout).not.toMatch(TERMINAL_CONTROL);
  });

  it('--check --json reports every file', () => {
    const r = cli(['replay', '--check', '--json', VECTORS]);
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.passed).toBe(47);
    expect(j.failed).toBe(0);
    expect(j.files.map((f: { status: string }) => f.status)).toEqual(Array(47).fill('ok'));
  });

  it('reads a trace on stdin and writes the expected lines on stdout', () => {
    const name = '001_4k_48_48_noncoh';
    const r = cli(['replay'], { input: readFileSync(join(VECTORS, `${name}.trace.jsonl`), 'utf8') });
    expect(r.status).toBe(0);
    const got = nonEmpty(r.stdout).map((l) => JSON.parse(l));
    const want = nonEmpty(readFileSync(join(VECTORS, `${name}.expected.jsonl`), 'utf8')).map((l) => JSON.parse(l));
    expect(got).toEqual(want);
  });

  it('--out-dir writes NAME.result.jsonl equal to the expected output', () => {
    const dir = tempDir();
    const pick = [traces[0]!, traces[39]!, traces[46]!].map((t) => join(VECTORS, t));
    const r = cli(['replay', '--out-dir', dir, ...pick]);
    expect(r.status).toBe(0);
    for (const t of [traces[0]!, traces[39]!, traces[46]!]) {
      const name = t.replace('.trace.jsonl', '');
      const got = nonEmpty(readFileSync(join(dir, `${name}.result.jsonl`), 'utf8')).map((l) => JSON.parse(l));
      const want = nonEmpty(readFileSync(join(VECTORS, `${name}.expected.jsonl`), 'utf8')).map((l) => JSON.parse(l));
      expect(got).toEqual(want);
    }
    expect(readdirSync(dir).sort()).toEqual(['000_sanity_4k_48_48.result.jsonl', '039_init_enomem.result.jsonl', '046_init_s1_32_16k.result.jsonl']);
  });

  it('--check prints the first differing line and exits 1', () => {
    const dir = tempDir();
    const name = '000_sanity_4k_48_48';
    writeFileSync(join(dir, `${name}.trace.jsonl`), readFileSync(join(VECTORS, `${name}.trace.jsonl`)));
    // Corrupt the expected output of the third op (line 4): one descriptor value differs.
    const exp = readFileSync(join(VECTORS, `${name}.expected.jsonl`), 'utf8').split('\n');
    const before = exp[3]!;
    const m = /"mapped":"(0x[0-9a-f]+)"|"phys":"(0x[0-9a-f]+)"|"unmapped":"(0x[0-9a-f]+)"/.exec(before)!;
    exp[3] = before.replace(m[0], m[0].replace(/"0x[0-9a-f]+"$/, '"0xdead000"'));
    writeFileSync(join(dir, `${name}.expected.jsonl`), exp.join('\n'));
    const r = cli(['replay', '--check', join(dir, `${name}.trace.jsonl`)]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain(`FAIL ${name}: first difference at line 4`);
    expect(r.stdout).toContain('expected "0xdead000"');
    expect(r.stdout).toMatch(/^ {2}expected: \{/m);
    expect(r.stdout).toMatch(/^0 passed, 1 failed$/m);
  });

  it('a malformed trace on stdin gives bad-trace with the line and exit 2', () => {
    const trace = '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48}\n{"op":"iova_to_phys","iova":"0x0"}\n{"op":"map","iova":"0x1000","paddr":"0x1000","pgsize":"0x1000"}\n';
    const r = cli(['replay'], { input: trace });
    expect(r.status).toBe(2);
    expect(JSON.parse(r.stdout)).toEqual({ error: 'bad-trace: <stdin>:3: missing required key "prot"' });
    expect(r.stderr).toContain('<stdin>:3: bad-trace: missing required key "prot"');
  });

  it('a malformed trace file is named with its line, exit 2, and the others still run', () => {
    const dir = tempDir();
    const bad = join(dir, 'broken.trace.jsonl');
    writeFileSync(bad, '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48}\n\n{"op":"map",\n');
    const r = cli(['replay', '--check', join(VECTORS, traces[0]!), bad]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`${bad}:3: bad-trace: not valid JSON`);
    expect(r.stdout).toMatch(/^ok {3}000_sanity_4k_48_48/m);
    expect(r.stdout).toMatch(/^1 passed, 1 failed$/m);
  });

  it('a missing file is a usage error naming the file', () => {
    const r = cli(['replay', '--check', '/nonexistent/x.trace.jsonl']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('/nonexistent/x.trace.jsonl: cannot read: ENOENT');
  });

  it('several files without --out-dir or --check is a usage error', () => {
    const r = cli(['replay', join(VECTORS, traces[0]!), join(VECTORS, traces[1]!)]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('several traces need --out-dir DIR or --check');
  });

  it('--help describes the command', () => {
    const r = cli(['replay', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('io-pgtable replay --check FILE|DIR...');
    expect(r.stdout).toContain('--out-dir DIR');
  });

  const HDR = '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48,"dumpEvery":false}';
  const MAP = (i: number) => `{"op":"map","iova":"0x${(i * 0x1000).toString(16)}","paddr":"0x${(0x10_0000 + i * 0x1000).toString(16)}","pgsize":"0x1000","prot":["read"]}`;

  it('--out-dir with a malformed trace, a missing file and an empty directory in the middle still writes every good result and sums up', () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const names = ['000_sanity_4k_48_48', '039_init_enomem', '046_init_s1_32_16k'];
    const bad = join(dir, 'bad.trace.jsonl');
    writeFileSync(bad, `${HDR}\n${MAP(1)}\n{"op":"map",\n`);
    const empty = join(dir, 'empty');
    mkdirSync(empty);
    const vec = (n: string) => join(VECTORS, `${n}.trace.jsonl`);
    const r = cli(['replay', '--out-dir', out, vec(names[0]!), bad, vec(names[1]!), join(dir, 'missing.trace.jsonl'), empty, vec(names[2]!)]);
    expect(r.status).toBe(2);
    expect(r.stdout).toMatch(/^replay: 6 traces: 3 written, 0 matched, 0 differed, 3 failed$/m);
    const err = r.stderr.split('\n').filter((l) => l !== '');
    expect(err).toHaveLength(3);
    expect(err[0]).toMatch(new RegExp(`^${bad}:3: bad-trace: not valid JSON \\(`));
    expect(err[1]).toBe(`${join(dir, 'missing.trace.jsonl')}: cannot read: ENOENT`);
    expect(err[2]).toBe(`${empty}: directory holds no *.trace.jsonl files`);
    for (const n of names) {
      expect(r.stdout).toContain(`wrote ${join(out, `${n}.result.jsonl`)}`);
      const got = nonEmpty(readFileSync(join(out, `${n}.result.jsonl`), 'utf8')).map((l) => JSON.parse(l));
      const want = nonEmpty(readFileSync(join(VECTORS, `${n}.expected.jsonl`), 'utf8')).map((l) => JSON.parse(l));
      expect(got).toEqual(want);
    }
    // The malformed trace's result is the format's one bad-trace line; no temporary files stay.
    const badResult = readFileSync(join(out, 'bad.result.jsonl'), 'utf8');
    expect(badResult.split('\n')).toHaveLength(2);
    expect(JSON.parse(badResult).error).toMatch(new RegExp(`^bad-trace: ${bad}:3: not valid JSON`));
    expect(readdirSync(out).sort()).toEqual([...names.map((n) => `${n}.result.jsonl`), 'bad.result.jsonl'].sort());
  });

  it('-o is --out-dir; an --out-dir that is a file is a usage error before anything runs', () => {
    const dir = tempDir();
    const r = cli(['replay', '-o', join(dir, 'o'), join(VECTORS, traces[0]!)]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^replay: 1 traces: 1 written, 0 matched, 0 differed, 0 failed$/m);
    const file = join(dir, 'o', `${traces[0]!.replace('.trace.jsonl', '')}.result.jsonl`);
    const again = cli(['replay', '-o', file, join(VECTORS, traces[0]!)]);
    expect(again.status).toBe(2);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe(`io-pgtable replay: --out-dir ${file}: cannot create directory: EEXIST (a file is in the way: not a directory)\n`);
  });

  it('streams stdin: each line is answered before the next is written', async () => {
    const child = spawn(process.execPath, [BIN, 'replay'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let buf = '';
    let waiter: (() => void) | null = null;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
      waiter?.();
    });
    const until = (n: number) => new Promise<void>((ok) => (lines.length >= n ? ok() : (waiter = () => lines.length >= n && ok())));
    // The CLI holds the first MiB of output (so a short trace with a bad line prints only the
    // bad-trace line): feed past it (40,000 answers of ~35 characters), then check each
    // further op is answered while stdin is still open.
    const N = 40_000;
    child.stdin.write(HDR + '\n');
    for (let i = 0; i < N; i++) child.stdin.write(`{"op":"iova_to_phys","iova":"0x${i.toString(16)}000"}\n`);
    await until(N + 1);
    expect(lines).toHaveLength(N + 1);
    for (let k = 1; k <= 3; k++) {
      child.stdin.write(MAP(k) + '\n');
      await until(N + 1 + k);
      expect(JSON.parse(lines[N + k]!)).toMatchObject({ ret: 0, mapped: '0x1000' });
    }
    child.stdin.end();
    const status = await new Promise((ok) => child.on('close', ok));
    expect(status).toBe(0);
    expect(Object.keys(JSON.parse(lines.at(-1)!))).toEqual(['final']);
  });

  it('--help says dumpEvery output is quadratic and that traces stream', () => {
    const r = cli(['replay', '--help']);
    expect(r.stdout).toContain('-o, --out-dir DIR');
    expect(r.stdout).toMatch(/dumpEvery[^]*quadratically/);
    expect(r.stdout).toMatch(/memory does not grow\s+with the trace length/);
  });

  it('tables above the OAS replay in kernel mode, several in one run with a failing trace in the middle', () => {
    const dir = tempDir();
    const traces = {
      'above-4k-32-32': { format: 'ARM_64_LPAE_S1', pgsizeBitmap: '0x40201000', ias: 32, oas: 32, allocBase: '0x100000000', iova: '0x1000' },
      'above-64k-48-48': { format: 'ARM_64_LPAE_S1', pgsizeBitmap: '0x20010000', ias: 48, oas: 48, allocBase: '0x8000000000000', iova: '0x10000' },
      'past-2p53': { format: 'ARM_64_LPAE_S1', pgsizeBitmap: '0x40201000', ias: 48, oas: 48, allocBase: '0x20000000000000', iova: '0x1000' },
      'above-ttbr1-48-40': { format: 'ARM_64_LPAE_S1', pgsizeBitmap: '0x40201000', ias: 48, oas: 40, quirks: ['ARM_TTBR1'], allocBase: '0x10000000000', iova: '0xffff000000001000' },
    };
    const files: string[] = [];
    for (const [name, { iova, ...header }] of Object.entries(traces)) {
      const pgsize = header.pgsizeBitmap === '0x20010000' ? '0x10000' : '0x1000';
      const ops = [{ op: 'map', iova, paddr: pgsize, pgsize, prot: ['read', 'write'] }, { op: 'iova_to_phys', iova }, { op: 'unmap', iova, pgsize }, { op: 'free' }];
      writeFileSync(join(dir, `${name}.trace.jsonl`), [{ ...header, dumpEvery: false }, ...ops].map((o) => JSON.stringify(o)).join('\n') + '\n');
      files.push(join(dir, `${name}.trace.jsonl`));
    }
    const out = join(dir, 'out');
    const r = cli(['replay', '--out-dir', out, ...files]);
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(`${join(dir, 'past-2p53.trace.jsonl')}:1: bad-trace: allocBase 0x20000000000000 with allocLimit 0x40000000 reaches past 2^53, the largest physical address the model represents exactly\n`);
    expect(r.stdout).toMatch(/^replay: 4 traces: 3 written, 0 matched, 0 differed, 1 failed$/m);
    for (const [name, t] of Object.entries(traces)) {
      if (name === 'past-2p53') continue;
      const lines = nonEmpty(readFileSync(join(out, `${name}.result.jsonl`), 'utf8')).map((l) => JSON.parse(l));
      expect(lines).toHaveLength(6);
      // The PGD is the first allocation, at allocBase, above 2^oas: accepted, as the kernel does.
      expect(lines[0].internal.pgd).toBe(t.allocBase);
      expect(BigInt(t.allocBase) >= 1n << BigInt(t.oas)).toBe(true);
      expect(lines[1]).toMatchObject({ ret: 0 });
      expect(lines[2].ret).toBe(0);
      expect(BigInt(lines[2].phys)).toBe(BigInt(t.pgsizeBitmap === '0x20010000' ? '0x10000' : '0x1000'));
      expect(lines[3]).toMatchObject({ ret: 0 });
      expect(lines[5]).toEqual({ final: { tables: {} } });
    }
    expect(JSON.parse(readFileSync(join(out, 'past-2p53.result.jsonl'), 'utf8')).error).toMatch(/^bad-trace: .*past-2p53\.trace\.jsonl:1: allocBase 0x20000000000000 /);
  });
});

