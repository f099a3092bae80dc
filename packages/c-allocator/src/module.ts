import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ABI_VERSION, HOST_IMPORTS, IMPORT_MODULE, REQUIRED_EXPORTS } from './abi.js';
import { CAllocatorLoadError } from './errors.js';
import { wasm, type WasmModule } from './wasm.js';

/** Where a C allocator's wasm comes from: a path or file URL, the bytes, or a compiled module. */
export type WasmSource = string | URL | ArrayBuffer | ArrayBufferView | WasmModule;

/** A compiled C allocator module: compile once, instantiate one allocator per {@link createCAllocator}. */
export interface CAllocatorModule {
  readonly module: WasmModule;
  /** Where it came from, for messages: the path, or `<bytes>`. */
  readonly source: string;
}

const compiled = new Map<string, CAllocatorModule>();

function describe(src: WasmSource): string {
  if (typeof src === 'string') return src;
  if (src instanceof URL) return src.protocol === 'file:' ? fileURLToPath(src) : src.href;
  return '<bytes>';
}

function bytesOf(src: Exclude<WasmSource, WasmModule>, where: string): Uint8Array {
  if (typeof src === 'string' || src instanceof URL) {
    try {
      return readFileSync(src);
    } catch (e) {
      throw new CAllocatorLoadError(where, (e as Error).message);
    }
  }
  if (src instanceof ArrayBuffer) return new Uint8Array(src);
  return new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
}

/**
 * Compile (synchronously) and check a C allocator module: it must export the ABI that
 * `IOPGT_REGISTER(ops)` generates and import nothing but the host calls of
 * `io_pgtable_alloc.h`. A path is compiled once per process.
 *
 * @throws CAllocatorLoadError naming what is wrong (not wasm, a missing export, an
 *   unknown import such as `env.memcpy`).
 */
export function compileCAllocator(src: WasmSource | CAllocatorModule): CAllocatorModule {
  if (typeof src === 'object' && 'module' in src && src.module instanceof wasm.Module) return src;
  const where = describe(src as WasmSource);
  const cacheKey = typeof src === 'string' || src instanceof URL ? where : undefined;
  const hit = cacheKey !== undefined ? compiled.get(cacheKey) : undefined;
  if (hit !== undefined) return hit;
  let module: WasmModule;
  if (src instanceof wasm.Module) module = src;
  else {
    try {
      module = new wasm.Module(bytesOf(src as Exclude<WasmSource, WasmModule>, where));
    } catch (e) {
      if (e instanceof CAllocatorLoadError) throw e;
      throw new CAllocatorLoadError(where, `not a valid WebAssembly module (${(e as Error).message})`);
    }
  }
  const exported = new Set(wasm.Module.exports(module).map((e: { name: string }) => e.name));
  const absent = REQUIRED_EXPORTS.filter((n) => !exported.has(n));
  if (absent.length > 0) {
    throw new CAllocatorLoadError(
      where,
      `it does not export ${absent.join(', ')}: include io_pgtable_alloc.h and end the source with IOPGT_REGISTER(ops)`,
    );
  }
  const known = new Set<string>(HOST_IMPORTS);
  const unknown = wasm.Module.imports(module).filter((i) => i.module !== IMPORT_MODULE || !known.has(i.name));
  if (unknown.length > 0) {
    const names = unknown.map((i) => `${i.module}.${i.name}`).join(', ');
    throw new CAllocatorLoadError(
      where,
      `it imports ${names}, which the host does not provide: there is no libc, only the calls of io_pgtable_alloc.h (build with -mbulk-memory so that memset/memcpy become instructions)`,
    );
  }
  const result: CAllocatorModule = Object.freeze({ module, source: where });
  if (cacheKey !== undefined) compiled.set(cacheKey, result);
  return result;
}

/** The ABI version check, once an instance exists (the version is a function, not a constant). */
export function checkAbiVersion(where: string, version: number): void {
  if (version !== ABI_VERSION) {
    throw new CAllocatorLoadError(where, `it was built against io_pgtable_alloc.h ABI version ${version}; this loader speaks version ${ABI_VERSION}`);
  }
}
