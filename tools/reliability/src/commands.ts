/**
 * Commands: an abstract form fast-check generates and shrinks (small integers, meaningful
 * for any configuration) and the concrete form the harness runs, chosen from the abstract
 * one, the configuration and the model's current state.
 */
import fc from 'fast-check';
import type { RefModel } from './model.js';
import { levelOf, type RefShape } from './ref-geometry.js';

export type Cmd =
  | { op: 'map'; iova: number; pa: number; pgsize: number; pgcount: number; prot: number }
  | { op: 'unmap'; iova: number; pgsize: number; pgcount: number }
  | { op: 'iova_to_phys'; iova: number }
  | { op: 'dirty'; iova: number; size: number; noClear: boolean }
  | { op: 'access'; iova: number; write: boolean }
  | { op: 'free' };

export type AbstractCmd =
  | { k: 'map'; size: number; anchor: number; slot: number; count: number; pa: number; prot: number }
  | { k: 'unmap'; useLeaf: boolean; pick: number; size: number; anchor: number; slot: number; count: number }
  | { k: 'phys'; useLeaf: boolean; pick: number; off: number }
  | { k: 'dirty'; pick: number; span: number; noClear: boolean }
  | { k: 'access'; pick: number; write: boolean };

const count = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 1, max: 3 }) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 40 }) });

export const abstractCmd: fc.Arbitrary<AbstractCmd> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      k: fc.constant('map' as const),
      size: fc.nat(7),
      anchor: fc.nat(4),
      slot: fc.nat(7),
      count,
      pa: fc.nat(1 << 20),
      prot: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 1, max: 63 }).filter((p) => (p & 3) !== 0) }, { weight: 1, arbitrary: fc.nat(63) }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('unmap' as const),
      useLeaf: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      pick: fc.nat(1000),
      size: fc.nat(7),
      anchor: fc.nat(4),
      slot: fc.nat(7),
      count,
    }),
  },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('phys' as const), useLeaf: fc.boolean(), pick: fc.nat(1000), off: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('dirty' as const), pick: fc.nat(1000), span: fc.integer({ min: 1, max: 8 }), noClear: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('access' as const), pick: fc.nat(1000), write: fc.boolean() }) },
);

/** Page sizes that name a level of this table, ascending. */
export function usableSizes(shape: RefShape): number[] {
  return shape.pgsizes.filter((s) => levelOf(shape, s) >= 0);
}

/** Place a run of `n` pages of `size` near one of a few anchors (start, a table edge, the middle, the top). */
function place(shape: RefShape, size: number, anchor: number, slot: number, n: number): { iova: number; count: number } {
  const slots = 2 ** shape.ias / size;
  const anchors = [0, shape.entries - 2, slots - 6, 0, shape.entries - 2];
  const first = Math.max(0, Math.min(slots - 1, anchors[anchor % anchors.length]! + slot));
  return { iova: first * size, count: Math.max(1, Math.min(n, slots - first)) };
}

export interface ConcretizeOptions {
  dirty: boolean;
  access: boolean;
  /** Physical range devices must not write (the page tables' own memory). */
  noWrite?: readonly [number, number];
}

/** The concrete command for `a` in the current state; null when it does not apply. */
export function concretize(shape: RefShape, model: RefModel, a: AbstractCmd, opts: ConcretizeOptions): Cmd {
  const sizes = usableSizes(shape);
  const leaves = [...model.leaves.values()];
  switch (a.k) {
    case 'map': {
      const size = sizes[a.size % sizes.length]!;
      const { iova, count: n } = place(shape, size, a.anchor, a.slot, a.count);
      const paSlots = 2 ** shape.oas / size;
      const c = Math.min(n, paSlots);
      const pa = (a.pa % (paSlots - c + 1)) * size;
      return { op: 'map', iova, pa, pgsize: size, pgcount: c, prot: a.prot };
    }
    case 'unmap': {
      const size = sizes[a.size % sizes.length]!;
      if (a.useLeaf && leaves.length > 0) {
        const l = leaves[a.pick % leaves.length]!;
        const iova = l.iova - (l.iova % size);
        const slots = 2 ** shape.ias / size;
        return { op: 'unmap', iova, pgsize: size, pgcount: Math.min(a.count, slots - iova / size) };
      }
      const { iova, count: n } = place(shape, size, a.anchor, a.slot, a.count);
      return { op: 'unmap', iova, pgsize: size, pgcount: n };
    }
    case 'phys': {
      if (a.useLeaf && leaves.length > 0) {
        const l = leaves[a.pick % leaves.length]!;
        return { op: 'iova_to_phys', iova: l.iova + (a.off % l.size) };
      }
      return { op: 'iova_to_phys', iova: (a.off * shape.granule) % 2 ** shape.ias };
    }
    case 'dirty': {
      if (!opts.dirty) return { op: 'iova_to_phys', iova: leaves.length > 0 ? leaves[a.pick % leaves.length]!.iova : 0 };
      if (leaves.length === 0) return { op: 'dirty', iova: (a.pick % 64) * shape.granule, size: a.span * shape.granule, noClear: a.noClear };
      const l = leaves[a.pick % leaves.length]!;
      const size = Math.min(a.span * l.size, 2 ** shape.ias - l.iova);
      return { op: 'dirty', iova: l.iova, size, noClear: a.noClear };
    }
    case 'access': {
      const iova = leaves.length > 0 ? leaves[a.pick % leaves.length]!.iova + ((a.pick * 64) % shape.granule) : (a.pick % 64) * shape.granule;
      if (!opts.access) return { op: 'iova_to_phys', iova };
      const pa = model.translate(iova);
      const hitsTables = opts.noWrite !== undefined && pa + 4 > opts.noWrite[0] && pa < opts.noWrite[1];
      return { op: 'access', iova, write: a.write && !hitsTables };
    }
  }
}
