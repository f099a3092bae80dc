import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The directory holding `io_pgtable_alloc.h` (shipped in the package's `include/`): next to
 * this file's directory, or, when a tool bundled this code elsewhere, found through the
 * package's own `exports`.
 */
export function headerDir(): string {
  const local = join(dirname(fileURLToPath(import.meta.url)), '..', 'include');
  if (existsSync(join(local, HEADER))) return local;
  return dirname(createRequire(import.meta.url).resolve(`@io-pgtable/c-allocator/include/${HEADER}`));
}

/** The header's file name. */
export const HEADER = 'io_pgtable_alloc.h';

export interface BuildCOptions {
  /** The compiler (default: `$IO_PGTABLE_CLANG`, else `clang` on PATH). */
  readonly clang?: string;
  /** Optimisation level flag (default `-O2`). */
  readonly optimize?: string;
  /** Extra flags passed before the source, e.g. `-DPOOL_PAGES=64`. */
  readonly flags?: readonly string[];
}

/**
 * The documented compiler invocation: wasm32, no libc (`-nostdlib -ffreestanding`; the
 * header is all the runtime there is), bulk-memory so memset/memcpy become instructions
 * instead of imports, no entry point (a library of callbacks), and the stack first so a
 * stack overflow traps instead of overwriting the allocator's static data. The ABI exports
 * are named by `IOPGT_REGISTER` (export_name), so nothing else needs exporting.
 */
export function clangArgs(input: string, output: string, opts: BuildCOptions = {}): string[] {
  return [
    '--target=wasm32',
    opts.optimize ?? '-O2',
    '-nostdlib',
    '-ffreestanding',
    '-mbulk-memory',
    '-Wall',
    '-Wextra',
    `-I${headerDir()}`,
    ...(opts.flags ?? []),
    '-Wl,--no-entry',
    '-Wl,--stack-first',
    '-Wl,-z,stack-size=65536',
    '-o',
    output,
    input,
  ];
}

function compilerOf(opts: BuildCOptions): string {
  return opts.clang ?? process.env.IO_PGTABLE_CLANG ?? 'clang';
}

/** What to do when the compiler is missing: the one line the tests and the CLI print. */
export const CLANG_HINT =
  "install Debian's clang and lld (`bash tools/setup/clang.sh` as root in this repository, or `sudo apt-get install clang lld`), or set IO_PGTABLE_CLANG to a clang that targets wasm32 and has wasm-ld";

/** The compiler cannot be run, or the C source does not build. */
export class CBuildError extends Error {
  override readonly name = 'CBuildError';
  constructor(
    message: string,
    /** The compiler's own diagnostics, when it ran. */
    readonly stderr = '',
  ) {
    super(message);
  }
}

const probed = new Map<string, string | null>();

/**
 * Null when `clang` can build wasm32 here (compiler and `wasm-ld` present), else one line
 * saying what is missing and how to get it. Probes once per compiler and process by
 * linking an empty module.
 */
export function clangProblem(opts: BuildCOptions = {}): string | null {
  const clang = compilerOf(opts);
  const cached = probed.get(clang);
  if (cached !== undefined) return cached;
  let problem: string | null = null;
  const dir = mkdtempSync(join(tmpdir(), 'iopgt-clang-'));
  try {
    const out = join(dir, 'probe.wasm');
    const r = spawnSync(clang, ['--target=wasm32', '-nostdlib', '-Wl,--no-entry', '-o', out, '-x', 'c', '-'], { input: 'int iopgt_probe;\n', encoding: 'utf8' });
    if (r.error !== undefined) problem = `${clang} not found (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}): ${CLANG_HINT}`;
    else if (r.status !== 0 || !existsSync(out)) {
      const why = /wasm-ld/.test(r.stderr) ? 'wasm-ld (lld) is missing' : `it cannot build wasm32 (${r.stderr.trim().split('\n')[0] ?? `exit ${r.status}`})`;
      problem = `${clang} found but ${why}: ${CLANG_HINT}`;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  probed.set(clang, problem);
  return problem;
}

/**
 * Compile a C allocator to wasm with {@link clangArgs}. Returns the command it ran.
 * @throws CBuildError when the compiler is missing or the source does not compile.
 */
export function buildC(input: string, output: string, opts: BuildCOptions = {}): string[] {
  const problem = clangProblem(opts);
  if (problem !== null) throw new CBuildError(problem);
  if (!existsSync(input)) throw new CBuildError(`${input}: no such file`);
  const args = clangArgs(input, output, opts);
  try {
    execFileSync(compilerOf(opts), args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (e) {
    const stderr = String((e as { stderr?: string }).stderr ?? '');
    throw new CBuildError(`${input} did not compile:\n${stderr.trim()}`, stderr);
  }
  return [compilerOf(opts), ...args];
}
