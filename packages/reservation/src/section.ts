/**
 * The dma-fence signalling section, made explicit. A VM_BIND job's run happens on the
 * path that signals its fence; memory reclaim may wait on that fence, so nothing on the
 * path may call into a page allocator (Vetter, "dma-fence: prime lockdep annotations",
 * d0b9a9aef0a1). Lockdep checks this in the kernel; here a guard decorator checks every
 * backing allocator wrapped with {@link withBackingGuard}, whatever `ctx.mayBlock` says.
 */
import { AllocatorMisuseError, definePlugin, type TableAllocator } from '@io-pgtable/allocator-api';

/** One backing-allocator call made inside a signalling section. */
export interface SectionViolation {
  readonly rule: 'run-phase-backing-call';
  /** Name of the backing allocator that was called. */
  readonly allocator: string;
  readonly call: 'alloc' | 'free' | 'flushDone' | 'drain';
  readonly size?: number;
  readonly paddr?: number;
}

export interface SignallingSectionOptions {
  /** `throw` (default) raises an AllocatorMisuseError after recording; `record` only records. */
  readonly onViolation?: 'throw' | 'record';
}

/**
 * A nestable critical section, as dma_fence_begin_signalling / dma_fence_end_signalling.
 * `begin()` returns a token that `end()` must receive, so mismatched ends are caught.
 */
export class SignallingSection {
  private depth = 0;
  private readonly recorded: SectionViolation[] = [];
  readonly onViolation: 'throw' | 'record';

  constructor(opts: SignallingSectionOptions = {}) {
    this.onViolation = opts.onViolation ?? 'throw';
  }

  /** Is a signalling section open? */
  get isActive(): boolean {
    return this.depth > 0;
  }

  begin(): number {
    return ++this.depth;
  }

  end(token: number): void {
    if (token !== this.depth) {
      throw new AllocatorMisuseError('reservation', 'run-phase-backing-call', `signalling section ended out of order (token ${token}, depth ${this.depth})`);
    }
    this.depth--;
  }

  /** Run `fn` inside the section; the section closes even if `fn` throws. */
  run<T>(fn: () => T): T {
    const token = this.begin();
    try {
      return fn();
    } finally {
      this.end(token);
    }
  }

  /** Violations recorded so far (oldest first). */
  get violations(): readonly SectionViolation[] {
    return this.recorded;
  }

  /** Record a call into `allocator` if a section is open; throws when configured to. */
  check(v: Omit<SectionViolation, 'rule'>): void {
    if (this.depth === 0) return;
    const violation: SectionViolation = { rule: 'run-phase-backing-call', ...v };
    this.recorded.push(violation);
    if (this.onViolation === 'throw') {
      const what = v.call === 'alloc' ? `alloc(${v.size})` : v.call === 'free' ? `free(0x${(v.paddr ?? 0).toString(16)}, ${v.size})` : `${v.call}()`;
      throw new AllocatorMisuseError(v.allocator, 'run-phase-backing-call', `${what} inside a dma-fence signalling section (run phase may only consume its reservation)`, v.paddr);
    }
  }
}

/**
 * Wrap a backing allocator so that every call made while `section` is open is a
 * reported violation. The check comes before the call, so a throwing guard leaves the
 * backing allocator untouched.
 */
export function withBackingGuard(inner: TableAllocator, section: SignallingSection): TableAllocator {
  const name = inner.caps.name;
  const guarded = definePlugin(inner, {
    caps: { name },
    alloc(size, ctx) {
      section.check({ allocator: name, call: 'alloc', size });
      return inner.alloc(size, ctx);
    },
    free(paddr, size) {
      section.check({ allocator: name, call: 'free', size, paddr });
      inner.free(paddr, size);
    },
    flushDone() {
      section.check({ allocator: name, call: 'flushDone' });
    },
    stats: () => inner.stats(),
    ...(inner.drain
      ? {
          drain() {
            section.check({ allocator: name, call: 'drain' });
            inner.drain!();
          },
        }
      : {}),
  });
  return guarded;
}
