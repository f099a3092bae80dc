/**
 * Input parsing shared by configuration and requests: quirk and prot names (own
 * properties only: `toString` or `__proto__` are not names), u64 integers, and how a bad
 * value is shown in a message (capped).
 */
import { describeValue } from '@io-pgtable/allocator-api';
import { PROT_BY_NAME, Quirk, type ProtName, type QuirkName } from './constants.js';

/** Parse quirk names or a mask into a mask; unknown names are reported. */
export function parseQuirks(q: number | readonly string[] | undefined): { mask: number } | { error: string } {
  if (q === undefined) return { mask: 0 };
  if (typeof q === 'number') {
    if (!Number.isInteger(q) || q < 0 || q > 0xffffffff) return { error: `quirks must be a 32-bit mask, got ${q}` };
    return { mask: q };
  }
  if (!Array.isArray(q)) return { error: 'quirks must be a mask or an array of names' };
  let mask = 0;
  for (const raw of q) {
    const name = typeof raw === 'string' ? raw.replace(/^IO_PGTABLE_QUIRK_/, '') : '';
    if (!Object.hasOwn(Quirk, name)) return { error: `unknown quirk ${describeValue(raw)}` };
    mask |= Quirk[name as QuirkName];
  }
  return { mask };
}

/** Parse prot names or a mask into a mask. */
export function parseProt(p: number | readonly string[]): { mask: number } | { error: string } {
  if (typeof p === 'number') {
    if (!Number.isInteger(p) || p < 0 || p > 0x3f) return { error: `prot must be a mask of IOMMU_* bits (0..0x3f), got ${p}` };
    return { mask: p };
  }
  if (!Array.isArray(p)) return { error: 'prot must be a mask or an array of names' };
  let mask = 0;
  for (const name of p) {
    const bit = typeof name === 'string' && Object.hasOwn(PROT_BY_NAME, name) ? PROT_BY_NAME[name as ProtName] : undefined;
    if (bit === undefined) return { error: `unknown prot ${describeValue(name)}` };
    mask |= bit;
  }
  return { mask };
}

/** A u64 input as a bigint, or null if it is not a valid unsigned 64-bit integer. */
export function toU64(v: unknown): bigint | null {
  if (typeof v === 'bigint') return v >= 0n && v < 1n << 64n ? v : null;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : null;
  return null;
}

/** A bad numeric input in a message: numbers as written, bigints in hex (capped), anything else by its type. */
export function describe(v: unknown): string {
  return typeof v === 'bigint' ? describeValue(v) : typeof v === 'number' ? String(v) : typeof v;
}
