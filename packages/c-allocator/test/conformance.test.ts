import { describeAllocatorConformance } from '@io-pgtable/conformance';
import { cReservationAdapter, createCAllocator } from '../src/index.js';
import { moduleOf } from './helpers/compiler.js';

// The C examples, compiled with the documented clang invocation, through the whole suite.
const pool = moduleOf('c-page-pool/pool.c');
describeAllocatorConformance('c-pool (examples/c-page-pool/pool.c)', ({ backing }) => createCAllocator(pool, { backing }));

// Panthor-style two-phase reservation: the `contract` group calls alloc outside any job
// directly, which this allocator serves from the backing store, so it runs too.
const reservation = moduleOf('c-reservation/reservation.c');
describeAllocatorConformance('c-reservation (examples/c-reservation/reservation.c)', ({ backing }) => createCAllocator(reservation, { backing }), {
  reservation: cReservationAdapter(),
});
