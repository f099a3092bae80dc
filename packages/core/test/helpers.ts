import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The shared reference vectors live beside the repository: <repo>/../shared/vectors. */
export const VECTORS_DIR = resolve(here, '../../../../shared/vectors/public');

export interface Vector {
  name: string;
  trace: string;
  expected: string[];
}

export function loadVectors(): Vector[] {
  if (!existsSync(VECTORS_DIR)) throw new Error(`reference vectors not found at ${VECTORS_DIR}`);
  return readdirSync(VECTORS_DIR)
    .filter((f) => f.endsWith('.trace.jsonl'))
    .sort()
    .map((f) => {
      const name = f.replace(/\.trace\.jsonl$/, '');
      return {
        name,
        trace: readFileSync(join(VECTORS_DIR, f), 'utf8'),
        expected: readFileSync(join(VECTORS_DIR, `${name}.expected.jsonl`), 'utf8').split('\n').filter((l) => l.trim() !== ''),
      };
    });
}
