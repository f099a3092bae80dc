export { withPagePool } from './pool.js';
export type { PagePool, PagePoolCounters, PagePoolOptions, PoolZeroPolicy } from './types.js';
