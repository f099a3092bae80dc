/**
 * Hostile-input cases owned by the "secure" helper: host writes, reads and frees of pages
 * assigned away from the host through every public path, the leaks a refused write or a
 * throwing free used to cause, and the fuzz report's re-run command.
 */
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { drainAll, type TableAllocator } from '@io-pgtable/allocator-api';
import { PhysMemory, createPageTable, createSystemAllocator } from '@io-pgtable/core';
import { withBatching } from '@io-pgtable/batched';
import { withPagePool } from '@io-pgtable/page-pool';
import { HLOS_VMID, ScmPerm, attachAccessControl, createScmMock, vmidMask, withSecureShare, type ScmMock, type SecureShareAllocator } from '@io-pgtable/secure-share';
import { configByName } from '../configs.js';
import { formatFailure, fuzzConfig, rerunCommand } from '../fuzz.js';
import { RW, S1 } from './fixture.js';
import type { ApiCase, Case, CheckCase, Expect, Fixture } from './types.js';

const BASE = 0x8000_0000;
const LIMIT = 0x10_0000;
const PAGE = 0x1000;

interface SecureExtra {
  scm: ScmMock;
  share: SecureShareAllocator;
  backing: TableAllocator;
}

type Below = 'system' | 'page-pool' | 'batched';

/**
 * Secure-share in donate mode ([VMID 9: RW]) over a system allocator (or a page pool or a
 * batching layer over one); the page table's PGD is donated. A refused monitor call is
 * logged but changes no ownership, so only successful calls are part of the snapshot.
 */
function donateFixture(below: Below = 'system'): Fixture {
  const memory = new PhysMemory();
  const system = createSystemAllocator({ memory, base: BASE, limit: LIMIT });
  const backing: TableAllocator = below === 'page-pool' ? withPagePool(system, { highWatermark: 4 }) : below === 'batched' ? withBatching(system, { batch: 4 }) : system;
  const scm = createScmMock();
  const share = withSecureShare(backing, { scm, vmid: 9, mode: 'donate', batch: 4 });
  const pt = createPageTable('ARM_64_LPAE_S1', S1, { allocator: share });
  const owners = () => Array.from({ length: LIMIT / PAGE }, (_, i) => scm.stateAt(BASE + i * PAGE).owners.toString(16)).join(',');
  const extra: SecureExtra = { scm, share, backing };
  return { pt, allocator: share, memory, region: [BASE, LIMIT], observe: () => ({ owners: owners(), okCalls: scm.calls - scm.failedCalls, secure: share.secureStats(), backing: backing.stats() }), extra: extra as unknown as Record<string, unknown> };
}

const x = (f: Fixture) => f.extra as unknown as SecureExtra;
const denied = (kind: string): Expect => ({ kind: 'throw', cls: 'AllocatorMisuseError', code: 'access-violation', match: new RegExp(`${kind} of \\d+ bytes at 0x[0-9a-f]+: page 0x[0-9a-f]+ grants HLOS perm 0`) });

function wp(id: string, call: string, input: string, expect: Expect, act: (f: Fixture) => unknown, category: ApiCase['category'] = 'write-protection', below: Below = 'system'): ApiCase {
  return { id, surface: 'api', category, call, input, expect, fixture: () => donateFixture(below), act };
}
const notOwner: Expect = { kind: 'throw', cls: 'ScmError', code: 'EINVAL', match: /not-owner: call \d+ by VMID 3 refused/ };
const VM9 = vmidMask(9);

