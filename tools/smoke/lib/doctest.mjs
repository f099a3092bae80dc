/**
 * README doc tests: every ```ts / ```js block of every README runs, as written, against the
 * packed tarballs in a scratch project outside the repository, type-checked with
 * `tsc --strict` (NodeNext resolution: the published .d.ts files).
 *
 * Rules (CONTRIBUTING.md, "README code blocks"):
 *  - Each block is a module of its own (`docs/<readme>/block-L<line>.ts`), run with node as
 *    ESM and, when every package it imports offers `require` and it has no top-level await,
 *    again as CommonJS.
 *  - `<!-- doctest: file PATH -->` on the line before a block writes it to PATH in that
 *    README's folder instead, so blocks can import each other (`../src/index.js`).
 *  - A block that imports `vitest` or `@io-pgtable/conformance` is a test file
 *    (`*.test.ts`): it runs under vitest and must register and pass at least one test.
 *  - `expr; // -> VALUE` and `const x = expr; // -> VALUE` assert the result (`// -> VALUE; a
 *    note` adds words after a semicolon): VALUE is a JS expression; objects match when every key given matches (a subset), anything else must
 *    be identical (Object.is).
 *  - `// prints TEXT` asserts that the block's stdout contains TEXT.
 *  - `<!-- doctest: fragment [why] -->` on the line before a block skips it (say why: e.g. it
 *    needs a file the reader builds); nothing else skips a block.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, relative } from 'node:path';

const LANGS = new Map([
  ['ts', '.ts'],
  ['typescript', '.ts'],
  ['mts', '.ts'],
  ['js', '.js'],
  ['javascript', '.js'],
  ['mjs', '.js'],
]);

/**
 * Every README this repository publishes or shows a user: the root, each publishable workspace
 * package, each example. Private workspaces (test data, tools) are not installed from a tarball.
 */
export function readmes(repoRoot) {
  const root = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  const publishable = root.workspaces.filter((ws) => {
    const file = join(repoRoot, ws, 'package.json');
    return existsSync(file) && !JSON.parse(readFileSync(file, 'utf8')).private;
  });
  const dirs = ['.', ...publishable];
  const examples = join(repoRoot, 'examples');
  if (existsSync(examples)) for (const d of readdirSync(examples).sort()) dirs.push(`examples/${d}`);
  return dirs.map((d) => join(repoRoot, d, 'README.md')).filter((f) => existsSync(f));
}

