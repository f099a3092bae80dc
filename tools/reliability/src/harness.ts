/**
 * Runs concrete commands against a real page table over an allocator stack, predicts each
 * result with the reference model, and after every command checks the whole state: the
 * tree (walked independently from a snapshot) against the model, translations, and the
 * accounting identity of every allocator layer against the page table's own counts.
 */
import { IotlbGather, IoPgtableError, allocIoPgtableOps, hw, type PageTable } from '@io-pgtable/core';
import { BindError, PrepareFailure, type BindOp } from '@io-pgtable/reservation';
import { RefVmas, applyVmUnmap, createBindVm, type BindVm } from './bind.js';
import type { Cmd } from './commands.js';
import type { FuzzConfig } from './configs.js';
import { expectedLeaf, walkSnapshot, type DescCtx } from './decode.js';
import { RefModel, WRITE, type Mode } from './model.js';
import { refShape, type RefShape } from './ref-geometry.js';
import { assertStackAccounting, assertStackEmpty, type Stack } from './stacks.js';

export class HarnessFailure extends Error {
  override readonly name = 'HarnessFailure';
}

export interface HarnessOptions {
  mode: Mode;
  /** Predict the failure of exactly this allocation attempt (fault injection on the bottom, 1:1 stacks). */
  failAt?: number;
  /**
   * Accept ENOMEM wherever it happens (plugin stacks batch and prefetch, so which call fails
   * is not predictable); the model then keeps its leaves and re-reads the tables.
   */
  lenientNomem?: boolean;
  /** Run the full-state check after every command (default true). */
  checkEvery?: boolean;
  /** Put core's IOMMU model in front of a device: accesses, flush-op checks (default true). */
  iommu?: boolean;
  /** Keep every observation in `log` (default true; the soak turns it off). */
  keepLog?: boolean;
  /** Reservation stacks: the k-th non-empty job reserves one page too few (see bind.ts). */
  shortJobAt?: number;
}

export type JobCmd = Extract<Cmd, { op: 'map' | 'unmap' }>;

/** Hazards the IOMMU model reports that a correct page table and allocator never cause. */
const HAZARDS = ['stale-tlb', 'stale-walk', 'walk-after-free', 'walk-into-reused', 'reuse-before-flush'] as const;

/** One observed result, in the same words as the trace format's result lines. */
export interface Observation {
  cmd: Cmd;
  result: Record<string, unknown>;
}

const TWO64 = 1n << 64n;

export class Harness {
  readonly shape: RefShape;
  readonly model: RefModel;
  readonly ctx: DescCtx;
  readonly log: Observation[] = [];
  private readonly keepLog: boolean;
  pt: PageTable | null = null;
  readonly iommu: InstanceType<typeof hw.Iommu> | null;
  /** Set when creation failed with ENOMEM (as predicted). */
  createError: string | null = null;
  private readonly ttbr1: boolean;
  private readonly hd: boolean;
  private freed = false;
  /** Leaves whose dirty state is unknown after a lenient ENOMEM (none: ENOMEM writes no leaf). */
  nomemCount = 0;
  /** Reservation stacks: the VM, its queue, and the reference VMA record. */
  readonly bind: BindVm | null = null;
  private readonly vmas = new RefVmas();
  /** Jobs refused at prepare (PrepareFailure), jobs whose run exhausted its reservation. */
  prepareFailures = 0;
  exhaustions = 0;
  /** After an exhaustion the VM must refuse every later job. */
  private expectUnusable = false;

