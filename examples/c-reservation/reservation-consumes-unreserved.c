// SPDX-License-Identifier: MIT
/*
 * Deliberately broken: reservation.c that, once a job's reserved pages run out in the run
 * phase, takes an unreserved page from the backing store inside the dma-fence signalling
 * path (where a kernel allocation may sleep or deadlock). The conformance suite must
 * reject it with rule run-phase-backing-call.
 */
#define BROKEN_CONSUME_UNRESERVED 1
#include "reservation.c"
