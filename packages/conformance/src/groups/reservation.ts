import type { TableAllocator } from '@io-pgtable/allocator-api';
import type { AllocatorFactory, ConformanceOptions } from '../options.js';
import type { ConformanceCheck } from './group.js';

export function reservationChecks<A extends TableAllocator>(factory: AllocatorFactory<A>, options: ConformanceOptions<A>): ConformanceCheck[] {
  if (options.reservation === undefined) return [];
  void factory;
  return [];
}
