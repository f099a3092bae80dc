import { AllocatorMisuseError } from '@io-pgtable/allocator-api';
import type { AccessGuard, AccessKind, Accessor } from '@io-pgtable/core';
import { ScmPerm, type ScmMock } from './scm-mock.js';

/**
 * A memory that takes guards for good: core's `PhysMemory.addGuard`, which returns the
 * only function that removes the guard again.
 */
export interface GuardHost {
  addGuard(guard: AccessGuard): () => void;
}

/**
 * Add `guard` to the memory's guards without displacing any other (core's open
 * `memory.guard` slot, probes, other models). Returns the function that removes exactly
 * this guard; nothing else can.
 */
export function installGuard(memory: GuardHost, guard: AccessGuard): () => void {
  return memory.addGuard(guard);
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

/** A CPU write, zeroing, cache maintenance, read or release hit a page the host may not touch that way. */
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

/** What anyone may see of the access control on one memory for one monitor: its findings. */
export interface AccessControl {
  /** Every violation so far, oldest first (a copy: the log cannot be edited). */
  readonly violations: readonly AccessViolation[];
}

/** One attachment of access control: its own detach capability and the shared findings. */
export interface AccessControlHandle {
  readonly control: AccessControl;
  /**
   * Drop this attachment. The guard leaves the memory only when every attachment to the
   * (memory, monitor) pair has been dropped, so a caller can never detach the access
   * control someone else (a secure-share allocator) relies on.
   */
  detach(): void;
}

/**
 * Writes and zeroing need WRITE; cache maintenance and reads need the page mapped (READ);
 * handing a page back for reuse (`release`) needs the host to own it outright (RWX).
 */
function needFor(kind: AccessKind): number {
  if (kind === 'write' || kind === 'zero') return ScmPerm.WRITE;
  if (kind === 'release') return ScmPerm.RWX;
  return ScmPerm.READ;
}

interface Attached {
  readonly control: AccessControl;
  refs: number;
  remove: () => void;
}

const attached = new WeakMap<GuardHost, Map<ScmMock, Attached>>();

/**
 * Make CPU accesses to `memory` obey the host's permissions in `scm`: every write, zero,
 * cache clean, read or release by the page-table code or an allocator that the page's
 * HLOS permissions forbid is logged and thrown as {@link AccessViolationError} (rule
 * `access-violation`) before memory changes. Device (IOMMU) accesses are the VM's, not
 * the host's, and are not checked. One guard per (memory, monitor) pair, shared by every
 * attachment; each caller gets its own handle and can drop only its own attachment.
 */
export function attachAccessControl(memory: GuardHost, scm: ScmMock): AccessControlHandle {
  let perScm = attached.get(memory);
  if (perScm === undefined) attached.set(memory, (perScm = new Map()));
  let a = perScm.get(scm);
  if (a === undefined) {
    const violations: AccessViolation[] = [];
    const guard: AccessGuard = {
      check(kind, paddr, size, who) {
        if (who === 'device') return;
        const page = scm.firstDenied(paddr, size, needFor(kind));
        if (page < 0) return;
        const v: AccessViolation = Object.freeze({ kind, paddr, size, who, page, hlosPerm: scm.stateAt(page).hlosPerm });
        violations.push(v);
        throw new AccessViolationError('access-control', v);
      },
    };
    const control: AccessControl = Object.freeze({
      get violations(): readonly AccessViolation[] {
        return Object.freeze([...violations]);
      },
    });
    const entry: Attached = { control, refs: 0, remove: memory.addGuard(guard) };
    perScm.set(scm, entry);
    a = entry;
  }
  const entry = a;
  const map = perScm;
  entry.refs++;
  let dropped = false;
  return Object.freeze({
    control: entry.control,
    detach(): void {
      if (dropped) return;
      dropped = true;
      if (--entry.refs > 0) return;
      entry.remove();
      map.delete(scm);
    },
  });
}
