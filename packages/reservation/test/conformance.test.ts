import { describeAllocatorConformance } from '@io-pgtable/conformance';
import { reservationConformanceAdapter, withReservation, type ReservationAllocator } from '../src/index.js';

// Every map of the suite goes through prepare -> run -> release. The `contract` group
// calls alloc directly, outside any operation, which this allocator refuses by design
// (alloc-outside-op, requirement 4); the suite documents that reservation allocators skip
// it and checks the same rules through page tables in the `tables` group.
describeAllocatorConformance<ReservationAllocator>('reservation (free policy backing)', (env) => withReservation(env.backing), {
  reservation: reservationConformanceAdapter(),
  skip: ['contract'],
});
describeAllocatorConformance<ReservationAllocator>(
  'reservation (free policy reservation, admission 64, markUnusable)',
  (env) => withReservation(env.backing, { freePolicy: 'reservation', markUnusable: true }),
  { reservation: reservationConformanceAdapter({ admissionLimit: 64 }), skip: ['contract'] },
);
