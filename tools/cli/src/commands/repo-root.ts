import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

/** The repository root (the package.json with workspaces) above `from`, else `from`. */
export function findRepoRoot(from: string): string {
  let d = resolve(from);
  for (;;) {
    const pj = join(d, 'package.json');
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).workspaces) return d;
      } catch {
        /* not ours; keep looking */
      }
    }
    const up = dirname(d);
    if (up === d) return resolve(from);
    d = up;
  }
}
