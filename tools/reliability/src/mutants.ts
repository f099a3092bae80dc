/**
 * Deliberately broken stacks: the fuzzer's own tests use them to show that a real defect
 * is caught, shrunk, and reported with a trace that replays.
 */
import { systemStack, type Stack } from './stacks.js';

/** The broken stacks by the name `npm run fuzz -- --stack` takes. */
export const MUTANT_STACKS: Readonly<Record<string, () => Stack>> = Object.freeze({ scribbler: () => scribblerStack() });

/**
 * A plugin that corrupts a live table: on every free it clears entry 0 of the first table
 * it ever handed out (the PGD). Core cannot see this; only a whole-state check can.
 */
export function scribblerStack(): Stack {
  const s = systemStack({ minBlock: 64 });
  const inner = s.system;
  let first: number | null = null;
  const allocator = {
    caps: { ...inner.caps, name: 'scribbler' },
    memory: inner.memory,
    alloc(size: number, ctx: Parameters<typeof inner.alloc>[1]) {
      const p = inner.alloc(size, ctx);
      if (first === null) first = p;
      return p;
    },
    free(paddr: number, size: number) {
      inner.free(paddr, size);
      if (first !== null && paddr !== first) s.memory.write64(first, 0n);
    },
    flushDone: () => inner.flushDone(),
    stats: () => inner.stats(),
  };
  return { ...s, name: 'scribbler', allocator, layers: [allocator, inner] };
}
