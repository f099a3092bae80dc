#!/usr/bin/env node
/**
 * Packaging smoke test: what a user who only has npm gets.
 *
 *  1. `npm pack` every publishable workspace package into a temp directory.
 *  2. Copy examples/counting-allocator (a third-party plugin) to a scratch project under
 *     os.tmpdir() and `npm install` the tarballs there, plus the example's own devDependencies.
 *  3. Prove nothing in the scratch node_modules resolves back into this repository.
 *  4. Import every package from ESM and, where its exports offer `require`, from CJS, and
 *     exercise real exports (probe.mjs).
 *  5. Type-check the example against the published .d.ts files and run the conformance suite
 *     FROM ITS TARBALL against the example plugin.
 *  6. The same for examples/flush-token-plugin (a plugin using contract v2's flush token),
 *     in a scratch project of its own.
 *
 * Options: --keep (leave the scratch directory for inspection; it is always kept on failure).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { smokeCAllocator } from './lib/c-allocator.mjs';
import { runDocTests } from './lib/doctest.mjs';
import { checkReleasePlan } from './lib/release-plan.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');
const exampleDir = join(repoRoot, 'examples/counting-allocator');
const keep = process.argv.includes('--keep');

const started = performance.now();
let stepStarted = 0;
const secs = (ms) => `${(ms / 1000).toFixed(1)}s`;
/** Print a step header, and how long the previous step took. */
function step(title) {
  const now = performance.now();
  if (stepStarted) console.log(`   (${secs(now - stepStarted)})`);
  stepStarted = now;
  console.log(`\n== ${title}`);
}

class SmokeError extends Error {}
function fail(message) {
  throw new SmokeError(message);
}

/**
 * Child processes must not inherit npm's per-run configuration: `npm run smoke` exports
 * npm_config_* (including the workspace prefix), which would point the scratch install back
 * at this repository.
 */
const cleanEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'NODE_PATH' && k !== 'INIT_CWD'),
);

function run(cmd, args, cwd, { capture = false } = {}) {
  const res = spawnSync(cmd, args, { cwd, env: cleanEnv, encoding: 'utf8', stdio: capture ? 'pipe' : 'inherit' });
  if (res.error) fail(`${cmd} ${args.join(' ')}: ${res.error.message}`);
  if (res.status !== 0) {
    if (capture) process.stderr.write(`${res.stdout ?? ''}${res.stderr ?? ''}`);
    fail(`\`${cmd} ${args.join(' ')}\` exited with ${res.status ?? res.signal} (in ${cwd})`);
  }
  return res.stdout ?? '';
}

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

/** Publishable packages: every non-private workspace of the root package.json. */
function publishablePackages() {
  const root = readJson(join(repoRoot, 'package.json'));
  const out = [];
  for (const ws of root.workspaces) {
    const pkg = readJson(join(repoRoot, ws, 'package.json'));
    if (!pkg.private) out.push({ dir: join(repoRoot, ws), ws, pkg });
  }
  return out;
}

/** nx builds exactly the projects smoke depends on; a missing one would be packed stale or unbuilt. */
function checkNxDependencies(packages) {
  const smoke = readJson(join(here, 'package.json'));
  const declared = new Set([...Object.keys(smoke.devDependencies ?? {}), ...(smoke.nx?.implicitDependencies ?? [])]);
  const missing = packages.map((p) => p.pkg.name).filter((n) => !declared.has(n));
  if (missing.length) {
    fail(`tools/smoke/package.json does not depend on ${missing.join(', ')}; add them to nx.implicitDependencies so \`nx run @io-pgtable/smoke:smoke\` builds them first`);
  }
}

const REPOSITORY = 'git+https://github.com/io-pgtable/io-pgtable.git';

