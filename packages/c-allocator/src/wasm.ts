/**
 * The part of the WebAssembly JS API this package uses, typed here: TypeScript declares
 * `WebAssembly` only in the DOM libs, and the public .d.ts must not require them.
 */

/** A compiled WebAssembly module (a `WebAssembly.Module`). */
export interface WasmModule {
  readonly [Symbol.toStringTag]: string;
}

export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

interface WasmApi {
  Module: {
    new (bytes: Uint8Array): WasmModule;
    exports(m: WasmModule): { name: string; kind: string }[];
    imports(m: WasmModule): { module: string; name: string; kind: string }[];
  };
  Instance: new (m: WasmModule, imports: Record<string, Record<string, unknown>>) => { readonly exports: Record<string, unknown> };
  RuntimeError: new (message?: string) => Error;
}

export const wasm: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
