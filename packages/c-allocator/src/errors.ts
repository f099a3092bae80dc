import { AllocatorFaultError, type AllocatorRule } from '@io-pgtable/allocator-api';

/**
 * What went wrong on the C side, more precisely than the contract rule:
 *  - `trap`: the wasm code trapped (`unreachable`, division by zero, a bad indirect call,
 *    stack overflow);
 *  - `out-of-bounds`: a load or store outside the module's linear memory;
 *  - `assert`: an `IOPGT_ASSERT` failed;
 *  - `bad-return`: a returned address breaks the contract (unaligned, above 2^52, not in
 *    a page the allocator holds);
 *  - `bad-call`: a host call with bad arguments (a size that is not a power of two, a
 *    range outside the allocator's pages, a free of a block it does not hold);
 *  - `unusable`: a call after an earlier error left the C state unknown.
 */
export type CFault = 'trap' | 'out-of-bounds' | 'assert' | 'bad-return' | 'bad-call' | 'unusable';

/**
 * An error raised by C allocator code, as a typed allocator fault: the message starts
 * `[iopgt] [<allocator>] <rule>:` like every contract error, and names the ABI call
 * (`iopgt_alloc`, `iopgt_free`, ...) it happened in.
 */
export class CAllocatorError extends AllocatorFaultError {
  constructor(
    allocator: string,
    rule: AllocatorRule,
    readonly fault: CFault,
    /** The ABI call the error happened in, e.g. `alloc`, `free`, `flush_done`. */
    readonly call: string,
    message: string,
    paddr?: number,
  ) {
    super(allocator, rule, `${message} (C ${fault} in ${call})`, paddr);
  }
}

/**
 * A wasm module that cannot be loaded as a C allocator: not wasm, built against another
 * header version, or importing something the host does not provide (such as libc).
 */
export class CAllocatorLoadError extends Error {
  override readonly name = 'CAllocatorLoadError';
  constructor(
    /** Where the module came from (a path, or `<bytes>`). */
    readonly source: string,
    message: string,
  ) {
    super(`[iopgt] [c-allocator] cannot load ${source}: ${message}`);
  }
}
