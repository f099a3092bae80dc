/**
 * A small declarative schema and its checker, for data.json files read back by `report`
 * (which may come from anywhere): every field typed and bounded, the first violation
 * named by its JSON path, the bad value never echoed.
 */
export type Schema =
  | { t: 'string'; max?: number }
  | { t: 'number'; min?: number; max?: number; int?: boolean }
  | { t: 'boolean' }
  | { t: 'null' }
  | { t: 'enum'; values: readonly string[] }
  | { t: 'array'; of: Schema; max: number }
  | { t: 'object'; props: Record<string, Schema>; optional?: readonly string[] }
  | { t: 'anyOf'; of: Schema[] };

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function describe(s: Schema): string {
  switch (s.t) {
    case 'string':
      return 'a string';
    case 'number':
      return s.int ? 'an integer' : 'a number';
    case 'boolean':
      return 'a boolean';
    case 'null':
      return 'null';
    case 'enum':
      return `one of ${s.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'array':
      return 'an array';
    case 'object':
      return 'an object';
    case 'anyOf':
      return s.of.map(describe).join(' or ');
  }
}

/** The first violation as `path: expected ..., got ...`, or null when `v` conforms. */
export function check(v: unknown, s: Schema, path = '$'): string | null {
  switch (s.t) {
    case 'string':
      if (typeof v !== 'string') return `${path}: expected a string, got ${kind(v)}`;
      if (v.length > (s.max ?? 4096)) return `${path}: string longer than ${s.max ?? 4096} characters`;
      return null;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) return `${path}: expected ${describe(s)}, got ${kind(v)}`;
      if (s.int && !Number.isInteger(v)) return `${path}: expected an integer`;
      if (Math.abs(v) > Number.MAX_SAFE_INTEGER) return `${path}: at or above 2^53, which a JSON number cannot hold exactly`;
      if (s.min !== undefined && v < s.min) return `${path}: below ${s.min}`;
      if (s.max !== undefined && v > s.max) return `${path}: above ${s.max}`;
      return null;
    case 'boolean':
      return typeof v === 'boolean' ? null : `${path}: expected a boolean, got ${kind(v)}`;
    case 'null':
      return v === null ? null : `${path}: expected null, got ${kind(v)}`;
    case 'enum':
      return typeof v === 'string' && s.values.includes(v) ? null : `${path}: expected ${describe(s)}`;
    case 'array': {
      if (!Array.isArray(v)) return `${path}: expected an array, got ${kind(v)}`;
      if (v.length > s.max) return `${path}: more than ${s.max} entries`;
      for (let i = 0; i < v.length; i++) {
        const e = check(v[i], s.of, `${path}[${i}]`);
        if (e) return e;
      }
      return null;
    }
    case 'object': {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return `${path}: expected an object, got ${kind(v)}`;
      const o = v as Record<string, unknown>;
      for (const [k, ps] of Object.entries(s.props)) {
        if (!Object.hasOwn(o, k)) {
          if (s.optional?.includes(k)) continue;
          return `${path}: missing ${JSON.stringify(k)}`;
        }
        const e = check(o[k], ps, `${path}.${k}`);
        if (e) return e;
      }
      for (const k of Object.keys(o)) if (!Object.hasOwn(s.props, k)) return `${path}: unknown field ${JSON.stringify(k.slice(0, 40))}`;
      return null;
    }
    case 'anyOf': {
      for (const alt of s.of) if (check(v, alt, path) === null) return null;
      return `${path}: expected ${describe(s)}, got ${kind(v)}`;
    }
  }
}
