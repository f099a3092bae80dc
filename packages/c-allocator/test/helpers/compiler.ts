/**
 * Compiles C sources for the tests. When clang/wasm-ld are missing the test file fails
 * at collection with ONE line saying what is missing and how to get it (tools/setup/clang.sh
 * installs them in CI): a C test that cannot compile must not pass by skipping.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildC, clangProblem, compileCAllocator, headerDir, type CAllocatorModule } from '../../src/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
export const EXAMPLES = resolve(here, '../../../../examples');
export const FIXTURES = resolve(here, '../fixtures');
const outDir = join(tmpdir(), `iopgt-c-allocator-tests-${process.pid}`);

/** Build `file` (absolute, or relative to examples/) to wasm once per content; returns the .wasm path. */
export function wasmOf(file: string, flags: readonly string[] = []): string {
  const problem = clangProblem();
  if (problem !== null) throw new Error(`C allocator tests need a wasm32 C compiler: ${problem}`);
  const src = resolve(EXAMPLES, file);
  mkdirSync(outDir, { recursive: true });
  const hash = createHash('sha256').update(readFileSync(src)).update(readFileSync(join(headerDir(), 'io_pgtable_alloc.h'))).update(flags.join(' ')).digest('hex').slice(0, 12);
  const out = join(outDir, `${basename(src, '.c')}-${hash}.wasm`);
  if (!existsSync(out)) buildC(src, out, { flags });
  return out;
}

/** {@link wasmOf}, compiled as a module. */
export function moduleOf(file: string, flags: readonly string[] = []): CAllocatorModule {
  return compileCAllocator(wasmOf(file, flags));
}
