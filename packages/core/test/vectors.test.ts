import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { VECTORS_ROOT } from '@io-pgtable/vectors';
import { describe, expect, it } from 'vitest';
import { compareResults, replayTrace } from '../src/index.js';
import { VECTORS_DIR, loadVectors } from './helpers.js';

const vectors = loadVectors();

describe('reference vectors replayed through the kernel oracle', () => {
  it('finds all 47 public vectors', () => {
    expect(vectors).toHaveLength(47);
  });
  it('the checked-in set is whole: manifest.json lists exactly the trace/expected pairs, with their op counts', () => {
    const manifest = JSON.parse(readFileSync(join(VECTORS_ROOT, 'manifest.json'), 'utf8')) as { public: { name: string; ops: number }[] };
    const names = manifest.public.map((e) => e.name).sort();
    const files = readdirSync(VECTORS_DIR).sort();
    expect(files).toEqual(names.flatMap((n) => [`${n}.expected.jsonl`, `${n}.trace.jsonl`]).sort());
    for (const e of manifest.public) {
      const v = vectors.find((x) => x.name === e.name)!;
      const opLines = v.trace.split('\n').filter((l) => l.trim() !== '').length - 1;
      expect(opLines, e.name).toBe(e.ops);
    }
  });
  it.each(vectors.map((v) => [v.name, v] as const))('%s matches the kernel line for line', (_name, v) => {
    const actual = replayTrace(v.trace);
    const diff = compareResults(actual, v.expected);
    expect(diff, diff ? `line ${diff.line}\nexpected ${diff.expected}\nactual   ${diff.actual}` : '').toBeNull();
  });
});
