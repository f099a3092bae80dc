/**
 * The C allocator (packages/c-allocator) as a stack of the fault matrix: the example page
 * pool (examples/c-page-pool/pool.c, compiled to wasm32) over the system allocator. The
 * wasm is built once per process with the project's clang flags; without a wasm32 C
 * compiler the build throws the one-line hint of tools/setup/clang.sh (never a skip).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildC, clangProblem, compileCAllocator, createCAllocator, headerDir, type CAllocatorModule } from '@io-pgtable/c-allocator';
import { systemStack, type Stack, type StackOptions } from './stacks.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** examples/c-page-pool/pool.c from src/ (tsx, vitest) or from the esbuild bundle in node_modules/.cache/reliability. */
function poolSource(): string {
  for (const up of ['../../../examples', '../../../../../examples']) {
    const p = resolve(HERE, up, 'c-page-pool/pool.c');
    if (existsSync(p)) return p;
  }
  throw new Error(`examples/c-page-pool/pool.c not found from ${HERE}`);
}

let mod: CAllocatorModule | undefined;

/** The compiled pool, built on first use (cached by content in the OS temp directory). */
export function cPoolModule(): CAllocatorModule {
  if (mod !== undefined) return mod;
  const problem = clangProblem();
  if (problem !== null) throw new Error(`the c-pool stack needs a wasm32 C compiler (tools/setup/clang.sh installs one): ${problem}`);
  const src = poolSource();
  const hash = createHash('sha256').update(readFileSync(src)).update(readFileSync(join(headerDir(), 'io_pgtable_alloc.h'))).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), 'iopgt-reliability-c');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `pool-${hash}.wasm`);
  if (!existsSync(out)) buildC(src, out);
  return (mod = compileCAllocator(out));
}

/** The C page pool over the (possibly fault-wrapped) system allocator. */
export function cPoolStack(opts: StackOptions = {}): Stack {
  const base = systemStack(opts);
  const c = createCAllocator(cPoolModule(), { backing: base.allocator, name: 'c-pool' });
  return {
    ...base,
    name: 'c-pool',
    allocator: c,
    layers: [c, base.system],
    flushDone: () => c.flushDone(),
    drain: () => {
      c.flushDone();
      c.drain();
    },
  };
}
