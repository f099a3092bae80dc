import { describeAllocatorConformance } from '@io-pgtable/conformance';
import { withTokenPool } from '../src/index.js';

// Runs under both flush regimes (the pool declares reuse 'after-flush'); a smaller property
// and long-lived run keep the example quick.
describeAllocatorConformance('token-pool', ({ backing }) => withTokenPool(backing), { propertyOps: 20_000, numRuns: 40 });