/** The fenced code blocks of one markdown file, with the doctest marker on the line before each. */
export function extractBlocks(markdown) {
  const lines = markdown.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, lang] = open;
    let end = i + 1;
    while (end < lines.length && !(lines[end].trim().startsWith(fence) && lines[end].trim().replace(/[`~]/g, '') === '')) end++;
    let prev = i - 1;
    while (prev >= 0 && lines[prev].trim() === '') prev--;
    // `<!-- doctest: fragment [why] -->` or `<!-- doctest: file PATH -->`
    const marker = prev >= 0 ? /^\s*<!--\s*doctest:\s*(fragment\b[^>]*?|file\s+(\S+))\s*-->\s*$/.exec(lines[prev]) : null;
    const body = lines.slice(i + 1, end).map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l.trimStart()));
    blocks.push({
      lang: lang.toLowerCase(),
      line: i + 2, // 1-based line of the block's first code line
      code: body,
      fragment: marker?.[1].startsWith('fragment') ? marker[1] : undefined,
      file: marker?.[2],
    });
    i = end;
  }
  return blocks;
}

// `// -> VALUE` or `// -> VALUE; a note`
/** `<!-- doctest: ... -->` lines not directly followed by a code block: a marker that applies to nothing. */
export function orphanMarkers(markdown) {
  const lines = markdown.split('\n');
  const out = [];
  lines.forEach((l, i) => {
    if (!/^\s*<!--\s*doctest:/.test(l)) return;
    let next = i + 1;
    while (next < lines.length && lines[next].trim() === '') next++;
    if (!/^\s*(`{3,}|~{3,})/.test(lines[next] ?? '')) out.push(i + 1);
  });
  return out;
}

const RESULT = /^(\s*)(.*?);?\s*\/\/\s*->\s*([^;]+?)\s*(?:;.*)?$/;
const PRINTS = /\/\/\s*prints\s+(.+?)\s*$/;
const DECL = /^(?:const|let|var)\s+([A-Za-z_$][\w$]*)\s*(?::[^=]+)?=/;

/**
 * Rewrite `// -> VALUE` lines into assertions, on the same line (so tsc and stack traces
 * keep the README's line numbers), and collect `// prints` expectations.
 */
export function instrument(code, readme, firstLine) {
  const prints = [];
  let asserts = 0;
  const out = code.map((line, k) => {
    const p = PRINTS.exec(line);
    if (p) prints.push(p[1]);
    const m = RESULT.exec(line);
    if (!m) return line;
    const [, indent, stmt, expected] = m;
    const at = JSON.stringify(`${readme}:${firstLine + k}`);
    asserts++;
    const decl = DECL.exec(stmt);
    if (decl) return `${indent}${stmt}; __doctest(${decl[1]}, (${expected}), ${at});`;
    return `${indent}__doctest((${stmt}), (${expected}), ${at});`;
  });
  if (asserts > 0) out[0] = `import { expect as __doctest } from '#doctest'; ${out[0]}`;
  return { code: out, prints, asserts };
}

const HELPER_JS = `
const { isDeepStrictEqual, inspect } = require('node:util');
function matches(actual, expected) {
  if (expected !== null && typeof expected === 'object' && !Array.isArray(expected)) {
    if (actual === null || typeof actual !== 'object') return false;
    return Object.keys(expected).every((k) => matches(actual[k], expected[k]));
  }
  if (Array.isArray(expected)) return isDeepStrictEqual(actual, expected);
  return Object.is(actual, expected);
}
exports.expect = function expect(actual, expected, where) {
  if (!matches(actual, expected)) {
    const msg = 'doctest: ' + where + ': got ' + inspect(actual) + ', the README says ' + inspect(expected);
    const e = new Error(msg);
    e.doctest = true;
    throw e;
  }
};
`;
const HELPER_DTS = 'export declare function expect(actual: unknown, expected: unknown, where: string): void;\n';

function tsconfig(outDir) {
  return {
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2022'],
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      moduleDetection: 'force',
      strict: true,
      skipLibCheck: true,
      allowJs: true,
      checkJs: true,
      types: ['node'],
      rootDir: '.',
      outDir,
      pretty: false,
    },
    include: ['docs/**/*'],
  };
}

/**
 * A publishable package's README has an `## Install` section whose `npm install` command names
 * the package and its peer dependencies, and whose text names every package the README's code
 * imports (a reader copies the command, then the code). Returns problems.
 */
export function checkInstallSection(repoRoot, readme, pkg, imported) {
  const rel = relative(repoRoot, readme);
  const text = readFileSync(readme, 'utf8');
  const m = /^## Install\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(text);
  if (!m) return [`${rel}: no "## Install" section`];
  const section = m[1];
  const command = /^npm install .*$/m.exec(section)?.[0] ?? '';
  const problems = [];
  if (!command) problems.push(`${rel}: the Install section has no \`npm install\` line`);
  // `vitest@4` names vitest; `@io-pgtable/core` names itself.
  const names = (t) =>
    new Set(
      t
        .split(/\s+/)
        .filter(Boolean)
        .map((tok) => (tok.lastIndexOf('@') > 0 ? tok.slice(0, tok.lastIndexOf('@')) : tok)),
    );
  const inCommand = names(command);
  const mentioned = (n) => inCommand.has(n) || section.includes(n);
  if (!inCommand.has(pkg.name)) problems.push(`${rel}: \`${command}\` does not install ${pkg.name}`);
  for (const peer of Object.keys(pkg.peerDependencies ?? {})) {
    if (!inCommand.has(peer)) problems.push(`${rel}: the install command does not add the peer dependency ${peer}`);
  }
  for (const name of imported) if (!mentioned(name)) problems.push(`${rel}: the code imports ${name}, which the Install section does not name`);
  if (!/npm pack/.test(section) || !/\.tgz/.test(section)) problems.push(`${rel}: the Install section does not show the tarball route (npm pack + npm install of the .tgz files)`);
  return problems;
}

const slug = (repoRoot, readme) => relative(repoRoot, dirname(readme)).replace(/[\\/]/g, '-') || 'root';

/**
 * Extract, type-check and run every README block against the installed tarballs.
 * `scratch` must already have the tarballs, typescript, vitest and @types/node installed.
 */
export function runDocTests({ repoRoot, scratch, fail, log, env }) {
  const requireOk = (name) => {
    const pkgFile = join(scratch, 'node_modules', name, 'package.json');
    if (!existsSync(pkgFile)) return true; // not one of ours (node:*, relative): no restriction
    const dot = JSON.parse(readFileSync(pkgFile, 'utf8')).exports?.['.'];
    return typeof dot === 'object' && dot !== null && 'require' in dot;
  };

  const units = []; // { readme, line, path (relative to docs root), kind, cjs, prints }
  let skipped = 0;
  const installProblems = [];
  for (const readme of readmes(repoRoot)) {
    const rel = relative(repoRoot, readme);
    const dir = join('docs', slug(repoRoot, readme));
    const importedHere = new Set();
    const pkgFile = join(dirname(readme), 'package.json');
    const pkgJson = dirname(readme) !== repoRoot && existsSync(pkgFile) ? JSON.parse(readFileSync(pkgFile, 'utf8')) : null;
    for (const line of orphanMarkers(readFileSync(readme, 'utf8'))) installProblems.push(`${rel}:${line}: a doctest marker that is not directly followed by a code block`);
    for (const b of extractBlocks(readFileSync(readme, 'utf8'))) {
      const ext = LANGS.get(b.lang);
      if (!ext) continue;
      if (b.fragment) {
        skipped++;
        log(`skip ${rel}:${b.line} (<!-- doctest: ${b.fragment} -->)`);
        continue;
      }
      const text = b.code.join('\n');
      const imports = [...text.matchAll(/\bfrom\s+['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/g)].map(
        (m) => m[1] ?? m[2] ?? m[3],
      );
      const pkgName = (s) => (s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]);
      const isTest = imports.some((s) => s === 'vitest' || s === '@io-pgtable/conformance');
      const path = join(dir, b.file ?? `block-L${b.line}${isTest ? '.test' : ''}${ext}`);
      if (b.file && isTest && !/\.test\.[cm]?[jt]s$/.test(b.file)) fail(`${rel}:${b.line}: a test block's file must be named *.test.ts (got ${b.file})`);
      const { code, prints } = instrument(b.code, rel, b.line);
      mkdirSync(join(scratch, dirname(path)), { recursive: true });
      writeFileSync(join(scratch, path), `${code.join('\n')}\n`);
      const topLevelAwait = b.code.some((l) => /^(?:(?:const|let|var)\s[^=]*=\s*)?await\b/.test(l) || /^for\s+await\b/.test(l));
      const packages = imports.filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !s.startsWith('#')).map(pkgName);
      for (const p of packages) importedHere.add(p);
      units.push({
        readme: rel,
        line: b.line,
        path,
        kind: isTest ? 'test' : 'node',
        cjs: !isTest && !topLevelAwait && packages.every(requireOk),
        prints,
      });
    }
    // Fragments count too: a reader copies them as well.
    for (const b of extractBlocks(readFileSync(readme, 'utf8')).filter((x) => LANGS.has(x.lang) && x.fragment)) {
      for (const m of b.code.join('\n').matchAll(/\bfrom\s+['"]([^'"./#][^'"]*)['"]/g)) if (!m[1].startsWith('node:')) importedHere.add(m[1].startsWith('@') ? m[1].split('/').slice(0, 2).join('/') : m[1].split('/')[0]);
    }
    if (pkgJson && !pkgJson.private && !readme.includes(`${join(repoRoot, 'examples')}`)) installProblems.push(...checkInstallSection(repoRoot, readme, pkgJson, importedHere));
  }
  if (units.length === 0) fail('no README code blocks found');
  if (installProblems.length) fail(`README install sections and markers:\n  ${installProblems.join('\n  ')}`);

  // The same sources as CommonJS, where every import offers `require`.
  const cjsRoot = join(scratch, 'cjs');
  mkdirSync(cjsRoot, { recursive: true });
  writeFileSync(join(cjsRoot, 'package.json'), JSON.stringify({ type: 'commonjs', imports: { '#doctest': './doctest-helper.cjs' } }, null, 2));
  writeFileSync(join(cjsRoot, 'doctest-helper.cjs'), HELPER_JS);
  writeFileSync(join(cjsRoot, 'doctest-helper.d.cts'), HELPER_DTS);
  writeFileSync(join(cjsRoot, 'tsconfig.json'), JSON.stringify(tsconfig('out'), null, 2));
  const cjsUnits = units.filter((u) => u.cjs);
  for (const u of cjsUnits) cpSync(join(scratch, u.path), join(cjsRoot, u.path));

  writeFileSync(join(scratch, 'doctest-helper.cjs'), HELPER_JS);
  writeFileSync(join(scratch, 'doctest-helper.d.cts'), HELPER_DTS);
  writeFileSync(join(scratch, 'tsconfig.json'), JSON.stringify({ ...tsconfig('out'), exclude: ['cjs'] }, null, 2));
  writeFileSync(
    join(scratch, 'vitest.config.mjs'),
    "export default { test: { include: ['docs/**/*.test.ts', 'docs/**/*.test.js'], testTimeout: 60000, hookTimeout: 60000 } };\n",
  );

  /** tsc output with every generated file:line turned back into README:line. */
  const byPath = new Map(units.map((u) => [u.path.replace(/\\/g, '/'), u]));
  const mapTsc = (text, prefix) =>
    text.replace(/^(\S+?)\((\d+),(\d+)\)/gm, (all, file, l, c) => {
      const u = byPath.get(file.replace(/\\/g, '/').replace(prefix, ''));
      return u ? `${u.readme}:${u.line + Number(l) - 1}:${c} (${file})` : all;
    });
  const tscBin = join(scratch, 'node_modules/.bin/tsc');
  for (const [label, cwd, prefix] of [
    ['ESM', scratch, ''],
    ['CJS', cjsRoot, ''],
  ]) {
    if (label === 'CJS' && cjsUnits.length === 0) continue;
    const res = spawnSync(tscBin, ['-p', 'tsconfig.json'], { cwd, env, encoding: 'utf8' });
    if (res.status !== 0) fail(`tsc --strict (${label}) rejects README code:\n${mapTsc(`${res.stdout}${res.stderr}`, prefix)}`);
  }
  log(`tsc --strict: ${units.length} blocks type-check as ESM, ${units.filter((u) => u.cjs).length} also as CJS`);

  const problems = [];
  const runNode = (u, root, label) => {
    const js = join(root, 'out', u.path.replace(/\.ts$/, '.js'));
    const res = spawnSync(process.execPath, [js], { cwd: root, env, encoding: 'utf8', timeout: 120_000 });
    const where = `${u.readme}:${u.line} (${label})`;
    if (res.status !== 0) {
      problems.push(`${where} exited with ${res.status ?? res.signal}:\n${(res.stderr || res.stdout).trim().split('\n').slice(0, 12).join('\n')}`);
      return;
    }
    for (const p of u.prints) if (!res.stdout.includes(p)) problems.push(`${where}: stdout does not contain "${p}" (the README says it prints it):\n${res.stdout}`);
  };
  let esmRuns = 0;
  let cjsRuns = 0;
  for (const u of units.filter((x) => x.kind === 'node')) {
    runNode(u, scratch, 'ESM');
    esmRuns++;
    if (u.cjs) {
      runNode(u, cjsRoot, 'CJS');
      cjsRuns++;
    }
  }

  const tests = units.filter((u) => u.kind === 'test');
  let testCount = 0;
  if (tests.length) {
    const report = join(scratch, 'vitest-report.json');
    spawnSync(join(scratch, 'node_modules/.bin/vitest'), ['run', '--reporter=json', `--outputFile.json=${report}`, ...tests.map((u) => u.path)], {
      cwd: scratch,
      env,
      encoding: 'utf8',
    });
    const r = existsSync(report) ? JSON.parse(readFileSync(report, 'utf8')) : { testResults: [] };
    for (const u of tests) {
      const file = r.testResults.find((t) => t.name.endsWith(u.path.replace(/\\/g, '/')));
      const passed = file?.assertionResults.filter((a) => a.status === 'passed').length ?? 0;
      const failed = file?.assertionResults.filter((a) => a.status !== 'passed') ?? [];
      testCount += passed;
      if (!file || passed === 0 || failed.length || file.status !== 'passed') {
        const why = failed.slice(0, 3).map((a) => `${a.fullName}: ${(a.failureMessages ?? []).join(' ').split('\n')[0]}`).join('\n  ') + (failed.length > 3 ? `\n  ... and ${failed.length - 3} more` : '') || file?.message || 'no tests ran';
        problems.push(`${u.readme}:${u.line} (vitest): ${passed} passed, ${failed.length} failed\n  ${why}`);
      }
    }
  }
  if (problems.length) fail(`README code blocks fail:\n\n${problems.join('\n\n')}`);
  return { blocks: units.length, skipped, esmRuns, cjsRuns, testFiles: tests.length, testCount };
}
