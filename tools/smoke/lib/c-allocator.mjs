/**
 * The C allocator part of the smoke test (issue 16), run in the scratch project where the
 * tarballs are installed: build the C examples with the installed CLI's `io-pgtable build-c`
 * (clang --target=wasm32), run a 3-line vitest file per module through the conformance
 * suite, and require the correct examples to pass and the broken ones to fail with their
 * rule. Needs clang + lld (tools/setup/clang.sh installs them in CI); says so in one line
 * when they are missing.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const EXAMPLES = [
  { src: 'c-page-pool/pool.c', rule: null },
  { src: 'c-page-pool/pool-reuse-before-flush.c', rule: 'reuse-before-flush' },
  { src: 'c-reservation/reservation.c', rule: null, reservation: true },
  { src: 'c-reservation/reservation-consumes-unreserved.c', rule: 'run-phase-backing-call', reservation: true },
];

/** A 3-line test file, as the c-allocator README tells an author to write. */
function testFile(wasm, reservation) {
  const adapter = reservation ? ', cReservationAdapter' : '';
  const opts = reservation ? ', { reservation: cReservationAdapter() }' : '';
  return [
    `import { describeAllocatorConformance } from '@io-pgtable/conformance';`,
    `import { loadCAllocator${adapter} } from '@io-pgtable/c-allocator';`,
    `describeAllocatorConformance('${wasm}', ({ backing }) => loadCAllocator(new URL('./${wasm}', import.meta.url), { backing })${opts});`,
    '',
  ].join('\n');
}

export function smokeCAllocator({ scratch, repoRoot, env, fail, log }) {
  const dir = join(scratch, 'c');
  mkdirSync(dir, { recursive: true });
  const bin = join(scratch, 'node_modules/.bin');
  for (const ex of EXAMPLES) {
    const name = ex.src.split('/')[1];
    cpSync(join(repoRoot, 'examples', ex.src), join(dir, name));
    // The broken variants #include their correct sibling.
    if (ex.rule !== null) cpSync(join(repoRoot, 'examples', ex.src.replace(/\/[^/]+$/, ex.reservation ? '/reservation.c' : '/pool.c')), join(dir, ex.reservation ? 'reservation.c' : 'pool.c'));
  }
  for (const ex of EXAMPLES) {
    const name = ex.src.split('/')[1];
    const wasm = name.replace(/\.c$/, '.wasm');
    const built = spawnSync(join(bin, 'io-pgtable'), ['build-c', name, '-o', wasm], { cwd: dir, env, encoding: 'utf8' });
    if (built.status !== 0) fail(`io-pgtable build-c ${name} (from the CLI tarball): ${(built.stderr || built.stdout).trim()}`);
    const test = name.replace(/\.c$/, '.test.mjs');
    writeFileSync(join(dir, test), testFile(wasm, ex.reservation === true));
    const report = join(dir, `${test}.json`);
    const r = spawnSync(join(bin, 'vitest'), ['run', '--root', dir, '--testTimeout=60000', '--reporter=json', `--outputFile.json=${report}`, test], { cwd: dir, env, encoding: 'utf8' });
    let json;
    try {
      json = JSON.parse(readFileSync(report, 'utf8'));
    } catch {
      fail(`vitest on ${test} wrote no report (exit ${r.status}): ${(r.stderr || r.stdout).slice(-2000)}`);
    }
    const failed = json.testResults.flatMap((f) => f.assertionResults.filter((a) => a.status === 'failed'));
    if (ex.rule === null) {
      if (r.status !== 0 || failed.length > 0 || json.numPassedTests === 0) {
        fail(`${name}: expected the conformance suite to pass; ${json.numPassedTests} passed, ${failed.length} failed: ${failed[0]?.failureMessages?.[0]?.slice(0, 300) ?? ''}`);
      }
      log(`${name} -> ${wasm}: conformance suite passed (${json.numPassedTests} tests)`);
    } else {
      const withRule = failed.filter((a) => a.failureMessages.some((m) => m.includes(`${ex.rule}:`)));
      if (r.status === 0 || withRule.length === 0) {
        fail(`${name}: expected failures with rule ${ex.rule}; got ${failed.length} failures (${failed[0]?.failureMessages?.[0]?.slice(0, 300) ?? 'none'})`);
      }
      log(`${name} -> ${wasm}: rejected, ${withRule.length} failing tests name rule ${ex.rule}`);
    }
  }
}
