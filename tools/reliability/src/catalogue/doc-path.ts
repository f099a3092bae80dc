/** Where docs/reliability.md lives: found from the working directory up (scripts run bundled elsewhere). */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function findDoc(from: string = process.cwd()): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && 'workspaces' in (JSON.parse(readFileSync(pkg, 'utf8')) as object)) return join(dir, 'docs', 'reliability.md');
    if (dirname(dir) === dir) throw new Error(`no workspace root above ${from}`);
  }
}