const API: readonly ApiCase[] = [
  wp('secure-write64-donated', 'memory.write64', 'write64 into the donated PGD', denied('pgtable write'), (f) => f.memory.write64(f.pt.pgd + 8, 0x1234n, 'pgtable')),
  wp('secure-fill-donated', 'memory.fill', 'fill of a donated page', denied('allocator write'), (f) => f.memory.fill(f.pt.pgd, 64, 0xa5)),
  wp('secure-zero-donated', 'memory.zero', 'zero of a donated page', denied('allocator zero'), (f) => f.memory.zero(f.pt.pgd, PAGE)),
  wp('secure-clean-donated', 'memory.clean', 'cache clean of a donated page', denied('allocator clean'), (f) => f.memory.clean(f.pt.pgd, PAGE)),
  wp('secure-read64-donated', 'memory.read64', 'read64 of a page HLOS may not read', denied('allocator read'), (f) => f.memory.read64(f.pt.pgd)),
  wp('secure-readwords-donated', 'memory.readWords', 'readWords of a page HLOS may not read', denied('allocator read'), (f) => f.memory.readWords(f.pt.pgd, 64)),
  wp('secure-device-claim', 'memory.write64', "write64 claiming accessor 'device' (skips access control)", { kind: 'throw', cls: 'TypeError', match: /accessor "device" is not 'pgtable' or 'allocator'/ }, (f) => f.memory.write64(f.pt.pgd, 1n, 'device' as never)),
  wp('secure-guard-null', 'memory.guard', 'memory.guard = null, then a write to a donated page', denied('pgtable write'), (f) => {
    f.memory.guard = null;
    f.memory.write64(f.pt.pgd, 1n, 'pgtable');
  }),
  wp('secure-detach-other', 'attachAccessControl', "attachAccessControl(memory, scm).detach() by another caller, then a write", denied('pgtable write'), (f) => {
    attachAccessControl(f.memory, x(f).scm).detach();
    f.memory.write64(f.pt.pgd, 1n, 'pgtable');
  }),
  wp('secure-scm-reclaim-donated', 'scm.assign', "the host's monitor handle (alloc.scm) reassigns the donated PGD back to HLOS, src = its current owners {VMID 9}", notOwner, (f) => x(f).scm.assign({ paddr: f.pt.pgd, size: PAGE }, VM9, [{ vmid: HLOS_VMID, perm: ScmPerm.RWX }])),
  wp('secure-scm-regive-donated', 'scm.assign', 'alloc.scm re-gives the donated PGD to the VM itself with RWX, or to another VM', notOwner, (f) => x(f).share.scm.assign({ paddr: f.pt.pgd, size: PAGE }, VM9, [{ vmid: 9, perm: ScmPerm.RWX }, { vmid: 10, perm: ScmPerm.RW }])),
  wp('secure-scm-reshare-donated', 'scm.assign', 'alloc.scm shares the donated PGD with HLOS again ([HLOS: RW, VMID 9: R])', notOwner, (f) => x(f).scm.assign([{ paddr: f.pt.pgd, size: PAGE }], VM9, [{ vmid: HLOS_VMID, perm: ScmPerm.RW }, { vmid: 9, perm: ScmPerm.READ }])),
  wp('secure-scm-huge-range', 'scm.assign', 'a monitor call covering 2^50 bytes (a per-page walk would not end)', { kind: 'throw', cls: 'ScmError', code: 'EINVAL', match: /bad-range: call \d+ by VMID 3 refused/ }, (f) => x(f).scm.assign({ paddr: 0, size: 2 ** 50 }, vmidMask(HLOS_VMID), [{ vmid: 9, perm: ScmPerm.RW }]), 'bounded-memory'),
  wp('secure-pool-free-donated', 'pool.free', 'free of the donated PGD into the page pool below secure-share (it would keep the page for reuse)', denied('allocator release'), (f) => x(f).backing.free(f.pt.pgd, PAGE), 'write-protection', 'page-pool'),
  wp('secure-batched-free-donated', 'batched.free', 'free of the donated PGD into the batching layer below secure-share (it would release it to the system allocator)', denied('allocator release'), (f) => x(f).backing.free(f.pt.pgd, PAGE), 'write-protection', 'batched'),
  wp('secure-backing-free-donated', 'backing.free', 'free of the donated PGD straight into the system allocator', denied('allocator release'), (f) => x(f).backing.free(f.pt.pgd, PAGE)),
  // The kernel reads the PGD slot before it installs a table: that host read faults first.
  wp('secure-map-donated', 'mapPages', 'map that needs a table under a donated PGD (used to strand the new table)', denied('pgtable read'), (f) => f.pt.mapPages(0, 0x4000_0000, PAGE, 1, [...RW]), 'leak-after-fault'),
  wp('secure-iovatophys-donated', 'iovaToPhys', 'iova_to_phys walking a donated PGD (the engine read it unchecked)', denied('pgtable read'), (f) => f.pt.iovaToPhys(0x1000)),
  wp('secure-tables-donated', 'tables', 'a dump of a donated PGD (the engine read it unchecked)', denied('pgtable read'), (f) => f.pt.tables()),
  wp('secure-unmap-donated', 'unmapPages', 'unmap under a donated PGD (read unchecked, answered ENOENT)', denied('pgtable read'), (f) => f.pt.unmapPages(0x1000, PAGE, 1)),
];

