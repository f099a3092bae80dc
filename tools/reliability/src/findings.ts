import type { FaultKind, MatrixStackName } from './matrix.js';

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

/** None today: every (stack, fault kind) pair of the matrix holds. */
export const KNOWN_FINDINGS: readonly KnownFinding[] = [];

/** The reported finding a failing (stack, fault kind) pair belongs to, if any. */
export function knownFinding(stack: MatrixStackName, kind: FaultKind): KnownFinding | undefined {
  return KNOWN_FINDINGS.find((k) => k.kind === kind && k.stacks.includes(stack));
}

