/**
 * The bad-input catalogue: every invalid input the project promises to reject, with the
 * typed error it must get. One list drives the tests (test/catalogue.test.ts) and the
 * table in docs/reliability.md (scripts/catalogue-table.ts), so the two cannot drift.
 */
import { IotlbGather, PhysMemory, createPageTable, createSystemAllocator, type PageTable, type SystemAllocator } from '@io-pgtable/core';

export type Expect =
  | { kind: 'errno'; code: string; match: RegExp }
  | { kind: 'throw'; cls: string; code?: string; match: RegExp }
  | { kind: 'ret'; value: number };

export interface Fixture {
  pt: PageTable;
  allocator: SystemAllocator;
  memory: PhysMemory;
  /** A table address already freed once (for the double-free case). */
  doubleFreed?: number;
  /** A page table already freed (for use-after-free). */
  freedPt?: PageTable;
}

export interface ApiCase {
  id: string;
  surface: 'api';
  call: string;
  input: string;
  expect: Expect;
  act(f: Fixture): unknown;
}

export interface TraceCase {
  id: string;
  surface: 'trace';
  input: string;
  /** Trace text; the header line is line 1. */
  text: string;
  line: number;
  match: RegExp;
}

export interface CliCase {
  id: string;
  surface: 'cli';
  input: string;
  /** Arguments after `replay`; `FILE` is replaced by a temporary file holding `text`. */
  args: string[];
  text?: string;
  exit: number;
  match: RegExp;
}

export type Case = ApiCase | TraceCase | CliCase;

const BASE = 0x8000_0000;
export const FIXTURE_LIMIT = 0x40_0000;

/** A 48-bit 4K stage-1 table with a page at 0x1000 and a 2 MiB block at 0x4000_0000. */
export function makeFixture(): Fixture {
  const memory = new PhysMemory();
  const allocator = createSystemAllocator({ memory, base: BASE, limit: FIXTURE_LIMIT });
  const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 }, { allocator });
  pt.mapPages(0x1000, 0x1_0000_0000, 0x1000, 1, ['read', 'write']);
  pt.mapPages(0x4000_0000, 0x2_0000_0000, 0x20_0000, 1, ['read']);
  pt.mapPages(0x80_0000_0000, 0x3_0000_0000, 0x1000, 2, ['read', 'write']);
  return { pt, allocator, memory };
}

/**
 * Everything observable: the tree, both sets of stats, a hash of the allocator's memory.
 * (Not `allocCalls`: a rejected `alloc(100)` still advances it; see docs/reliability.md.)
 */
export function snapshot(f: Fixture): string {
  const tables = f.pt.isFreed ? [] : [...f.pt.tables()].map(([a, e]) => [a, [...e].map(([i, v]) => [i, v.toString(16)])]);
  let h = 0x811c9dc5;
  for (let p = BASE; p < BASE + FIXTURE_LIMIT; p += 1 << 20) {
    const w = f.memory.peek(p);
    for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w[i]!, 0x01000193) >>> 0;
  }
  return JSON.stringify({ tables, pt: f.pt.isFreed ? 'freed' : f.pt.stats(), alloc: f.allocator.stats(), mem: h });
}

const S1 = { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 };
const RW = ['read', 'write'] as const;
const inval = (match: RegExp): Expect => ({ kind: 'errno', code: 'EINVAL', match });
const range = (match: RegExp): Expect => ({ kind: 'errno', code: 'ERANGE', match });
const throwsIo = (match: RegExp): Expect => ({ kind: 'throw', cls: 'IoPgtableError', code: 'EINVAL', match });
const misuse = (rule: string, match: RegExp): Expect => ({ kind: 'throw', cls: 'AllocatorMisuseError', code: rule, match });

function api(id: string, call: string, input: string, expect: Expect, act: (f: Fixture) => unknown): ApiCase {
  return { id, surface: 'api', call, input, expect, act };
}

const create = (format: string, cfg: Record<string, unknown>, env: Record<string, unknown> = {}) => (f: Fixture) =>
  createPageTable(format as 'ARM_64_LPAE_S1', cfg as never, { allocator: f.allocator, ...env });