  constructor(
    readonly cfg: FuzzConfig,
    readonly stack: Stack,
    readonly opts: HarnessOptions,
  ) {
    const shape = refShape(cfg.format, cfg.pgsizeBitmap, cfg.ias, cfg.oas);
    if (shape === null) throw new Error(`config ${cfg.name} does not initialise`);
    this.shape = shape;
    this.keepLog = opts.keepLog !== false;
    this.ttbr1 = cfg.quirks.includes('ARM_TTBR1');
    this.hd = cfg.quirks.includes('ARM_HD') && cfg.format === 'ARM_64_LPAE_S1';
    this.model = new RefModel(shape, opts.mode, this.hd);
    if (opts.failAt !== undefined) this.model.failAt = opts.failAt;
    this.ctx = { fmt: cfg.format, quirks: new Set(cfg.quirks), coherentWalk: cfg.coherentWalk, granule: shape.granule };

    const expectOk = this.model.createPgd();
    this.iommu = opts.iommu === false ? null : new hw.Iommu({ memory: stack.memory, tlb: { entries: 16 }, walkCache: { entries: 8 } });
    const r = stack.bind ? this.createVm() : allocIoPgtableOps(
      cfg.format,
      { pgsizeBitmap: cfg.pgsizeBitmap, ias: cfg.ias, oas: cfg.oas, quirks: cfg.quirks, coherentWalk: cfg.coherentWalk },
      this.iommu
        ? { allocator: this.iommu.observe(stack.allocator), tlb: this.iommu.flushOps(), mode: opts.mode }
        : { allocator: stack.allocator, mode: opts.mode },
    );
    if (r.ok) {
      this.pt = r.table;
      this.iommu?.attach(r.table.cfg);
      if (!expectOk && !opts.lenientNomem) this.fail('page table creation succeeded although the PGD allocation was failed');
      this.checkGeometry();
    } else {
      if (r.code !== 'ENOMEM') this.fail(`page table creation failed: ${r.code} ${r.reason}`);
      if (expectOk && !opts.lenientNomem) this.fail(`page table creation failed with ENOMEM unexpectedly: ${r.reason}`);
      this.createError = r.reason;
    }
    this.checkAll();
  }

  /** A VM over the reservation stack; its PGD comes from the backing allocator now. */
  private createVm(): { ok: true; table: PageTable } | { ok: false; code: string; reason: string } {
    if (this.opts.mode !== 'strict' || this.ttbr1) throw new Error(`stack ${this.stack.name} runs VM_BIND jobs: strict mode and TTBR0 configurations only`);
    const iommu = this.iommu;
    try {
      const b = createBindVm(this.stack.bind!, this.cfg, {
        ...(iommu ? { observe: (a) => iommu.observe(a), tlb: iommu.flushOps() } : {}),
        ...(this.opts.shortJobAt !== undefined ? { shortJobAt: this.opts.shortJobAt } : {}),
      });
      (this as { bind: BindVm | null }).bind = b;
      return { ok: true, table: b.vm.pageTable };
    } catch (e) {
      if (e instanceof IoPgtableError) return { ok: false, code: e.code, reason: e.reason };
      throw e;
    }
  }

  private record(o: Observation): void {
    if (this.keepLog) this.log.push(o);
  }

  fail(msg: string): never {
    throw new HarnessFailure(`[${this.cfg.name} ${this.opts.mode} ${this.stack.name}] ${msg}`);
  }

  /** IOVA in the API's form: TTBR1 offsets become the top of the 64-bit space. */
  apiIova(x: number): bigint | number {
    return this.ttbr1 ? TWO64 - (1n << BigInt(this.shape.ias)) + BigInt(x) : x;
  }

  private checkGeometry(): void {
    const g = this.pt!.geometry;
    const s = this.shape;
    if (g.granule !== s.granule || g.startLevel !== s.startLevel || g.pgdSize !== s.pgdSize || g.ias !== s.ias || g.oas !== s.oas) {
      this.fail(`geometry ${JSON.stringify({ granule: g.granule, startLevel: g.startLevel, pgdSize: g.pgdSize, ias: g.ias, oas: g.oas })} differs from FORMAT.md's rules ${JSON.stringify({ granule: s.granule, startLevel: s.startLevel, pgdSize: s.pgdSize, ias: s.ias, oas: s.oas })}`);
    }
    if (this.pt!.cfg.pgsizeBitmap !== s.bitmap) this.fail(`effective bitmap 0x${this.pt!.cfg.pgsizeBitmap.toString(16)} != 0x${s.bitmap.toString(16)}`);
  }

  run(cmd: Cmd): void {
    if (this.pt === null) return;
    if (this.freed) this.fail(`command ${JSON.stringify(cmd)} after free`);
    switch (cmd.op) {
      case 'map':
        if (this.bind) return void this.runJob([cmd]);
        this.doMap(cmd);
        break;
      case 'unmap':
        if (this.bind) return void this.runJob([cmd]);
        this.doUnmap(cmd);
        break;
      case 'iova_to_phys': {
        const got = this.pt.iovaToPhys(this.apiIova(cmd.iova));
        const want = this.model.translate(cmd.iova);
        this.record({ cmd, result: { ret: 0, phys: got } });
        if (got !== want) this.fail(`iovaToPhys(0x${cmd.iova.toString(16)}) = 0x${got.toString(16)}, model says 0x${want.toString(16)}`);
        break;
      }
      case 'dirty':
        this.doDirty(cmd);
        break;
      case 'access':
        this.doAccess(cmd);
        break;
      case 'free':
        this.teardown();
        return;
    }
    if (this.opts.checkEvery !== false) this.checkAll();
  }

