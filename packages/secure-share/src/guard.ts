import { AllocatorMisuseError } from '@io-pgtable/allocator-api';
import type { AccessGuard, AccessKind, Accessor } from '@io-pgtable/core';
import { ScmPerm, type ScmMock } from './scm-mock.js';

/** Anything with core's single guard slot (`PhysMemory.guard`). */
export interface GuardSlot {
  guard: AccessGuard | null;
}

/** Runs several guards in installation order; the first that throws wins. */
class GuardChain implements AccessGuard {
  readonly guards: AccessGuard[] = [];
  check(kind: AccessKind, paddr: number, size: number, who: Accessor): void {
    const gs = this.guards;
    for (let i = 0; i < gs.length; i++) gs[i]!.check(kind, paddr, size, who);
  }
}

/**
 * Add `guard` to the memory's guard slot without displacing one already there: core has
 * one slot, and access control must compose with test probes and other models. Returns
 * a function that removes exactly this guard again.
 */
export function installGuard(slot: GuardSlot, guard: AccessGuard): () => void {
  let chain: GuardChain;
  if (slot.guard instanceof GuardChain) {
    chain = slot.guard;
  } else {
    chain = new GuardChain();
    if (slot.guard !== null) chain.guards.push(slot.guard);
    slot.guard = chain;
  }
  chain.guards.push(guard);
  return () => {
    const i = chain.guards.indexOf(guard);
    if (i >= 0) chain.guards.splice(i, 1);
  };
}

/** One CPU access that the host's permissions did not allow. */
export interface AccessViolation {
  readonly kind: AccessKind;
  readonly paddr: number;
  readonly size: number;
  readonly who: Accessor;
  /** Base of the first page that denied the access. */
  readonly page: number;
  /** The host's permission bits on that page (0 = not an owner, or unknown state). */
  readonly hlosPerm: number;
}

/** A CPU write, zeroing or cache maintenance hit a page the host may not touch that way. */
export class AccessViolationError extends AllocatorMisuseError {
  constructor(
    source: string,
    readonly violation: AccessViolation,
  ) {
    super(
      source,
      'access-violation',
      `${violation.who} ${violation.kind} of ${violation.size} bytes at 0x${violation.paddr.toString(16)}: page 0x${violation.page.toString(16)} grants HLOS perm ${violation.hlosPerm}`,
      violation.paddr,
    );
  }
}

/** The access-control model attached to one memory for one monitor. */
export interface AccessControl extends AccessGuard {
  /** Every violation so far, oldest first. */
  readonly violations: readonly AccessViolation[];
  /** Remove the guard from the memory. */
  detach(): void;
}

/** Writes and zeroing need WRITE; cache maintenance and reads need the page mapped (READ). */
function needFor(kind: AccessKind): number {
  return kind === 'write' || kind === 'zero' ? ScmPerm.WRITE : ScmPerm.READ;
}

const attached = new WeakMap<GuardSlot, Map<ScmMock, AccessControl>>();

/**
 * Make CPU accesses to `memory` obey the host's permissions in `scm`: every write, zero,
 * cache clean or read by the page-table code or an allocator that the page's HLOS
 * permissions forbid is logged and thrown as {@link AccessViolationError} (rule
 * `access-violation`) before memory changes. Device (IOMMU) accesses are not CPU
 * accesses and are not checked. Idempotent per (memory, scm) pair.
 */
export function attachAccessControl(memory: GuardSlot, scm: ScmMock): AccessControl {
  let perScm = attached.get(memory);
  if (perScm === undefined) attached.set(memory, (perScm = new Map()));
  const existing = perScm.get(scm);
  if (existing !== undefined) return existing;

  const violations: AccessViolation[] = [];
  let remove: (() => void) | null = null;
  const control: AccessControl = {
    violations,
    check(kind, paddr, size, who) {
      if (who === 'device') return;
      const page = scm.firstDenied(paddr, size, needFor(kind));
      if (page < 0) return;
      const v: AccessViolation = Object.freeze({ kind, paddr, size, who, page, hlosPerm: scm.stateAt(page).hlosPerm });
      violations.push(v);
      throw new AccessViolationError('access-control', v);
    },
    detach() {
      remove?.();
      remove = null;
      perScm.delete(scm);
    },
  };
  remove = installGuard(memory, control);
  perScm.set(scm, control);
  return control;
}
