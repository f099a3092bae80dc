/**
 * Address helpers. Physical addresses are numbers (< 2^52, exact). IOVAs are 64-bit:
 * the public API accepts `bigint | number`, and the core keeps them as a *signed*
 * 64-bit value in a number, which is exact for every address a page table can map
 * (TTBR0 tables: [0, 2^52); TTBR1 tables: [-2^52, 0), i.e. the top of the 64-bit
 * space). Index arithmetic uses the low 52 bits, which is all LPAE ever indexes.
 */

export const TWO_32 = 0x1_0000_0000;
export const TWO_52 = 2 ** 52;
const TWO_53 = 2 ** 53;

/** Format an unsigned 64-bit value as `0x` lowercase hex with no leading zeros. */
export function hex(v: bigint | number): string {
  return '0x' + (typeof v === 'bigint' ? BigInt.asUintN(64, v) : BigInt.asUintN(64, BigInt(v))).toString(16);
}

/** A signed-64 IOVA number as the unsigned 64-bit value the kernel would print. */
export function iovaToU64(iova: number): bigint {
  return BigInt.asUintN(64, BigInt(iova));
}

/**
 * Convert a u64 IOVA to the core's signed-number form, or `null` when it cannot be an
 * address inside any table (|value| >= 2^53 as a signed 64-bit integer).
 */
export function iovaToNumber(iova: bigint | number): number | null {
  if (typeof iova === 'number') return Number.isSafeInteger(iova) ? iova : null;
  const s = BigInt.asIntN(64, iova);
  if (s >= BigInt(TWO_53) || s <= -BigInt(TWO_53)) return null;
  return Number(s);
}

/** The low 52 bits of an IOVA as a non-negative number: all the bits LPAE indexes with. */
export function low52(iova: bigint | number): number {
  if (typeof iova === 'number') {
    const r = iova % TWO_52;
    return r < 0 ? r + TWO_52 : r;
  }
  return Number(BigInt.asUintN(52, iova));
}

/** Low 32 bits of a non-negative number below 2^53. */
export function lo32(v: number): number {
  return v % TWO_32 >>> 0;
}
/**
 * Bits 32..52 of a non-negative number below 2^53 (an int32). The divisor is a literal on
 * purpose: the bundle turns module constants into `var`s, which V8 does not fold, and a
 * division by a value it does not know is a real divide (about 15 cycles, on the critical
 * path of every walk); by a literal power of two it is a multiply.
 */
export function hi32(v: number): number {
  return (v / 0x1_0000_0000) | 0;
}

/** True if `v` is a multiple of the power of two `align` (works above 2^32). */
export function isAligned(v: number, align: number): boolean {
  return v % align === 0;
}

/** Round `v` down to a multiple of the power of two `align`. */
export function alignDown(v: number, align: number): number {
  return v - (((v % align) + align) % align);
}

/** Round `v` up to a multiple of the power of two `align`. */
export function alignUp(v: number, align: number): number {
  const r = ((v % align) + align) % align;
  return r === 0 ? v : v + (align - r);
}