function check(id: string, category: CheckCase['category'], where: string, input: string, expected: string, run: () => void): CheckCase {
  return { id, surface: 'check', category, where, input, expected, run };
}
function must(ok: boolean, what: string): void {
  if (!ok) throw new Error(what);
}

const HERE = dirname(fileURLToPath(import.meta.url));

const CHECKS: readonly CheckCase[] = [
  check('secure-donate-teardown', 'leak-after-fault', 'api: secure-share (donate)', 'five refused maps in donate mode, then free, flushDone, reclaim, drain', 'no table stranded; the system allocator and the monitor hold nothing', () => {
    const f = donateFixture();
    for (let i = 0; i < 5; i++) {
      try {
        f.pt.mapPages(i * 0x4000_0000, 0x4000_0000, PAGE, 1, [...RW]);
      } catch {
        // refused: checked by secure-map-donated
      }
      must(f.pt.stats().liveTables === 1, `map ${i} stranded a table (${f.pt.stats().liveTables} live)`);
    }
    f.pt.free();
    x(f).share.flushDone();
    x(f).share.reclaim();
    drainAll(x(f).share);
    must(x(f).backing.stats().outstanding === 0, `${x(f).backing.stats().outstanding} bytes still held by the system allocator`);
    must(x(f).scm.trackedPages === 0, `${x(f).scm.trackedPages} pages still assigned away from the host`);
  }),
  check('secure-release-throws', 'throwing-hook', 'api: secure-share drain', "the inner allocator's free throws once while secure-share gives pages back", 'drain continues past it and rethrows; the block stays held (cached) and the next drain returns it: nothing leaks', () => {
    const memory = new PhysMemory();
    const system = createSystemAllocator({ memory, base: BASE, limit: LIMIT });
    let throwNext = true;
    const flaky: TableAllocator = {
      ...system,
      free(p, size, ctx) {
        if (throwNext) {
          throwNext = false;
          throw new Error('injected: free failed');
        }
        system.free(p, size, ctx);
      },
    };
    const scm = createScmMock();
    const share = withSecureShare(flaky, { scm, vmid: 9, batch: 4, poolTarget: 0 });
    must(share.prefill(4) === 4, 'prefill');
    let threw = false;
    try {
      share.drain!();
    } catch (e) {
      threw = (e as Error).message.includes('injected');
    }
    must(threw, 'the failing free must be reported');
    const s = share.stats();
    must(s.outstanding === s.cached && s.outstanding === PAGE, `after the failure secure-share holds ${s.outstanding} bytes, ${s.cached} cached`);
    share.drain!();
    must(system.stats().outstanding === 0 && share.stats().outstanding === 0 && scm.trackedPages === 0, 'the retried release must return everything');
  }),
  check('pool-release-throws', 'throwing-hook', 'api: page-pool shrink', "the inner allocator's free throws once while the pool gives 4 idle pages back", 'shrink continues past it and reports it typed; the page stays idle and accounted; the next shrink returns it', () => {
    const system = createSystemAllocator({ base: BASE, limit: LIMIT });
    let throwNext = true;
    const flaky: TableAllocator = {
      ...system,
      free(p, size, ctx) {
        if (throwNext) {
          throwNext = false;
          throw new Error('injected: free failed');
        }
        system.free(p, size, ctx);
      },
    };
    const pool = withPagePool(flaky, { highWatermark: 4 });
    must(pool.refill() === 4, 'refill');
    let typed = false;
    try {
      pool.shrink();
    } catch (e) {
      typed = (e as { rule?: string }).rule === 'no-throw' && (e as Error).message.startsWith('[iopgt] [page-pool]');
    }
    must(typed, 'the failing free must be reported as a typed no-throw error');
    must(pool.stats().outstanding === PAGE && pool.stats().cached === PAGE && system.stats().outstanding === PAGE, `after the failure the pool holds ${pool.stats().outstanding} bytes`);
    must(pool.shrink() === 1 && system.stats().outstanding === 0, 'the next shrink must return the kept page');
  }),
  check('batched-sync-free-throws', 'throwing-hook', 'api: batched free', "a free under a completed flush whose inner free throws", 'typed error; the table stays live (stats unchanged), and the same free succeeds once the fault is gone', () => {
    const system = createSystemAllocator({ base: BASE, limit: LIMIT });
    let throwNext = true;
    const flaky: TableAllocator = {
      ...system,
      free(p, size, ctx) {
        if (throwNext) {
          throwNext = false;
          throw new Error('injected: free failed');
        }
        system.free(p, size, ctx);
      },
    };
    const b = withBatching(flaky, { batch: 1 });
    const p = b.alloc(PAGE, { mayBlock: true })!;
    const ctx = { kind: 'table' as const, level: 3, flush: { id: 1, done: true } };
    const before = JSON.stringify(b.stats());
    let typed = false;
    try {
      b.free(p, PAGE, ctx);
    } catch (e) {
      typed = (e as { rule?: string }).rule === 'no-throw';
    }
    must(typed, 'the failing free must be reported as a typed no-throw error');
    must(JSON.stringify(b.stats()) === before, 'a refused free must change nothing');
    b.free(p, PAGE, ctx);
    must(b.stats().outstanding === 0 && system.stats().outstanding === 0, 'the retried free must go through');
  }),
  check('fuzz-rerun-command', 'rerun-command', 'script: npm run fuzz', 'the re-run command printed with a fuzz failure (over a broken stack), run as printed', 'exit 1 with the same FAIL line, the same shrunk trace and the same command', () => {
    const r = fuzzConfig(configByName('s1-16k-47-48-ttbr1'), { mode: 'strict', numRuns: 200, seed: 7, maxCommands: 25, stackName: 'scribbler' });
    must(r.failure !== null, 'the broken stack must fail');
    const printed = formatFailure(r.failure!);
    const cmd = rerunCommand(r.failure!);
    must(printed.includes(`re-run: ${cmd}`), 'the report prints the command');
    const out = spawnSync(cmd, { cwd: resolve(HERE, '../..'), shell: true, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    must(out.status === 1, `exit ${out.status}: ${out.stderr}`);
    must(out.stdout.includes(printed.split('\n')[0]!), `the re-run does not print the same failure:\n${out.stdout.slice(0, 2000)}`);
    must(out.stdout.includes(r.failure!.trace.trimEnd()), 'the re-run does not shrink to the same trace');
    must(out.stdout.includes(`re-run: ${cmd}`), 'the re-run does not print the same command');
  }),
];

export const CASES: readonly Case[] = [...API, ...CHECKS];