export const API_CASES: readonly ApiCase[] = [
  api('api-format-unknown', 'createPageTable', "format 'ARM_V9'", throwsIo(/unknown format "ARM_V9"/), create('ARM_V9', S1)),
  api('api-format-unmodelled', 'createPageTable', "format 'ARM_V7S'", throwsIo(/ARM_V7S is not modelled/), create('ARM_V7S', S1)),
  api('api-quirk-unknown', 'createPageTable', "quirks ['ARM_FOO']", throwsIo(/unknown quirk "ARM_FOO"/), create('ARM_64_LPAE_S1', { ...S1, quirks: ['ARM_FOO'] })),
  api('api-quirk-noperms', 'createPageTable', "quirks ['NO_PERMS']", throwsIo(/NO_PERMS|quirk/i), create('ARM_64_LPAE_S1', { ...S1, quirks: ['NO_PERMS'] })),
  api('api-quirk-mask-nan', 'createPageTable', 'quirks NaN', throwsIo(/quirks must be a 32-bit mask/), create('ARM_64_LPAE_S1', { ...S1, quirks: NaN })),
  api('api-ias-nan', 'createPageTable', 'ias NaN', throwsIo(/ias must be an integer/), create('ARM_64_LPAE_S1', { ...S1, ias: NaN })),
  api('api-ias-string', 'createPageTable', "ias '48'", throwsIo(/ias must be an integer/), create('ARM_64_LPAE_S1', { ...S1, ias: '48' })),
  api('api-oas-invalid', 'createPageTable', 'oas 39', throwsIo(/oas|output/i), create('ARM_64_LPAE_S1', { ...S1, oas: 39 })),
  api('api-bitmap-negative', 'createPageTable', 'pgsizeBitmap -1', throwsIo(/pgsizeBitmap -1 is not an unsigned 64-bit integer/), create('ARM_64_LPAE_S1', { ...S1, pgsizeBitmap: -1 })),
  api('api-bitmap-2p64', 'createPageTable', 'pgsizeBitmap 2^64', throwsIo(/not an unsigned 64-bit integer/), create('ARM_64_LPAE_S1', { ...S1, pgsizeBitmap: 1n << 64n })),
  api('api-bitmap-unusable', 'createPageTable', 'pgsizeBitmap 0x40000000 (1G only)', throwsIo(/page size|bitmap|granule/i), create('ARM_64_LPAE_S1', { ...S1, pgsizeBitmap: 0x4000_0000 })),
  api('api-coherent-type', 'createPageTable', "coherentWalk 'yes'", throwsIo(/coherentWalk must be a boolean/), create('ARM_64_LPAE_S1', { ...S1, coherentWalk: 'yes' })),
  api('api-mode-unknown', 'createPageTable', "env.mode 'lenient'", throwsIo(/unknown mode "lenient"/), create('ARM_64_LPAE_S1', S1, { mode: 'lenient' })),
  api('api-mali-ns', 'createPageTable', "ARM_MALI_LPAE with quirks ['ARM_NS']", throwsIo(/quirk|NS/i), create('ARM_MALI_LPAE', { ...S1, oas: 40, quirks: ['ARM_NS'] })),
  api('api-hooks-half', 'createPageTable', 'cfg.alloc without cfg.free', throwsIo(/must be set together/), (f) =>
    createPageTable('ARM_64_LPAE_S1', { ...S1, alloc: () => null }, { memory: f.memory })),
  api('api-map-pgsize-zero', 'mapPages', 'pgsize 0', inval(/pgsize 0x0 is not in the page-size bitmap/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0, 1, [...RW])),
  api('api-map-pgsize-multibit', 'mapPages', 'pgsize 0x201000 (4K|2M)', inval(/more than one bit/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x20_1000, 1, [...RW])),
  api('api-map-pgsize-absent', 'mapPages', 'pgsize 0x800 (not in bitmap)', inval(/not in the page-size bitmap/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x800, 1, [...RW])),
  api('api-map-pgsize-nan', 'mapPages', 'pgsize NaN', inval(/pgsize NaN is not an unsigned 64-bit integer/), (f) => f.pt.mapPages(0x10_0000, 0x1000, NaN, 1, [...RW])),
  api('api-map-iova-unaligned', 'mapPages', 'iova 0x10800, pgsize 4K', inval(/unaligned: iova 0x10800/), (f) => f.pt.mapPages(0x1_0800, 0x1000, 0x1000, 1, [...RW])),
  api('api-map-paddr-unaligned', 'mapPages', 'paddr 0x1234, pgsize 4K', inval(/unaligned: .*pa 0x1234/), (f) => f.pt.mapPages(0x1_0000, 0x1234, 0x1000, 1, [...RW])),
  api('api-map-iova-negative', 'mapPages', 'iova -4096', inval(/iova -4096 is not an unsigned 64-bit integer/), (f) => f.pt.mapPages(-4096, 0x1000, 0x1000, 1, [...RW])),
  api('api-map-iova-2p64', 'mapPages', 'iova 2^64 (bigint)', inval(/iova 0x0n is not an unsigned|is not an unsigned 64-bit integer/), (f) => f.pt.mapPages(1n << 64n, 0x1000, 0x1000, 1, [...RW])),
  api('api-map-iova-string', 'mapPages', "iova '0x1000' (string)", inval(/iova string is not an unsigned 64-bit integer/), (f) => f.pt.mapPages('0x1000' as never, 0x1000, 0x1000, 1, [...RW])),
  api('api-map-iova-range', 'mapPages', 'iova 2^48 (ias 48)', range(/outside the 48-bit input address space/), (f) => f.pt.mapPages(2 ** 48, 0x1000, 0x1000, 1, [...RW])),
  api('api-map-run-past-end', 'mapPages', 'iova 2^48-4K, pgcount 2', range(/runs past the end of the input address space/), (f) => f.pt.mapPages(2 ** 48 - 0x1000, 0x1000, 0x1000, 2, [...RW])),
  api('api-map-paddr-range', 'mapPages', 'paddr 2^48 (oas 48)', range(/outside the 48-bit output address space/), (f) => f.pt.mapPages(0x10_0000, 2 ** 48, 0x1000, 1, [...RW])),
  api('api-map-pgcount-zero', 'mapPages', 'pgcount 0', inval(/pgcount must be at least 1/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, 0, [...RW])),
  api('api-map-pgcount-fraction', 'mapPages', 'pgcount 1.5', inval(/pgcount 1.5 is not a count/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, 1.5, [...RW])),
  api('api-map-pgcount-negative', 'mapPages', 'pgcount -1', inval(/pgcount -1 is not a count/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, -1, [...RW])),
  api('api-map-prot-unknown', 'mapPages', "prot ['read','exec']", inval(/unknown prot "exec"/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, 1, ['read', 'exec'] as never)),
  api('api-map-prot-none', 'mapPages', 'prot [] (neither read nor write)', inval(/neither read nor write/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, 1, [])),
  api('api-map-prot-mask', 'mapPages', 'prot 0x40 (unknown bit)', inval(/prot must be a mask of IOMMU_\* bits/), (f) => f.pt.mapPages(0x10_0000, 0x1000, 0x1000, 1, 0x40)),
  api('api-map-overlap-page', 'mapPages', 'map over the page at 0x1000', { kind: 'errno', code: 'EEXIST', match: /iova 0x1000 .*already mapped/ }, (f) => f.pt.mapPages(0x1000, 0x5000, 0x1000, 1, [...RW])),
  api('api-map-overlap-block', 'mapPages', 'page inside the 2M block at 0x40000000', { kind: 'errno', code: 'EEXIST', match: /iova 0x40001000 .*already mapped/ }, (f) => f.pt.mapPages(0x4000_1000, 0x5000, 0x1000, 1, [...RW])),
  api('api-map-block-over-pages', 'mapPages', '2M block over the table holding 0x1000', { kind: 'errno', code: 'EEXIST', match: /iova 0x0 .*already mapped/ }, (f) => f.pt.mapPages(0, 0x20_0000, 0x20_0000, 1, [...RW])),
  api('api-unmap-hole', 'unmapPages', 'iova 0x5000 (nothing mapped)', { kind: 'errno', code: 'ENOENT', match: /nothing is mapped at iova 0x5000/ }, (f) => f.pt.unmapPages(0x5000, 0x1000, 1)),
  api('api-unmap-partial-block', 'unmapPages', '4K inside the 2M block', inval(/iova 0x40001000 lies inside a larger block/), (f) => f.pt.unmapPages(0x4000_1000, 0x1000, 1)),
  api('api-unmap-pgcount-zero', 'unmapPages', 'pgcount 0', inval(/pgcount 0 must be at least 1/), (f) => f.pt.unmapPages(0x1000, 0x1000, 0)),
  api('api-unmap-unaligned', 'unmapPages', 'iova 0x1800', inval(/unaligned: iova 0x1800/), (f) => f.pt.unmapPages(0x1800, 0x1000, 1)),
  api('api-unmap-multibit', 'unmapPages', 'pgsize 0x201000', inval(/more than one bit/), (f) => f.pt.unmapPages(0x1000, 0x20_1000, 1)),
  api('api-unmap-range', 'unmapPages', 'iova 2^50', range(/outside the 48-bit input address space/), (f) => f.pt.unmapPages(2 ** 50, 0x1000, 1)),
  api('api-unmap-gather-type', 'unmapPages', 'gather {} (not an IotlbGather)', inval(/gather must be an IotlbGather/), (f) => f.pt.unmapPages(0x1000, 0x1000, 1, {} as IotlbGather)),
  api('api-dirty-size-zero', 'readAndClearDirty', 'size 0', { kind: 'ret', value: -22 }, (f) => f.pt.readAndClearDirty(0x1000, 0, 0, { record() {} })),
  api('api-dirty-past-ias', 'readAndClearDirty', 'range past 2^48', { kind: 'ret', value: -22 }, (f) => f.pt.readAndClearDirty(2 ** 48 - 0x1000, 0x2000, 0, { record() {} })),
  api('api-walk-bad-iova', 'pgtableWalk', "iova 'x'", throwsIo(/iova string is not an unsigned 64-bit integer/), (f) => f.pt.pgtableWalk('x' as never).ret),
  api('api-phys-nan', 'iovaToPhys', 'iova NaN', throwsIo(/iova NaN is not an unsigned 64-bit integer/), (f) => f.pt.iovaToPhys(NaN)),
  api('api-phys-negative', 'iovaToPhys', 'iova -1', throwsIo(/iova -1 is not an unsigned 64-bit integer/), (f) => f.pt.iovaToPhys(-1)),
  api('api-lookup-above-u64', 'lookup', 'iova 2^64 (bigint)', throwsIo(/not an unsigned 64-bit integer/), (f) => f.pt.lookup(1n << 64n)),
  api('api-free-foreign', 'allocator.free', 'free of 0x9000_0000 (never allocated)', misuse('foreign-free', /free of 0x90000000 .* not a live block/), (f) => f.allocator.free(0x9000_0000, 0x1000)),
  api('api-free-double', 'allocator.free', 'second free of a freed table', misuse('double-free', /not a live block/), (f) => {
    f.allocator.free(f.doubleFreed!, 0x1000);
  }),
  api('api-free-size', 'allocator.free', 'free of the PGD with size 64K', misuse('free-size', /but the block is 4096 bytes/), (f) => f.allocator.free(f.pt.pgd, 0x1_0000)),
  api('api-alloc-size', 'allocator.alloc', 'alloc(100) (not a power of two)', misuse('size', /alloc size 100 is not a power of two/), (f) => f.allocator.alloc(100, { mayBlock: true })),
  api('api-use-after-free', 'mapPages', 'map on a freed page table', throwsIo(/used after free/), (f) => f.freedPt!.mapPages(0x1000, 0x1000, 0x1000, 1, [...RW])),
];

