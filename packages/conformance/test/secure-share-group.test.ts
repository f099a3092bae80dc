import {
  AllocatorMisuseError,
  BLOCKING_CTX,
  EMPTY_STATS,
  PendingFrees,
  allocSizeFor,
  isFlushed,
  type AllocatorStats,
  type Paddr,
  type TableAllocator,
} from '@io-pgtable/allocator-api';
import { describe, expect, it } from 'vitest';
import {
  describeAllocatorConformance,
  runConformanceGroup,
  type ConformanceEnv,
  type ConformanceRule,
  type SecureShareAdapter,
  type SharePerm,
} from '../src/index.js';

/**
 * A minimal secure-share allocator, written here independently of packages/secure-share:
 * a mock monitor records per-page owners; a context per VMID assigns fresh pages to
 * [HLOS: rw, VMID: r] in blocking contexts only, pools freed pages for its VMID after
 * the flush, reassigns them to HLOS on drain and quarantines a page whose reassignment
 * fails. `bug` breaks exactly one rule.
 */
type Bug = 'assign-in-run' | 'unassign-on-free' | 'wrong-perms' | 'shared-pool' | 'quarantine-reuse' | 'release-assigned' | 'silent-donate';

const HLOS = 3;
const VM_A = 10;
const VM_B = 11;
const PAGE = 4096;
type Perms = Readonly<Record<number, SharePerm>>;
const HOST: Perms = Object.freeze({ [HLOS]: 'rwx' });

class MockScm {
  private readonly pages = new Map<number, Perms>();
  calls = 0;
  failing = 0;
  violations = 0;
  owner(p: Paddr): Perms {
    return this.pages.get(Math.floor(p / PAGE)) ?? HOST;
  }
  /** One assign call over a block; false when it fails (no state change). */
  assign(p: Paddr, size: number, dest: Perms): boolean {
    this.calls++;
    if (this.failing > 0) {
      this.failing--;
      return false;
    }
    for (let q = p; q < p + size; q += PAGE) {
      if (dest === HOST) this.pages.delete(q / PAGE);
      else this.pages.set(q / PAGE, dest);
    }
    return true;
  }
}

interface World {
  readonly scm: MockScm;
  readonly env: ConformanceEnv;
  readonly contexts: Map<number, TestShare>;
  /** The one pool of the 'shared-pool' mutant. */
  readonly sharedPool: Map<number, Paddr[]>;
}

interface TestShare extends TableAllocator {
  readonly world: World;
}

type Where = 'live' | 'pending' | 'pool' | 'dirty' | 'quarantined';

function createContext(world: World, vmid: number, donate: boolean, bug?: Bug): TestShare {
  const { scm, env } = world;
  const backing = env.backing;
  const name = `${bug === undefined ? 'test-share' : `share-mutant:${bug}`}(vmid ${vmid})`;
  const dest: Perms = donate ? { [vmid]: 'rw' } : bug === 'wrong-perms' ? { [HLOS]: 'rwx', [vmid]: 'rw' } : { [HLOS]: 'rw', [vmid]: 'r' };
  const blocks = new Map<Paddr, number>();
  let backingCalls = 0;
  const where = new Map<Paddr, Where>();
  const pools = bug === 'shared-pool' ? world.sharedPool : new Map<number, Paddr[]>();
  const pending = new PendingFrees();
  let dirty: Paddr[] = [];
  const poolOf = (b: number) => {
    let l = pools.get(b);
    if (l === undefined) pools.set(b, (l = []));
    return l;
  };
  const bytesIn = (w: Where) => {
    let n = 0;
    for (const [p, at] of where) if (at === w) n += blocks.get(p)!;
    return n;
  };
  const release = (p: Paddr) => {
    const b = blocks.get(p)!;
    blocks.delete(p);
    where.delete(p);
    backing.free(p, b);
  };
  const reclaim = (p: Paddr) => {
    if (bug === 'release-assigned' || scm.assign(p, blocks.get(p)!, HOST)) release(p);
    else {
      where.set(p, 'quarantined');
      if (bug === 'quarantine-reuse') poolOf(blocks.get(p)!).push(p);
    }
  };

  /** A freed block whose flush completed: back to the VMID's pool (zeroed), or queued for reclaim. */
  const flushed = (p: Paddr) => {
    const b = blocks.get(p)!;
    if (bug === 'assign-in-run') reclaim(p); // no pool: every table needs a fresh assign
    else if (donate) {
      where.set(p, 'dirty'); // the host may not zero a donated page
      dirty.push(p);
    } else {
      env.memory.zero(p, b, 'allocator');
      where.set(p, 'pool');
      poolOf(b).push(p);
    }
  };
  const self: TestShare = {
    world,
    caps: Object.freeze({ name, minSize: 64, maxSize: 1 << 20, defersFree: true, zeroes: donate ? 'backing' : 'on-free', mayFail: true }),
    memory: env.memory,
    alloc(size, ctx) {
      const b = Math.max(allocSizeFor(size), PAGE);
      if (bug !== 'assign-in-run') {
        const p = poolOf(b).pop();
        if (p !== undefined) {
          blocks.set(p, b); // the shared-pool mutant takes other contexts' blocks
          where.set(p, 'live');
          return p;
        }
        // Assigning sleeps in the monitor: never in atomic or run-phase contexts.
        if (!ctx.mayBlock || ctx.phase === 'run') return null;
      }
      backingCalls++;
      const p = backing.alloc(b, BLOCKING_CTX);
      if (p === null) return null;
      blocks.set(p, b);
      env.memory.zero(p, b, 'allocator');
      if (!scm.assign(p, b, dest)) {
        release(p);
        return null;
      }
      where.set(p, 'live');
      return p;
    },
    free(p, size, ctx) {
      const at = where.get(p);
      if (at !== 'live') throw new AllocatorMisuseError(name, at === undefined ? 'foreign-free' : 'double-free', `free of 0x${p.toString(16)}`, p);
      if (Math.max(allocSizeFor(size), PAGE) !== blocks.get(p)) throw new AllocatorMisuseError(name, 'free-size', `free of 0x${p.toString(16)} with size ${size}`, p);
      if (bug === 'unassign-on-free') return reclaim(p); // a monitor call in the unmap path
      where.set(p, 'pending');
      if (isFlushed(ctx)) flushed(p);
      else pending.add(p, blocks.get(p)!, ctx);
    },
    flushDone(token) {
      pending.release(token, flushed);
    },
    drain() {
      const idle = [...dirty];
      dirty = [];
      for (const list of pools.values()) {
        for (const p of [...list]) {
          if (where.get(p) !== 'pool') continue; // another context's block (shared-pool mutant)
          list.splice(list.indexOf(p), 1);
          idle.push(p);
        }
      }
      for (const p of idle) reclaim(p);
    },
    stats(): AllocatorStats {
      let live = 0;
      let liveTables = 0;
      for (const [p, at] of where) {
        if (at !== 'live') continue;
        live += blocks.get(p)!;
        liveTables++;
      }
      const quarantined = bytesIn('quarantined');
      const cached = bytesIn('pool') + bytesIn('dirty');
      const pendingFlush = bytesIn('pending');
      return { ...EMPTY_STATS, outstanding: live + cached + pendingFlush + quarantined, live, cached, pendingFlush, quarantined, liveTables, backingCalls };
    },
  };
  return self;
}

