#!/usr/bin/env bash
# Scaffold a publishable allocator plugin package with the files every package shares, a
# pass-through plugin built with definePlugin, and its conformance test, then register it as
# an npm workspace and as a dependency of the smoke test.
#
# Usage: tools/new-package.sh DIR NAME "description"
#   e.g. tools/new-package.sh packages/my-plugin @io-pgtable/my-plugin "Does one thing well"
# Afterwards: npm install && npx nx run NAME:test
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 DIR NAME \"description\"   (e.g. packages/my-plugin @io-pgtable/my-plugin \"...\")" >&2
  exit 2
fi
dir=${1%/}; name=$2; desc=$3
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [[ -e "$dir" ]]; then
  echo "$dir already exists" >&2
  exit 1
fi
if [[ ! "$name" =~ ^@io-pgtable/[a-z0-9-]+$ ]]; then
  echo "NAME must look like @io-pgtable/my-plugin" >&2
  exit 1
fi
# my-plugin -> withMyPlugin
base=${name#@io-pgtable/}
fn=$(BASE="$base" node -p '"with" + process.env.BASE.replace(/(^|-)([a-z0-9])/g, (_, _d, c) => c.toUpperCase())')
api_version=$(node -p "require('./packages/allocator-api/package.json').version")
core_version=$(node -p "require('./packages/core/package.json').version")
conf_version=$(node -p "require('./packages/conformance/package.json').version")

mkdir -p "$dir/src" "$dir/test"

DIR="$dir" NAME="$name" DESC="$desc" API="^$api_version" CORE="^$core_version" CONF="^$conf_version" node -e '
const { NAME, DESC, API, CORE, CONF } = process.env;
const pkg = {
  name: NAME,
  version: "0.1.0",
  description: DESC,
  license: "MIT",
  author: "The io-pgtable authors",
  repository: { type: "git", url: "git+https://github.com/io-pgtable/io-pgtable.git", directory: process.env.DIR },
  homepage: `https://github.com/io-pgtable/io-pgtable/tree/main/${process.env.DIR}#readme`,
  bugs: { url: "https://github.com/io-pgtable/io-pgtable/issues" },
  keywords: ["iommu", "io-pgtable", "page-table", "allocator", "plugin"],
  type: "module",
  sideEffects: false,
  engines: { node: ">=20.19" },
  files: ["dist"],
  exports: {
    ".": {
      import: { types: "./dist/index.d.ts", default: "./dist/index.js" },
      require: { types: "./dist/index.d.cts", default: "./dist/index.cjs" },
    },
    "./package.json": "./package.json",
  },
  main: "./dist/index.cjs",
  module: "./dist/index.js",
  types: "./dist/index.d.cts",
  scripts: {
    build: "tsup",
    typecheck: "tsc -p tsconfig.json",
    test: "vitest run",
    "lint:pkg": "publint --strict && attw --pack .",
  },
  dependencies: { "@io-pgtable/allocator-api": API },
  devDependencies: { "@io-pgtable/conformance": CONF, "@io-pgtable/core": CORE },
  publishConfig: { access: "public" },
};
process.stdout.write(JSON.stringify(pkg, null, 2) + "\n");
' > "$dir/package.json"

# npm puts a package's own LICENSE into its tarball (the smoke test checks it matches the root one).
cp LICENSE "$dir/LICENSE"
# Its first release: 1.0.0 and an "Initial release." changelog (CONTRIBUTING.md, "Releases").
printf -- '---\n"%s": major\n---\n\nInitial release. %s\n' "$name" "$desc" > ".changeset/initial-release-$base.md"

depth=$(echo "$dir" | awk -F/ '{ s = ""; for (i = 1; i <= NF; i++) s = s "../"; print s }')

cat > "$dir/tsup.config.ts" <<TS
import { defineConfig } from 'tsup';
import { packageBuild } from '${depth}tools/tsup.base';

export default defineConfig(packageBuild());
TS
cat > "$dir/vitest.config.ts" <<TS
import { sharedTestConfig } from '${depth}vitest.shared.ts';

export default sharedTestConfig;
TS
cat > "$dir/tsconfig.json" <<TS
{
  "extends": "${depth}tsconfig.base.json",
  "compilerOptions": { "noEmit": true },
  "include": ["src", "test", "bench"]
}
TS
cat > "$dir/src/index.ts" <<TS
import { definePlugin, type TableAllocator } from '@io-pgtable/allocator-api';

/**
 * ${desc}
 *
 * Starts as a pass-through decorator: definePlugin inherits \`inner\`'s capabilities,
 * forwards \`memory\` and chains \`flushDone\`. Override only what this plugin changes.
 */
export function ${fn}(inner: TableAllocator): TableAllocator {
  let backingCalls = 0;
  return definePlugin(inner, {
    caps: { name: '${base}' },
    alloc(size, ctx) {
      backingCalls++;
      return inner.alloc(size, ctx);
    },
    free(paddr, size) {
      inner.free(paddr, size);
    },
    stats: () => ({ ...inner.stats(), backingCalls }),
  });
}
TS
cat > "$dir/test/conformance.test.ts" <<TS
import { describeAllocatorConformance } from '@io-pgtable/conformance';
import { ${fn} } from '../src/index.js';

describeAllocatorConformance('${base}', ({ backing }) => ${fn}(backing));
TS
cat > "$dir/README.md" <<MD
# ${name}

${desc}

\`\`\`ts
import { createPageTable, createSystemAllocator } from '@io-pgtable/core';
import { ${fn} } from '${name}';

const allocator = ${fn}(createSystemAllocator());
const pt = createPageTable('ARM_64_LPAE_S1', { pgsizeBitmap: 0x40201000, ias: 48, oas: 48 }, { allocator });
\`\`\`

## Options

(none yet)

## Trade-offs

(what this plugin costs and what it buys, in bytes and backing calls)
MD

# Register the workspace, and make the smoke test build and pack it.
DIR="$dir" NAME="$name" node -e '
const fs = require("fs");
const edit = (file, f) => {
  const json = JSON.parse(fs.readFileSync(file, "utf8"));
  f(json);
  fs.writeFileSync(file, JSON.stringify(json, null, 2) + "\n");
};
edit("package.json", (p) => { if (!p.workspaces.includes(process.env.DIR)) p.workspaces.push(process.env.DIR); });
edit("tools/smoke/package.json", (p) => {
  p.nx ??= {};
  p.nx.implicitDependencies ??= [];
  if (!p.nx.implicitDependencies.includes(process.env.NAME)) p.nx.implicitDependencies.push(process.env.NAME);
});
'

echo "Created $dir ($name, exports $fn). Next:"
echo "  npm install                      # link the new workspace, update package-lock.json"
echo "  npx nx run $name:test            # the conformance suite against the pass-through plugin"
echo "  npx nx run $name:lint:pkg        # publint --strict + attw --pack"
echo "  edit .changeset/initial-release-$base.md   # what the first release provides"
