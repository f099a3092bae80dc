import { createSystemAllocator } from '@io-pgtable/core';
import { describeAllocatorConformance } from '../src/index.js';

// The default allocator of core is the bottom of every stack: it must pass everything.
describeAllocatorConformance('system', ({ memory }) => createSystemAllocator({ memory }));
