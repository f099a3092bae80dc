export { loadCAllocator, createCAllocator, type CAllocator, type CAllocatorOptions, type CMemory, type CReservation } from './allocator.js';
export { compileCAllocator, type CAllocatorModule, type WasmSource } from './module.js';
export { CAllocatorError, CAllocatorLoadError, type CFault } from './errors.js';
export { ABI_VERSION } from './abi.js';
export type { WasmModule } from './wasm.js';
export { CBuildError, CLANG_HINT, buildC, clangArgs, clangProblem, headerDir, type BuildCOptions } from './build.js';
export { tablesForJob, type CountGeometry, type CountOp } from './count.js';
export { cReservationAdapter, type CReservationAdapter, type CReservationJob } from './reservation.js';
export { stackFromWasm, type CStackDef, type CStackEnv, type CStackInstance, type CStackMetrics } from './stack.js';
