// Changelog lines for `changeset version`: offline, exactly like `@changesets/cli/changelog`,
// plus one rule for packages that have never been released (no CHANGELOG.md yet).
//
// A package's first release is described by its `initial-release-<name>.md` changeset
// ("Initial release." and what the package provides). Changes made before that release
// changed nothing a user has seen, so a changeset that releases only never-released packages
// that have such a changeset adds no line of its own (its bump still counts), and a first
// release lists no "Updated dependencies" for dependencies that are themselves released for
// the first time. CONTRIBUTING.md ("Releases") describes the workflow.
'use strict';

const { existsSync, readFileSync, readdirSync } = require('node:fs');
const { join } = require('node:path');
const base = require('@changesets/cli/changelog').default;

const root = join(__dirname, '..');
const INITIAL = /^initial-release-/;

/** name -> directory of every workspace package (read once). */
let dirs;
function packageDir(name) {
  if (!dirs) {
    dirs = new Map();
    for (const ws of JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).workspaces) {
      const file = join(root, ws, 'package.json');
      if (existsSync(file)) dirs.set(JSON.parse(readFileSync(file, 'utf8')).name, join(root, ws));
    }
  }
  return dirs.get(name);
}

const neverReleased = (name) => {
  const dir = packageDir(name);
  return dir !== undefined && !existsSync(join(dir, 'CHANGELOG.md'));
};

/** Packages named by a pending `initial-release-*.md` changeset (read once). */
let initial;
function hasInitialRelease(name) {
  if (!initial) {
    initial = new Set();
    const folder = join(root, '.changeset');
    for (const file of readdirSync(folder).filter((f) => INITIAL.test(f) && f.endsWith('.md'))) {
      const front = /^---\n([\s\S]*?)\n---/.exec(readFileSync(join(folder, file), 'utf8'))?.[1] ?? '';
      for (const m of front.matchAll(/^\s*["']?([^"':\s]+)["']?\s*:/gm)) initial.add(m[1]);
    }
  }
  return initial.has(name);
}

/** @type {import('@changesets/types').ChangelogFunctions} */
module.exports = {
  async getReleaseLine(changeset, type, options) {
    const released = changeset.releases.filter((r) => r.type !== 'none');
    const foldedIntoInitial =
      !INITIAL.test(changeset.id) && released.length > 0 && released.every((r) => neverReleased(r.name) && hasInitialRelease(r.name));
    return foldedIntoInitial ? '' : base.getReleaseLine(changeset, type, options);
  },
  async getDependencyReleaseLine(changesets, dependenciesUpdated, options) {
    const updated = dependenciesUpdated.filter((d) => !neverReleased(d.name));
    return updated.length === 0 ? '' : base.getDependencyReleaseLine(changesets, updated, options);
  },
};