/** The metadata a registry page and `npm bugs`/`npm repo` need, pointing at this package's directory. */
function checkMetadata(pkg, ws) {
  const problems = [];
  if (pkg.repository?.type !== 'git' || pkg.repository?.url !== REPOSITORY) problems.push(`repository must be { type: 'git', url: '${REPOSITORY}', ... }`);
  if (pkg.repository?.directory !== ws) problems.push(`repository.directory must be '${ws}'`);
  if (typeof pkg.homepage !== 'string' || !pkg.homepage.includes(ws)) problems.push(`homepage must point at ${ws}`);
  if (typeof pkg.bugs?.url !== 'string') problems.push('bugs.url is missing');
  if (!Array.isArray(pkg.keywords) || pkg.keywords.length === 0) problems.push('keywords are missing');
  if (pkg.license !== 'MIT') problems.push(`license is ${pkg.license}, want MIT`);
  if (problems.length) fail(`${pkg.name} package.json: ${problems.join('; ')}`);
}

/**
 * Every file that `files`/exports promise must be in the tarball, with the package's LICENSE
 * (identical to the repository's) and README, and nothing from test/ or src/, and no source
 * maps (the build emits none: tools/tsup.base.ts).
 */
function checkTarballContents(pack, pkg, dir) {
  const files = new Set(pack.files.map((f) => f.path));
  const problems = [];
  const wanted = new Set(['package.json', 'README.md', 'LICENSE']);
  const collect = (node) => {
    if (typeof node === 'string') wanted.add(node.replace(/^\.\//, ''));
    else if (node && typeof node === 'object') Object.values(node).forEach(collect);
  };
  collect(pkg.exports);
  collect(pkg.bin);
  for (const f of wanted) if (!files.has(f)) problems.push(`missing ${f}`);
  for (const f of files) if (/^(test|src|bench)\//.test(f) || f.endsWith('.tsbuildinfo')) problems.push(`ships ${f}`);
  for (const f of files) if (f.endsWith('.map')) problems.push(`ships a source map (${f})`);
  // Only the build's own output: the entry points, their chunks and declarations (no reports, temp files).
  for (const f of files) if (f.startsWith('dist/') && !/^dist\/[\w.-]+\.(c?js|d\.c?ts)$/.test(f)) problems.push(`ships ${f}, which is not build output`);
  if (existsSync(join(dir, 'LICENSE')) && readFileSync(join(dir, 'LICENSE'), 'utf8') !== readFileSync(join(repoRoot, 'LICENSE'), 'utf8')) {
    problems.push(`${relative(repoRoot, dir)}/LICENSE differs from the repository's LICENSE`);
  }
  if (problems.length) fail(`${pkg.name} tarball: ${problems.join('; ')}`);
}

/** Walk node_modules; every symlink must resolve inside the scratch project. */
function checkNoLinksIntoRepo(scratch) {
  const repoReal = realpathSync(repoRoot) + sep;
  let links = 0;
  let entries = 0;
  const walk = (dir) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const st = lstatSync(p);
      entries++;
      if (st.isSymbolicLink()) {
        links++;
        let target;
        try {
          target = realpathSync(p);
        } catch {
          fail(`dangling symlink ${p}`);
        }
        if ((target + sep).startsWith(repoReal)) fail(`${p} resolves into the repository (${target})`);
        if (!(target + sep).startsWith(realpathSync(scratch) + sep)) fail(`${p} resolves outside the scratch project (${target})`);
      } else if (st.isDirectory()) {
        walk(p);
      }
    }
  };
  walk(join(scratch, 'node_modules'));
  return { entries, links };
}

/** Each @io-pgtable package is installed once, from its tarball (no registry copy, no nested copy). */
function checkInstalledFromTarballs(scratch, packages, tarballDir) {
  const lock = readJson(join(scratch, 'package-lock.json'));
  for (const { pkg } of packages) {
    const paths = Object.keys(lock.packages).filter((k) => k.endsWith(`node_modules/${pkg.name}`));
    if (paths.length !== 1) fail(`${pkg.name} is installed ${paths.length} times: ${paths.join(', ')}`);
    const entry = lock.packages[paths[0]];
    if (entry.version !== pkg.version) fail(`${pkg.name}: installed ${entry.version}, packed ${pkg.version}`);
    const resolved = entry.resolved ?? '';
    const tarball = resolve(scratch, resolved.replace(/^file:/, ''));
    if (!resolved.startsWith('file:') || !tarball.startsWith(tarballDir + sep)) {
      fail(`${pkg.name} did not come from its tarball (resolved: ${resolved || 'nothing'})`);
    }
  }
}

/**
 * Examples other than counting-allocator (which has its own steps below): every directory of
 * examples/ with a package.json. Each runs with `npm test` (build, then run and check itself).
 */
function runnableExamples() {
  const dir = join(repoRoot, 'examples');
  return readdirSync(dir)
    .filter((d) => d !== 'counting-allocator' && existsSync(join(dir, d, 'package.json')))
    .sort();
}

/** The @io-pgtable packages an example declares, and theirs, transitively: all must come from tarballs. */
function tarballClosure(pkg, packages) {
  const byName = new Map(packages.map((p) => [p.pkg.name, p.pkg]));
  const out = new Set();
  const visit = (deps) => {
    for (const name of Object.keys(deps ?? {})) {
      if (!byName.has(name) || out.has(name)) continue;
      out.add(name);
      visit(byName.get(name).dependencies);
      visit(byName.get(name).peerDependencies);
    }
  };
  visit(pkg.dependencies);
  visit(pkg.devDependencies);
  visit(pkg.peerDependencies);
  if (out.size === 0) fail(`${pkg.name} declares no @io-pgtable package`);
  return [...out].sort();
}

function main() {
  step('Pack every publishable package');
  const packages = publishablePackages();
  checkNxDependencies(packages);
  const tmp = mkdtempSync(join(tmpdir(), 'io-pgtable-smoke-'));
  const tarballDir = join(tmp, 'tarballs');
  const scratch = join(tmp, 'counting-allocator');
  mkdirSync(tarballDir);
  let ok = false;
  try {
    for (const p of packages) {
      if (!existsSync(join(p.dir, 'dist'))) fail(`${p.pkg.name} has no dist/; build first (npx nx run @io-pgtable/smoke:smoke builds it)`);
    }
    const workspaceArgs = packages.flatMap((p) => ['--workspace', p.ws]);
    const packs = JSON.parse(
      run('npm', ['pack', '--json', '--silent', '--pack-destination', tarballDir, ...workspaceArgs], repoRoot, { capture: true }),
    );
    const tarballs = [];
    const tarballOf = new Map();
    const sizes = [];
    for (const p of packages) {
      const pack = packs.find((x) => x.name === p.pkg.name);
      if (!pack) fail(`npm pack produced nothing for ${p.pkg.name}`);
      checkMetadata(p.pkg, p.ws);
      checkTarballContents(pack, p.pkg, p.dir);
      tarballs.push(join(tarballDir, pack.filename));
      tarballOf.set(p.pkg.name, join(tarballDir, pack.filename));
      sizes.push(`| \`${p.pkg.name}\` | ${(pack.size / 1024).toFixed(1)} KiB | ${(pack.unpackedSize / 1024).toFixed(1)} KiB | ${pack.entryCount} |`);
    }
    console.log('   every tarball has LICENSE and README, no source maps, no src/ or test/; package.json metadata complete');
    console.log('   sizes for the README package table (packed, unpacked, files):');
    for (const row of sizes) console.log(`   ${row}`);

    step('What `changeset version` would release (in a scratch copy)');
    for (const line of checkReleasePlan({ repoRoot, scratch: join(tmp, 'release-plan'), run, fail })) console.log(`   ${line}`);
    console.log('   private packages: not versioned');

    step(`Install the tarballs into a scratch copy of examples/counting-allocator (${scratch})`);
    cpSync(exampleDir, scratch, { recursive: true, filter: (src) => !src.includes(`${sep}node_modules`) });
    cpSync(join(here, 'probe.mjs'), join(scratch, 'probe.mjs'));
    // Give the scratch project a real lockfile of its own: npm must not find a workspace above it.
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], scratch);

    step('Check the scratch install is self-contained');
    const { entries, links } = checkNoLinksIntoRepo(scratch);
    checkInstalledFromTarballs(scratch, packages, tarballDir);
    console.log(`   ${entries} node_modules entries, ${links} symlinks, none into ${repoRoot}; every @io-pgtable package installed once, from its tarball`);

    step('Import every package from ESM and CJS and use it');
    const probe = JSON.parse(run('node', ['probe.mjs', JSON.stringify(packages.map((p) => p.pkg.name))], scratch, { capture: true }));
    for (const line of probe.lines) console.log(`   ${line}`);

    step('Type-check the example plugin and run the conformance suite from its tarball');
    if (!probe.conformanceReady) {
      console.log('   !! SKIPPED: @io-pgtable/conformance does not export describeAllocatorConformance yet.');
      console.log('   !! The example plugin was not type-checked or tested.');
    } else {
      run(join(scratch, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], scratch);
      console.log('   tsc -p tsconfig.json: no errors (NodeNext resolution against the published .d.ts files)');
      const report = join(tmp, 'vitest.json');
      run(join(scratch, 'node_modules/.bin/vitest'), ['run', '--reporter=dot', '--reporter=json', `--outputFile.json=${report}`], scratch);
      const r = readJson(report);
      // A second vitest copy registers zero tests without failing (G7), so count them.
      if (!r.success || r.numFailedTests !== 0 || r.numPassedTests === 0) {
        fail(`conformance run: ${r.numPassedTests} passed, ${r.numFailedTests} failed, success=${r.success}`);
      }
      console.log(`   conformance suite from the tarball: ${r.numPassedTests} tests passed in ${r.numTotalTestSuites} suites against withCounting()`);
      const vitests = execFileSync('npm', ['ls', 'vitest', '--all', '--parseable'], { cwd: scratch, env: cleanEnv, encoding: 'utf8' })
        .trim()
        .split('\n')
        .filter(Boolean);
      if (vitests.length !== 1) fail(`expected one vitest in the scratch project, found ${vitests.length}: ${vitests.join(', ')}`);
      step('C allocators: build-c the C examples, run the suite on each from the tarballs');
      smokeCAllocator({ scratch, repoRoot, env: cleanEnv, fail, log: (l) => console.log(`   ${l}`) });
    }
    for (const ex of runnableExamples()) {
      step(`examples/${ex}: install its @io-pgtable dependencies from the tarballs and run \`npm test\``);
      const dir = join(tmp, `example-${ex}`);
      cpSync(join(repoRoot, 'examples', ex), dir, { recursive: true, filter: (src) => !src.includes(`${sep}node_modules`) && !src.includes(`${sep}dist`) });
      const needed = tarballClosure(readJson(join(dir, 'package.json')), packages);
      run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...needed.map((n) => tarballOf.get(n))], dir);
      checkNoLinksIntoRepo(dir);
      const out = run('npm', ['test', '--silent'], dir, { capture: true });
      for (const line of out.trim().split('\n')) console.log(`   ${line}`);
      console.log(`   ok: ${needed.length} packages from tarballs (${needed.join(', ')})`);
    }

    step('README code blocks: type-check and run every ts/js block against the tarballs');
    const docs = join(tmp, 'doctest');
    mkdirSync(docs);
    writeFileSync(
      join(docs, 'package.json'),
      JSON.stringify({ name: 'io-pgtable-doctest', private: true, type: 'module', imports: { '#doctest': './doctest-helper.cjs' } }, null, 2),
    );
    const devVersions = readJson(join(repoRoot, 'package.json')).devDependencies;
    const tools = ['typescript', 'vitest', '@types/node'].map((n) => `${n}@${devVersions[n]}`);
    run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs, ...tools], docs);
    const r = runDocTests({ repoRoot, scratch: docs, fail, log: (l) => console.log(`   ${l}`), env: cleanEnv });
    console.log(
      `   ${r.blocks} blocks: ${r.esmRuns} ran as ESM and ${r.cjsRuns} as CJS, ${r.testFiles} test files (${r.testCount} tests) under vitest; ${r.skipped} marked fragments skipped`,
    );

    ok = true;
  } finally {
    step('Done');
    if (ok && !keep) rmSync(tmp, { recursive: true, force: true });
    else console.log(`   scratch project kept at ${tmp}`);
    console.log(`   smoke test ${ok ? 'passed' : 'FAILED'} in ${secs(performance.now() - started)}`);
  }
}

try {
  main();
} catch (err) {
  console.error(`\nSMOKE TEST FAILED: ${err instanceof SmokeError ? err.message : (err?.stack ?? err)}`);
  process.exitCode = 1;
}
