/**
 * What the next `changeset version` would write, checked in a scratch copy (never in the
 * checkout): the workspace's package.json files, CHANGELOGs and .changeset/, with this
 * repository's node_modules linked in and an empty git repository (changesets asks git which
 * commit added each changeset).
 *
 * Rules (CONTRIBUTING.md, "Releases"): a package that was never released (no CHANGELOG.md)
 * is first released as FIRST_RELEASE with a changelog that says "Initial release" and lists
 * no pre-release changes or "Updated dependencies"; private packages are not versioned.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const FIRST_RELEASE = '1.0.0';

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

export function checkReleasePlan({ repoRoot, scratch, run, fail }) {
  const root = readJson(join(repoRoot, 'package.json'));
  mkdirSync(scratch, { recursive: true });
  cpSync(join(repoRoot, '.changeset'), join(scratch, '.changeset'), { recursive: true });
  writeFileSync(join(scratch, 'package.json'), JSON.stringify(root, null, 2));
  symlinkSync(join(repoRoot, 'node_modules'), join(scratch, 'node_modules'), 'dir');
  const before = new Map();
  for (const ws of root.workspaces) {
    if (!existsSync(join(repoRoot, ws, 'package.json'))) continue;
    mkdirSync(join(scratch, ws), { recursive: true });
    for (const f of ['package.json', 'CHANGELOG.md']) {
      if (existsSync(join(repoRoot, ws, f))) cpSync(join(repoRoot, ws, f), join(scratch, ws, f));
    }
    before.set(ws, { pkg: readJson(join(repoRoot, ws, 'package.json')), released: existsSync(join(repoRoot, ws, 'CHANGELOG.md')) });
  }
  run('git', ['init', '-q'], scratch);
  run(join(repoRoot, 'node_modules/.bin/changeset'), ['version'], scratch, { capture: true });

  const lines = [];
  const problems = [];
  for (const [ws, { pkg, released }] of before) {
    const after = readJson(join(scratch, ws, 'package.json'));
    if (pkg.private) {
      if (after.version !== pkg.version) problems.push(`${pkg.name} is private but would be versioned ${pkg.version} -> ${after.version}`);
      if (existsSync(join(scratch, ws, 'CHANGELOG.md'))) problems.push(`${pkg.name} is private but would get a CHANGELOG.md`);
      continue;
    }
    if (released) {
      lines.push(`${pkg.name}: ${pkg.version} -> ${after.version}`);
      continue;
    }
    const changelog = existsSync(join(scratch, ws, 'CHANGELOG.md')) ? readFileSync(join(scratch, ws, 'CHANGELOG.md'), 'utf8') : '';
    if (after.version !== FIRST_RELEASE) problems.push(`${pkg.name} (never released) would be released as ${after.version}, want ${FIRST_RELEASE}: it needs a major .changeset/initial-release-*.md`);
    if (!changelog.includes(`## ${FIRST_RELEASE}`) || !/^- (\w+: )?Initial release\b/m.test(changelog)) problems.push(`${pkg.name}: the first CHANGELOG.md does not say "Initial release" under ## ${FIRST_RELEASE}`);
    for (const noise of ['Minor Changes', 'Patch Changes', 'Updated dependencies']) {
      if (changelog.includes(noise)) problems.push(`${pkg.name}: the first CHANGELOG.md lists "${noise}"`);
    }
    lines.push(`${pkg.name}: first release ${after.version}, CHANGELOG.md "Initial release"`);
  }
  if (problems.length) fail(`changeset version would write:\n  ${problems.join('\n  ')}`);
  return lines;
}
