import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PUBLIC_VECTORS } from '@io-pgtable/vectors';

/** The kernel-generated reference vectors, checked in as @io-pgtable/vectors. */
export const VECTORS_DIR = PUBLIC_VECTORS;

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