/** Fixture extras some cases need, prepared before the "before" snapshot. */
export function prepare(c: ApiCase, f: Fixture): void {
  if (c.id === 'api-free-double') {
    const p = f.allocator.alloc(0x1000, { mayBlock: true })!;
    f.allocator.free(p, 0x1000);
    f.doubleFreed = p;
  }
  if (c.id === 'api-use-after-free') {
    const other = createPageTable('ARM_64_LPAE_S1', S1, { allocator: f.allocator });
    other.free();
    f.freedPt = other;
  }
}

const HDR = '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48}';
function tr(id: string, input: string, body: string, line: number, match: RegExp, header = HDR): TraceCase {
  return { id, surface: 'trace', input, text: header + '\n' + body + (body ? '\n' : ''), line, match };
}

export const TRACE_CASES: readonly TraceCase[] = [
  { id: 'trace-empty', surface: 'trace', input: 'empty file', text: '', line: 1, match: /empty trace/ },
  tr('trace-truncated', 'op line cut mid-object', '{"op":"map","iova":"0x1000"', 2, /not valid JSON/),
  tr('trace-not-object', 'op line is an array', '["map"]', 2, /each line must be a JSON object/),
  tr('trace-format-unknown', "header format 'ARM_V9'", '', 1, /format "ARM_V9" is not one of/, '{"format":"ARM_V9","pgsizeBitmap":"0x1000","ias":48,"oas":48}'),
  tr('trace-quirk-unknown', "header quirk 'ARM_FOO'", '', 1, /unknown quirk "ARM_FOO"/, '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x1000","ias":48,"oas":48,"quirks":["ARM_FOO"]}'),
  tr('trace-header-missing-key', 'header without pgsizeBitmap', '', 1, /missing required key "pgsizeBitmap"/, '{"format":"ARM_64_LPAE_S1","ias":48,"oas":48}'),
  tr('trace-header-unknown-key', "header key 'granule'", '', 1, /unknown header key "granule"/, '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x1000","ias":48,"oas":48,"granule":4096}'),
  tr('trace-ias-too-big', 'ias 65', '', 1, /ias: 65 is larger than 64/, '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x1000","ias":65,"oas":48}'),
  tr('trace-coherent-type', 'coherentWalk "yes"', '', 1, /coherentWalk must be true or false/, '{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x1000","ias":48,"oas":48,"coherentWalk":"yes"}'),
  tr('trace-number-word', 'iova "abc"', '{"op":"iova_to_phys","iova":"abc"}', 2, /iova: "abc" is not an integer/),
  tr('trace-hex-junk', 'iova "0x12g"', '{"op":"iova_to_phys","iova":"0x12g"}', 2, /iova: "0x12g" is not an integer/),
  tr('trace-above-2p64', 'iova "0x10000000000000000"', '{"op":"iova_to_phys","iova":"0x10000000000000000"}', 2, /does not fit in 64 bits/),
  tr('trace-negative', 'iova -1', '{"op":"iova_to_phys","iova":-1}', 2, /iova: -1 is not an unsigned integer/),
  tr('trace-fraction', 'pgcount 1.5', '{"op":"unmap","iova":"0x1000","pgsize":"0x1000","pgcount":1.5}', 2, /pgcount: 1.5 is not an unsigned integer/),
  tr('trace-unsafe-number', 'iova 9007199254740993 as a JSON number', '{"op":"iova_to_phys","iova":9007199254740993}', 2, /numbers above 2\^53 must be strings/),
  tr('trace-op-unknown', "op 'remap'", '{"op":"remap","iova":"0x1000"}', 2, /unknown op "remap"/),
  tr('trace-op-missing', 'line without op', '{"iova":"0x1000"}', 2, /unknown op undefined/),
  tr('trace-op-unknown-key', "map with key 'size'", '{"op":"map","iova":"0x1000","paddr":"0x1000","pgsize":"0x1000","prot":["read"],"size":1}', 2, /unknown map key "size"/),
  tr('trace-missing-key', 'map without paddr', '{"op":"map","iova":"0x1000","pgsize":"0x1000","prot":["read"]}', 2, /missing required key "paddr"/),
  tr('trace-prot-type', 'prot "read" (not an array)', '{"op":"map","iova":"0x1000","paddr":"0x1000","pgsize":"0x1000","prot":"read"}', 2, /prot must be an array of names/),
  tr('trace-prot-unknown', "prot ['exec']", '{"op":"map","iova":"0x1000","paddr":"0x1000","pgsize":"0x1000","prot":["exec"]}', 2, /unknown prot "exec"/),
  tr('trace-after-free', 'an op after free', '{"op":"free"}\n{"op":"iova_to_phys","iova":"0x0"}', 3, /"free" must be the last op/),
  tr('trace-queued-type', 'unmap queued 1', '{"op":"unmap","iova":"0x1000","pgsize":"0x1000","queued":1}', 2, /queued must be true or false/),
];

