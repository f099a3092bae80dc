#!/usr/bin/env bash
# Scaffold the files every publishable package shares. Usage: tools/new-package.sh DIR NAME "description"
set -euo pipefail
dir=$1; name=$2; desc=$3
mkdir -p "$dir/src" "$dir/test"
cat > "$dir/tsup.config.ts" <<'TS'
import { defineConfig } from 'tsup';
import { packageBuild } from '../../tools/tsup.base';

export default defineConfig(packageBuild());
TS
cat > "$dir/vitest.config.ts" <<'TS'
import { sharedTestConfig } from '../../vitest.shared';

export default sharedTestConfig;
TS
cat > "$dir/tsconfig.json" <<'TS'
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": { "noEmit": true },
  "include": ["src", "test", "bench"]
}
TS
