import { describeAllocatorConformance } from '@io-pgtable/conformance';
import { withPagePool } from '../src/index.js';

// The composed stacks (pool over batched and batched over pool) run in
// @io-pgtable/batched's conformance test: batched depends on this package, not the reverse.
describeAllocatorConformance('page-pool (zero on-alloc)', ({ backing }) => withPagePool(backing));
describeAllocatorConformance('page-pool (zero on-free, refilled, high 4)', ({ backing }) => {
  const pool = withPagePool(backing, { zero: 'on-free', sizes: [64, 4096], lowWatermark: 2, highWatermark: 4 });
  pool.refill();
  return pool;
});
describeAllocatorConformance('page-pool (high 0: every free goes back)', ({ backing }) => withPagePool(backing, { highWatermark: 0 }));