function createWorld(env: ConformanceEnv, donate: boolean, bug?: Bug): World {
  const world: World = { scm: new MockScm(), env, contexts: new Map(), sharedPool: new Map() };
  world.contexts.set(VM_A, createContext(world, VM_A, donate, bug));
  if (donate && bug !== 'silent-donate') {
    // CPU writes, zeroing and cache maintenance need the host to own the page with write access.
    env.memory.guard = {
      check(kind, p, size, who) {
        if (who === 'device' || kind === 'read') return;
        for (let q = p - (p % PAGE); q < p + size; q += PAGE) {
          if (world.scm.owner(q)[HLOS]?.includes('w') !== true) {
            world.scm.violations++;
            throw new AllocatorMisuseError('test-scm', 'access-violation', `${who} ${kind} of page 0x${q.toString(16)}, which HLOS gave away`, q);
          }
        }
      },
    };
  }
  return world;
}

function adapterFor(bug?: Bug): SecureShareAdapter<TestShare> {
  return {
    hlos: HLOS,
    vmids: [VM_A, VM_B],
    forVmid(a, vmid) {
      let c = a.world.contexts.get(vmid);
      if (c === undefined) a.world.contexts.set(vmid, (c = createContext(a.world, vmid, false, bug)));
      return c;
    },
    ownership(a, p) {
      const perms = a.world.scm.owner(p);
      return { owners: Object.keys(perms).map(Number).sort((x, y) => x - y), perms };
    },
    smcCalls: (a) => a.world.scm.calls,
    failNextAssigns(a, n) {
      a.world.scm.failing += n;
    },
    donating: (env) => createWorld(env, true, bug).contexts.get(VM_A)!,
    violations: (a) => a.world.scm.violations,
  };
}

const factory = (bug?: Bug) => (env: ConformanceEnv) => createWorld(env, false, bug).contexts.get(VM_A)!;

const EXPECTED: Readonly<Record<Bug, ConformanceRule>> = {
  'assign-in-run': 'run-phase-backing-call',
  'unassign-on-free': 'run-phase-backing-call',
  'wrong-perms': 'ownership',
  'shared-pool': 'vmid-mismatch',
  'quarantine-reuse': 'ownership',
  'release-assigned': 'ownership',
  'silent-donate': 'access-violation',
};

describe('secure-share group', () => {
  it('the correct in-test secure-share allocator passes every check', () => {
    const failures = runConformanceGroup('secure-share', factory(), { secureShare: adapterFor() });
    expect(failures.map((f) => f.message)).toEqual([]);
  });

  it('registers nothing without options.secureShare', () => {
    expect(runConformanceGroup('secure-share', factory(), {})).toEqual([]);
  });

  it.each(Object.keys(EXPECTED) as Bug[])('rejects the %s mutant, naming its rule', (bug) => {
    const rule = EXPECTED[bug];
    const failures = runConformanceGroup('secure-share', factory(bug), { secureShare: adapterFor(bug) });
    expect(failures.map((f) => f.rule)).toContain(rule);
    // Nothing else fails: each mutant breaks one rule.
    expect(failures.filter((f) => f.rule !== rule).map((f) => f.message)).toEqual([]);
    const f = failures.find((x) => x.rule === rule)!;
    expect(f.message.startsWith(`[iopgt] [conformance] ${rule}: `)).toBe(true);
  });

  it('the shared-pool mutant is caught as a page of one VMID handed to a table of the other', () => {
    const failures = runConformanceGroup('secure-share', factory('shared-pool'), { secureShare: adapterFor('shared-pool') });
    expect(failures.find((f) => f.rule === 'vmid-mismatch')?.message).toMatch(/VMID 1[01]/);
  });
});

// The in-test allocator passes the generic groups too (its contexts share one backing store).
describeAllocatorConformance('test-share', factory(), { numRuns: 20, propertyOps: 4000 });
