/**
 * Runs INSIDE the scratch project that smoke.mjs installs the tarballs into, so every
 * import below resolves from that project's node_modules, exactly as for an npm user.
 * Usage: node probe.mjs '["@io-pgtable/core", ...]'. Prints one JSON object on stdout.
 */
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const names = JSON.parse(process.argv[2] ?? '[]');
const lines = [];

function check(cond, message) {
  if (!cond) throw new Error(message);
}

/** Does the package's exports map offer a `require` condition for "."? */
function offersRequire(name) {
  const dot = require(`${name}/package.json`).exports?.['.'];
  return typeof dot === 'object' && dot !== null && 'require' in dot;
}

const exportNames = (mod) => Object.keys(mod).filter((k) => k !== 'default' && k !== 'module.exports').sort();

/**
 * Real use of allocator-api + core together, once per module format: a counting decorator
 * (definePlugin) over the system allocator, a 48-bit ARM64 stage-1 table, map four 4 KiB
 * pages, translate, unmap, free; every table must come back.
 */
function exercise(api, core, format) {
  check(api.MIN_TABLE_ALLOC === 64, `${format}: allocator-api MIN_TABLE_ALLOC is ${api.MIN_TABLE_ALLOC}`);
  check(new api.AllocatorMisuseError('x', 'double-free', 'm') instanceof Error, `${format}: AllocatorMisuseError is not an Error`);
  const system = core.createSystemAllocator();
  let allocs = 0;
  let frees = 0;
  const counting = api.definePlugin(system, {
    caps: { name: 'smoke-counting' },
    alloc: (size, ctx) => (allocs++, system.alloc(size, ctx)),
    free: (paddr, size) => (frees++, system.free(paddr, size)),
    stats: () => ({ ...system.stats(), backingCalls: allocs }),
  });
  const pt = core.createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 }, { allocator: counting });
  const iova = 0x1_2340_0000;
  const paddr = 0x8_0000_0000;
  const mapped = pt.mapPages(iova, paddr, 0x1000, 4, ['read', 'write']);
  check(mapped.mapped === 0x4000 && !mapped.error, `${format}: mapPages returned ${JSON.stringify(mapped)}`);
  const pa = pt.iovaToPhys(iova + 0x2abc);
  check(pa === paddr + 0x2abc, `${format}: iovaToPhys gave 0x${pa.toString(16)}, want 0x${(paddr + 0x2abc).toString(16)}`);
  check(pt.mapPages(iova, paddr, 0x1000, 1, ['read']).error === 'EEXIST', `${format}: remap did not fail with EEXIST`);
  const unmapped = pt.unmapPages(iova, 0x1000, 4);
  check(unmapped.unmapped === 0x4000, `${format}: unmapPages returned ${JSON.stringify(unmapped)}`);
  check(pt.iovaToPhys(iova) === 0, `${format}: iova still translates after unmap`);
  pt.free();
  api.assertAccounting(counting);
  check(allocs === 4 && frees === 4, `${format}: ${allocs} table allocations and ${frees} frees, want 4 and 4 (PGD + levels 1-3)`);
  check(system.stats().liveTables === 0, `${format}: ${system.stats().liveTables} tables still live after free()`);
  return `map/iovaToPhys/unmap/free through definePlugin over createSystemAllocator: 4 tables allocated and freed`;
}

const result = { lines, conformanceReady: false };
const esm = {};
const cjs = {};
for (const name of names) {
  esm[name] = await import(name);
  const e = exportNames(esm[name]);
  let line = `${name}: ESM ${e.length} exports`;
  if (offersRequire(name)) {
    cjs[name] = require(name);
    const c = exportNames(cjs[name]);
    check(JSON.stringify(e) === JSON.stringify(c), `${name}: ESM and CJS export different names:\n  esm ${e}\n  cjs ${c}`);
    line += `, CJS identical`;
  } else {
    line += ', ESM-only (no require condition)';
  }
  if (e.length === 0) line += '  !! WARNING: exports nothing yet (stub)';
  lines.push(line);
}

const API = '@io-pgtable/allocator-api';
const CORE = '@io-pgtable/core';
check(names.includes(API) && names.includes(CORE), 'allocator-api and core must be among the packed packages');
lines.push(`ESM: ${exercise(esm[API], esm[CORE], 'ESM')}`);
lines.push(`CJS: ${exercise(cjs[API], cjs[CORE], 'CJS')}`);

const CONF = '@io-pgtable/conformance';
if (names.includes(CONF)) {
  result.conformanceReady = typeof esm[CONF].describeAllocatorConformance === 'function';
  lines.push(`${CONF}: describeAllocatorConformance ${result.conformanceReady ? 'is a function' : 'is MISSING'}`);
}

const CLI = '@io-pgtable/cli';
if (names.includes(CLI)) {
  // Runs the installed bin shim, so a missing shebang or executable bit fails here.
  const bin = spawnSync('node_modules/.bin/io-pgtable', ['--help'], { encoding: 'utf8' });
  check(bin.status === 0, `io-pgtable --help exited with ${bin.status ?? bin.error?.message}: ${bin.stderr}`);
  const first = bin.stdout.trim().split('\n')[0] ?? '';
  lines.push(`${CLI}: bin io-pgtable --help exits 0${first ? `: "${first}"` : ' (prints nothing yet)'}`);
}

process.stdout.write(JSON.stringify(result));
