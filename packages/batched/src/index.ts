export { withBatching, type BatchMode, type BatchedAllocator, type BatchedCounters, type BatchingOptions } from './batched.js';
