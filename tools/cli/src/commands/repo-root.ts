import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseJsonBounded, readTextFileSync } from '../io.js';

/** The repository root (the package.json with workspaces) above `from`, else `from`. */
export function findRepoRoot(from: string): string {
  let d = resolve(from);
  for (;;) {
    const pj = join(d, 'package.json');
    if (existsSync(pj)) {
      try {
        // Any package.json on the way up is read like hostile input: bounded in size and depth.
        const v = parseJsonBounded(readTextFileSync(pj, pj, 4 * 1024 * 1024, 'a package.json'), pj) as { workspaces?: unknown } | null;
        if (v !== null && typeof v === 'object' && Object.hasOwn(v, 'workspaces') && v.workspaces) return d;
      } catch {
        /* not ours; keep looking */
      }
    }
    const up = dirname(d);
    if (up === d) return resolve(from);
    d = up;
  }
}
