import { describe, expect, it } from 'vitest';
import { compareResults, replayTrace } from '../src/index.js';
import { loadVectors } from './helpers.js';

const vectors = loadVectors();

describe('reference vectors replayed through the kernel oracle', () => {
  it('finds all 47 public vectors', () => {
    expect(vectors).toHaveLength(47);
  });
  it.each(vectors.map((v) => [v.name, v] as const))('%s matches the kernel line for line', (_name, v) => {
    const actual = replayTrace(v.trace);
    const diff = compareResults(actual, v.expected);
    expect(diff, diff ? `line ${diff.line}\nexpected ${diff.expected}\nactual   ${diff.actual}` : '').toBeNull();
  });
});
