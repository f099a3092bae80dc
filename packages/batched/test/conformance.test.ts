import { describeAllocatorConformance } from '@io-pgtable/conformance';
import { withPagePool } from '@io-pgtable/page-pool';
import { withBatching } from '../src/index.js';
import { stackView } from './helpers.js';

describeAllocatorConformance('batched (all-or-nothing, 8)', ({ backing }) => withBatching(backing, { batch: 8 }));
describeAllocatorConformance('batched (partial, 5)', ({ backing }) => withBatching(backing, { batch: 5, mode: 'partial' }));
describeAllocatorConformance('batched(pool(system))', ({ backing }) => {
  const pool = withPagePool(backing);
  return stackView(withBatching(pool, { batch: 8 }), pool);
});
describeAllocatorConformance('pool(batched(system))', ({ backing }) => {
  const bat = withBatching(backing, { batch: 8, mode: 'partial' });
  return stackView(withPagePool(bat, { zero: 'on-free', highWatermark: 8 }), bat);
});
