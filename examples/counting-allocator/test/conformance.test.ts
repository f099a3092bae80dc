import { describeAllocatorConformance } from '@io-pgtable/conformance';
import { withCounting } from '../src/index.js';
describeAllocatorConformance('counting', ({ backing }) => withCounting(backing));