  /** The VM op for a command: a map stays inside one table (one map_pages call), as the model's. */
  private bindOp(c: JobCmd): BindOp {
    if (c.op === 'map') return { kind: 'map', iova: c.iova, size: c.pgsize * this.model.chunk(c.iova, c.pgsize, c.pgcount), paddr: c.pa, prot: c.prot, pgsize: c.pgsize };
    return { kind: 'unmap', iova: c.iova, size: c.pgsize * c.pgcount };
  }

  /**
   * One VM_BIND job of map/unmap commands: submit (count, admission, prepare: may fail with
   * a PrepareFailure and must change nothing), run in order inside the signalling section
   * (stops at the first failed op with a BindError, never throws), the driver's TLB flush
   * of the bound ranges, then cleanup (release + drain) out of the run path. The result is
   * compared with the model applied op by op; the whole state is checked afterwards.
   */
  runJob(cmds: readonly JobCmd[]): number {
    if (this.pt === null) return 0;
    if (this.freed) this.fail(`job after free`);
    const b = this.bind;
    if (b === null) {
      for (const c of cmds) this.run(c);
      return cmds.length;
    }
    const ops = cmds.map((c) => this.bindOp(c));
    const job = b.queue.trySubmit(ops);
    if (job === 'wait') this.fail(`admission refused a ${ops.length}-op job with no job in flight`);
    if (job.state === 'failed') {
      const e = job.error;
      if (!(e instanceof PrepareFailure)) this.fail(`prepare failed without a PrepareFailure: ${String(e)}`);
      const allowed = this.expectUnusable ? e.code === 'EINVAL' : e.code === 'ENOMEM' && this.opts.lenientNomem === true;
      if (!allowed) this.fail(`unexpected prepare failure: ${e.message}`);
      this.prepareFailures++;
      b.queue.cleanup();
      if (this.keepLog) for (const cmd of cmds) this.record({ cmd, result: { ret: e.code, job: 'prepare-failed' } });
      if (this.opts.checkEvery !== false) this.checkAll();
      return 0;
    }
    if (this.expectUnusable) this.fail('a job was prepared on a VM that should be unusable');
    b.queue.runAll();
    const res = job.result;
    if (res === undefined) this.fail('the job did not run');
    // The driver flushes the bound range after the ops (Panthor's flush_range); walk caches
    // were already invalidated by tlbFlushWalk when a table went away.
    for (const op of ops) this.iommu?.invalidateRange(op.iova, op.size, true);
    let wantDone = ops.length;
    let wantErr: string | undefined;
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (!res.ok && res.opsDone === i && res.error.reason === 'exhausted') {
        // Only a deliberately short reservation may run dry; the op's tables stay, no leaf.
        if (this.opts.shortJobAt === undefined) this.fail(`run exhausted its reservation: ${res.error.message}`);
        if (!(res.error instanceof BindError) || res.error.code !== 'ENOMEM' || res.error.rule !== 'reservation-exhausted') this.fail(`exhaustion reported as ${String(res.error)}`);
        this.exhaustions++;
        this.expectUnusable = true;
        this.resyncTables();
        wantDone = i;
        wantErr = 'ENOMEM';
        break;
      }
      let err: string | null;
      if (op.kind === 'map') {
        const c = cmds[i] as Extract<JobCmd, { op: 'map' }>;
        err = (c.prot & 3) === 0 ? 'EINVAL' : (this.model.map(c.iova, c.pa, c.pgsize, c.pgcount, c.prot).error ?? null);
        if (err === null) this.vmas.add(op.iova, op.iova + op.size);
      } else err = applyVmUnmap(this.model, this.shape, this.vmas, op.iova, op.size);
      if (err !== null) {
        wantDone = i;
        wantErr = err;
        break;
      }
    }
    const got = res.ok ? undefined : res.error.code;
    if (this.keepLog) for (const cmd of cmds) this.record({ cmd, result: { ret: got ?? 0, opsDone: res.opsDone } });
    if (res.opsDone !== wantDone || got !== wantErr || (!res.ok && !(res.error instanceof BindError))) {
      this.fail(`job ${JSON.stringify(ops)} = ${res.ok ? 'ok' : res.error.message} after ${res.opsDone} ops, model says ${wantErr ?? 'ok'} after ${wantDone}`);
    }
    b.queue.cleanup();
    if (this.opts.checkEvery !== false) this.checkAll();
    // Ops that ran: the ones done and the one that failed.
    return res.ok ? res.opsDone : res.opsDone + 1;
  }

  private doMap(cmd: Extract<Cmd, { op: 'map' }>): void {
    const pt = this.pt!;
    const lenient = this.opts.lenientNomem === true;
    const before = lenient ? this.saveModel() : null;
    const want = (cmd.prot & 3) === 0 ? { mapped: 0, error: 'EINVAL' as const } : this.model.map(cmd.iova, cmd.pa, cmd.pgsize, cmd.pgcount, cmd.prot);
    const got = pt.mapPages(this.apiIova(cmd.iova), cmd.pa, cmd.pgsize, cmd.pgcount, cmd.prot);
    this.record({ cmd, result: { ret: got.error ?? 0, mapped: got.mapped } });
    if (lenient && got.error === 'ENOMEM' && want.error !== 'ENOMEM') {
      this.restoreModel(before!);
      this.nomemCount++;
      if (got.mapped !== 0) this.fail(`ENOMEM map reported ${got.mapped} bytes mapped`);
      this.resyncTables();
      return;
    }
    if (got.mapped !== want.mapped || got.error !== want.error) {
      this.fail(`map(iova 0x${cmd.iova.toString(16)}, pa 0x${cmd.pa.toString(16)}, pgsize 0x${cmd.pgsize.toString(16)}, count ${cmd.pgcount}, prot ${cmd.prot}) = ${JSON.stringify(got)}, model says ${JSON.stringify(want)}`);
    }
    if (got.error === 'ENOMEM') this.nomemCount++;
  }

  private doUnmap(cmd: Extract<Cmd, { op: 'unmap' }>): void {
    const want = this.model.unmap(cmd.iova, cmd.pgsize, cmd.pgcount);
    const gather = new IotlbGather();
    const got = this.pt!.unmapPages(this.apiIova(cmd.iova), cmd.pgsize, cmd.pgcount, gather);
    this.iommu?.iotlbSync(gather);
    this.record({ cmd, result: { ret: got.error ?? 0, unmapped: got.unmapped } });
    if (got.unmapped !== want.unmapped || got.error !== want.error) {
      this.fail(`unmap(iova 0x${cmd.iova.toString(16)}, pgsize 0x${cmd.pgsize.toString(16)}, count ${cmd.pgcount}) = ${JSON.stringify(got)}, model says ${JSON.stringify(want)}`);
    }
    this.stack.flushDone();
  }

  private doDirty(cmd: Extract<Cmd, { op: 'dirty' }>): void {
    const want = this.model.readAndClearDirty(cmd.iova, cmd.size, cmd.noClear);
    const records: Array<[number, number]> = [];
    const ttbr1Base = this.ttbr1 ? -(2 ** this.shape.ias) : 0;
    const ret = this.pt!.readAndClearDirty(this.apiIova(cmd.iova), cmd.size, cmd.noClear ? 1 : 0, {
      record: (iova, size) => records.push([iova - ttbr1Base, size]),
    });
    this.record({ cmd, result: { ret, records } });
    // iommu_dirty_bitmap_record gathers each range; the caller's iotlb_sync then drops the
    // TLB entries that still say writeable-dirty.
    if (!cmd.noClear) for (const [iova, size] of records) this.iommu?.invalidateRange(iova + ttbr1Base, size, true);
    if (ret !== want.ret || JSON.stringify(records) !== JSON.stringify(want.records)) {
      this.fail(`readAndClearDirty(0x${cmd.iova.toString(16)}, 0x${cmd.size.toString(16)}, noClear ${cmd.noClear}) = ${ret} ${JSON.stringify(records)}, model says ${want.ret} ${JSON.stringify(want.records)}`);
    }
  }

  /** The access a device makes through the IOMMU model, and what the model says it must see. */
  private doAccess(cmd: Extract<Cmd, { op: 'access' }>): void {
    const iommu = this.iommu;
    const leaf = this.model.leafAt(cmd.iova);
    if (iommu === null) {
      const r = this.pt!.lookup(this.apiIova(cmd.iova));
      this.record({ cmd, result: { kind: r.kind } });
      if ((r.kind === 'mapped') !== (leaf !== undefined)) this.fail(`lookup(0x${cmd.iova.toString(16)}) is ${r.kind}, model has ${leaf ? 'a leaf' : 'nothing'}`);
      return;
    }
    const iova = this.ttbr1 ? cmd.iova - 2 ** this.shape.ias : cmd.iova;
    const r = cmd.write ? iommu.write(iova, 0x5a5a5a5a) : iommu.read(iova);
    this.record({ cmd, result: r.ok ? { ok: true, paddr: r.paddr } : { ok: false, fault: r.fault } });
    const want = this.expectAccess(leaf, cmd);
    const got = r.ok ? `ok 0x${r.paddr.toString(16)}` : r.fault;
    if (got !== want) this.fail(`device ${cmd.write ? 'write' : 'read'} at 0x${cmd.iova.toString(16)}: ${got}${r.ok ? '' : ` (${r.message})`}, model says ${want}`);
    if (r.ok && cmd.write) this.model.markDirty(cmd.iova);
  }

  private expectAccess(leaf: ReturnType<RefModel['leafAt']>, cmd: Extract<Cmd, { op: 'access' }>): string {
    if (leaf === undefined) return 'unmapped';
    const f = this.cfg.format;
    const r = (leaf.prot & 1) !== 0;
    const w = (leaf.prot & WRITE) !== 0;
    let allowed: boolean;
    if (f === 'ARM_64_LPAE_S1' || f === 'ARM_32_LPAE_S1') {
      // Devices are unprivileged; a stage-1 page without write is read-only; reads always allowed.
      allowed = (leaf.prot & 32) === 0 && (!cmd.write || w);
    } else {
      allowed = cmd.write ? w : r;
    }
    if (!allowed) return 'permission-fault';
    return `ok 0x${(leaf.pa + (cmd.iova - leaf.iova)).toString(16)}`;
  }

  private saveModel(): { leaves: string; tables: number[][] } {
    return { leaves: JSON.stringify([...this.model.leaves.values()]), tables: this.model.tables.map((s) => [...s]) };
  }

  private restoreModel(s: { leaves: string; tables: number[][] }): void {
    this.model.leaves.clear();
    for (const l of JSON.parse(s.leaves) as Array<{ iova: number; size: number; pa: number; prot: number; dirty: boolean }>) this.model.leaves.set(l.iova, l);
    s.tables.forEach((t, i) => {
      this.model.tables[i]!.clear();
      for (const w of t) this.model.tables[i]!.add(w);
    });
  }

  /** After an unpredicted ENOMEM the tables allocated on the way down stay: read them back. */
  private resyncTables(): void {
    const w = walkSnapshot(this.ctx, this.shape, this.pt!.pgd, this.pt!.tables());
    for (const set of this.model.tables) set.clear();
    for (const key of w.tables) {
      const [l, win] = key.split(':').map(Number) as [number, number];
      this.model.tables[l]!.add(win);
    }
  }

  /** The whole-state check: tree vs model, translations, accounting. */
  checkAll(): void {
    try {
      assertStackAccounting(this.stack);
    } catch (e) {
      this.fail(`accounting: ${(e as Error).message}`);
    }
    if (this.bind !== null) this.checkBindIdle();
    if (this.iommu !== null) {
      const bad = this.iommu.findingsOf(...HAZARDS);
      if (bad.length > 0) this.fail(`IOMMU model: ${bad.map((f) => `${f.kind}: ${f.message}`).join('; ')}`);
      // Faults are expected outcomes (checked per access); the log would only grow.
      this.iommu.clearFindings();
    }
    const pt = this.pt;
    if (pt === null || this.freed) return;
    const s = this.shape;
    const st = pt.stats();
    const tableCount = this.model.tableCount;
    if (st.liveTables !== tableCount) this.fail(`page table has ${st.liveTables} live tables, model ${tableCount}`);
    const pgdAlloc = Math.max(64, s.pgdSize);
    const wantBytes = pgdAlloc + (tableCount - 1) * s.granule;
    if (st.liveBytes !== wantBytes) this.fail(`page table liveBytes ${st.liveBytes}, model ${wantBytes}`);
    const top = this.stack.allocator.stats();
    if (top.liveTables !== st.liveTables) this.fail(`allocator ${this.stack.allocator.caps.name} has ${top.liveTables} live tables, the page table ${st.liveTables}`);
    if (this.stack.layers.length === 1) {
      const mb = this.stack.minBlock;
      const wantLive = Math.max(mb, pgdAlloc) + (tableCount - 1) * Math.max(mb, s.granule);
      if (top.live !== wantLive) this.fail(`system allocator live ${top.live}, expected ${wantLive}`);
    }

    const walk = walkSnapshot(this.ctx, s, pt.pgd, pt.tables());
    if (walk.problems.length > 0) this.fail(`tree: ${walk.problems.slice(0, 3).join('; ')}`);
    const wantTables = this.model.tableKeys();
    if (walk.tables.size !== wantTables.size || [...walk.tables].some((t) => !wantTables.has(t))) {
      this.fail(`tables ${[...walk.tables].sort().join(',')} != model ${[...wantTables].sort().join(',')}`);
    }
    if (walk.leaves.size !== this.model.leaves.size) this.fail(`tree has ${walk.leaves.size} leaves, model ${this.model.leaves.size}`);
    let i = 0;
    for (const l of this.model.leaves.values()) {
      const w = walk.leaves.get(l.iova);
      if (w === undefined || w.size !== l.size) this.fail(`model leaf at 0x${l.iova.toString(16)} (0x${l.size.toString(16)}) is ${w ? `0x${w.size.toString(16)} in the tree` : 'missing from the tree'}`);
      const cleaned = this.hd && (l.prot & WRITE) !== 0 && !l.dirty;
      const want = expectedLeaf(this.ctx, w.level, l.pa, l.prot, cleaned);
      if (w.pte !== want) this.fail(`leaf at 0x${l.iova.toString(16)} is 0x${w.pte.toString(16)}, expected 0x${want.toString(16)} (pa 0x${l.pa.toString(16)} prot ${l.prot})`);
      // Translations through core's own walkers, for a bounded sample.
      if (i++ < 16) {
        const off = (l.iova * 7 + 0x123) % l.size;
        const pa = pt.iovaToPhys(this.apiIova(l.iova + off));
        if (pa !== l.pa + off) this.fail(`iovaToPhys(0x${(l.iova + off).toString(16)}) = 0x${pa.toString(16)}, expected 0x${(l.pa + off).toString(16)}`);
        const lk = pt.lookup(this.apiIova(l.iova));
        if (lk.kind !== 'mapped' || lk.pte !== w.pte || lk.level !== w.level) this.fail(`lookup(0x${l.iova.toString(16)}) = ${JSON.stringify(lk, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v))}`);
        const pw = pt.pgtableWalk(this.apiIova(l.iova));
        if (pw.ret !== 0 || pw.ptes[w.level] !== w.pte || pw.ptes.length !== w.level + 1) this.fail(`pgtableWalk(0x${l.iova.toString(16)}) ret ${pw.ret}, leaf entry disagrees`);
        for (let lv = s.startLevel; lv < w.level; lv++) if (pw.ptes[lv] === undefined || (pw.ptes[lv]! & 3n) !== 3n) this.fail(`pgtableWalk(0x${l.iova.toString(16)}) level ${lv} is not a table descriptor`);
      }
    }
  }

  /** Between jobs: no reservation held, no admission ticket out, no section violation. */
  private checkBindIdle(): void {
    const setup = this.stack.bind!;
    const held = setup.reservation.stats().reserved;
    const adm = setup.admission.counters().outstanding;
    const violations = setup.reservation.counters().violations;
    if (held !== 0 || adm !== 0 || violations !== 0 || this.bind!.queue.pending.length !== 0) {
      this.fail(`between jobs: ${held} reserved bytes, ${adm} admitted pages, ${violations} section violations, ${this.bind!.queue.pending.length} queued jobs`);
    }
  }

  /** free(), then flush and drain: every page must be back where it belongs. */
  teardown(): void {
    if (this.freed) return;
    this.freed = true;
    if (this.pt !== null) {
      this.pt.free();
      let threw = false;
      try {
        this.pt.iovaToPhys(0);
      } catch (e) {
        threw = e instanceof IoPgtableError;
      }
      if (!threw) this.fail('a freed page table still answers iovaToPhys');
    }
    this.record({ cmd: { op: 'free' }, result: { ret: 0 } });
    if (this.iommu !== null) {
      const bad = this.iommu.findingsOf(...HAZARDS);
      if (bad.length > 0) this.fail(`IOMMU model at teardown: ${bad.map((f) => `${f.kind}: ${f.message}`).join('; ')}`);
      this.iommu.dispose();
    }
    this.stack.drain();
    try {
      assertStackAccounting(this.stack);
    } catch (e) {
      this.fail(`accounting after teardown: ${(e as Error).message}`);
    }
    if (this.bind !== null) this.checkBindIdle();
    const leak = assertStackEmpty(this.stack);
    if (leak !== null) this.fail(`leak after teardown: ${leak}`);
  }
}
