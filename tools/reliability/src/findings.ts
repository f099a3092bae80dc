import { MATRIX_STACKS, type FaultKind, type MatrixStackName } from './matrix.js';

/**
 * What the fault matrix finds today, owned outside tools/reliability and reported with a
 * reproduction (issue 14). test/matrix.test.ts requires each listed (stack, fault kind)
 * pair to still fail somewhere, so a fix shows up as a failing assertion asking for the
 * pair to go, and every pair not listed to hold in every run.
 */
export interface KnownFinding {
  kind: FaultKind;
  stacks: readonly MatrixStackName[];
  owner: string;
  what: string;
}

export const KNOWN_FINDINGS: readonly KnownFinding[] = [
  {
    kind: 'alloc-throw',
    stacks: [
      'batched',
      'pool-over-batched',
      'batched-over-pool',
      'secure-share',
      'secure-over-pool-over-batched',
      'reservation',
      'reservation-over-secure-over-pool-over-batched',
      'secure-donate',
      'secure-donate-over-pool-over-batched',
      'reservation-over-pool',
      'reservation-merged-over-pool',
      'batched-partial',
      'c-pool',
    ],
    owner: 'packages/batched, secure-share, reservation, c-allocator',
    what:
      "a backing alloc that throws mid-refill: batched's counts go negative; secure-share strands the pages of a half-taken assign batch (counted cached, on no list); reservation's prepare lets the raw error out of trySubmit; the C pool makes itself unusable and keeps its pages",
  },
  {
    kind: 'free-throw',
    stacks: [
      'pool',
      'batched',
      'pool-over-batched',
      'batched-over-pool',
      'secure-over-pool-over-batched',
      'reservation',
      'reservation-over-secure-over-pool-over-batched',
      'secure-donate-over-pool-over-batched',
      'reservation-over-pool',
      'reservation-merged-over-pool',
      'batched-partial',
      'c-pool',
    ],
    owner: 'packages/page-pool, batched, reservation, c-allocator',
    what:
      "a backing free that throws during drain/flushDone: page-pool forgets the page (and the rest of the spliced batch) before inner.free returns; batched and reservation lose it likewise; the C pool makes itself unusable and keeps its pages",
  },
];

/** The reported finding a failing (stack, fault kind) pair belongs to, if any. */
export function knownFinding(stack: MatrixStackName, kind: FaultKind): KnownFinding | undefined {
  return KNOWN_FINDINGS.find((k) => k.kind === kind && k.stacks.includes(stack));
}