export const CLI_CASES: readonly CliCase[] = [
  { id: 'cli-missing-file', surface: 'cli', input: 'replay of a file that does not exist', args: ['/nonexistent/x.trace.jsonl'], exit: 2, match: /\/nonexistent\/x\.trace\.jsonl: .*cannot read: ENOENT/ },
  { id: 'cli-empty-dir', surface: 'cli', input: 'replay of a directory without traces', args: ['DIR'], exit: 2, match: /directory holds no \*\.trace\.jsonl files/ },
  { id: 'cli-unknown-flag', surface: 'cli', input: 'replay --bogus', args: ['--bogus', 'FILE'], text: HDR + '\n', exit: 2, match: /bogus/ },
  // Every trace case also runs through the CLI (exit 2, FILE:LINE in the message).
  ...TRACE_CASES.map((t): CliCase => ({ id: `cli-${t.id}`, surface: 'cli', input: `replay FILE with ${t.input}`, args: ['FILE'], text: t.text, exit: 2, match: new RegExp(`FILE:${t.line}: .*${t.match.source}`) })),
];

export const ALL_CASES: readonly Case[] = [...API_CASES, ...TRACE_CASES, ...CLI_CASES];

/** The expected outcome in words, for the docs table. */
export function describeExpect(c: Case): string {
  if (c.surface === 'trace') return `TraceError at line ${c.line}: /${c.match.source}/`;
  if (c.surface === 'cli') return `exit ${c.exit}, stderr /${c.match.source}/`;
  const e = c.expect;
  if (e.kind === 'errno') return `{ error: '${e.code}' }, message /${e.match.source}/`;
  if (e.kind === 'ret') return `returns ${e.value} (-EINVAL)`;
  return `throws ${e.cls}${e.code ? ` (${e.code})` : ''}: /${e.match.source}/`;
}
