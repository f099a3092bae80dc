/**
 * `--stack NAME`: a built-in stack, a third-party plugin package (by package name, resolved
 * from the working directory's node_modules like `require` would), a JavaScript module path,
 * or a `.wasm` C allocator (through `@io-pgtable/c-allocator`, when it is installed).
 *
 * What a plugin module may export, first match wins:
 *   - `ioPgtableStacks`: an array of stack definitions `{ name, description, traits?, build(env) }`;
 *   - `ioPgtableStack`: one such definition;
 *   - a decorator factory `withX(inner, opts?)` returning a TableAllocator: the stack is that
 *     decorator over the system allocator, one instance shared by every context.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { TableAllocator } from '@io-pgtable/allocator-api';
import { PhysMemory, createSystemAllocator } from '@io-pgtable/core';
import { CliError, EXIT_USAGE, parseJsonBounded, readTextFileSync } from '../io.js';

/** A package.json larger than this is not one. */
const MAX_PACKAGE_JSON = 4 * 1024 * 1024;
import { STACKS, findStack, type StackDef, type StackEnv, type StackInstance } from './stacks.js';

/** The package that adapts a C allocator compiled to WebAssembly. */
export const C_ALLOCATOR_PACKAGE = '@io-pgtable/c-allocator';

function isPathLike(spec: string): boolean {
  return spec.startsWith('.') || isAbsolute(spec) || spec.endsWith('.wasm') || /\.[cm]?js$/.test(spec);
}

/** `node_modules/<name>` in `from` or any directory above it. */
function findPackageDir(name: string, from: string): string | undefined {
  let d = resolve(from);
  for (;;) {
    const p = join(d, 'node_modules', name);
    if (existsSync(join(p, 'package.json'))) return p;
    const up = dirname(d);
    if (up === d) return undefined;
    d = up;
  }
}

/** The ESM-preferred entry of a package's `exports["."]` (or `main`, or index.js). */
function packageEntry(dir: string): string {
  // A package.json is a config file like any other input: bounded, nesting bounded, and each
  // field used checked for its type (a hostile one must be a usage error, not a crash).
  const file = join(dir, 'package.json');
  const parsed = parseJsonBounded(readTextFileSync(file, file, MAX_PACKAGE_JSON, 'a package.json'), file);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new CliError('not a package.json: expected an object', EXIT_USAGE, file);
  const pj = parsed as { exports?: unknown; main?: unknown; module?: unknown };
  for (const k of ['main', 'module'] as const) {
    if (Object.hasOwn(pj, k) && typeof pj[k] !== 'string') throw new CliError(`package.json "${k}" is not a string`, EXIT_USAGE, file);
  }
  const pick = (e: unknown): string | undefined => {
    if (typeof e === 'string') return e;
    if (e === null || typeof e !== 'object' || Array.isArray(e)) return undefined;
    const o = e as Record<string, unknown>;
    if (Object.hasOwn(o, '.')) return pick(o['.']);
    for (const c of ['import', 'node', 'default', 'require']) if (Object.hasOwn(o, c)) return pick(o[c]);
    return undefined;
  };
  const own = (k: 'exports' | 'main' | 'module'): unknown => (Object.hasOwn(pj, k) ? pj[k] : undefined);
  const rel = pick(own('exports')) ?? (own('module') as string | undefined) ?? (own('main') as string | undefined) ?? 'index.js';
  return join(dir, rel);
}

function isStackDef(v: unknown): v is StackDef {
  const o = v as Partial<StackDef> | null;
  return o !== null && typeof o === 'object' && typeof o.name === 'string' && typeof o.build === 'function';
}

type Decorator = (inner: TableAllocator) => TableAllocator;

/** A plugin's decorator as a stack: one instance over the (counted) system allocator. */
function decoratorStack(name: string, exportName: string, make: Decorator): StackDef {
  return {
    name,
    description: `third-party plugin ${name}: ${exportName}(system allocator), one per device`,
    build(env: StackEnv): StackInstance {
      const a = make(env.system);
      return {
        allocators: Array(env.contexts).fill(a),
        metrics: () => ({}),
        teardown: () => a.drain?.(),
      };
    },
  };
}

function stacksFromModule(mod: Record<string, unknown>, spec: string): StackDef[] {
  const many = mod.ioPgtableStacks;
  if (Array.isArray(many) && many.length > 0 && many.every(isStackDef)) return many;
  if (isStackDef(mod.ioPgtableStack)) return [mod.ioPgtableStack];
  const def = mod.default as Record<string, unknown> | undefined;
  if (def && typeof def === 'object' && def !== mod) {
    const fromDefault = stacksFromModuleOrNull(def, spec);
    if (fromDefault) return fromDefault;
  }
  for (const [k, v] of Object.entries(mod)) {
    if (/^with[A-Z]/.test(k) && typeof v === 'function') return [decoratorStack(spec, k, v as Decorator)];
  }
  throw new CliError(`--stack ${spec}: the module exports no stack (ioPgtableStacks, ioPgtableStack) and no withX(inner) decorator`, EXIT_USAGE);
}

function stacksFromModuleOrNull(mod: Record<string, unknown>, spec: string): StackDef[] | null {
  try {
    return stacksFromModule(mod, spec);
  } catch {
    return null;
  }
}

async function importFile(file: string, spec: string): Promise<Record<string, unknown>> {
  try {
    return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e) {
    throw new CliError(`--stack ${spec}: cannot load ${file}: ${String((e as Error).message).split('\n')[0]!.slice(0, 300)}`, EXIT_USAGE);
  }
}

/** The loader `@io-pgtable/c-allocator` documents: `stackFromWasm(path, { name? })`, a stack-registry entry. */
const WASM_LOADER = 'stackFromWasm';

interface WasmStackDef extends StackDef {
  unavailable?(): string | null;
}

async function wasmStacks(file: string, spec: string, cwd: string): Promise<StackDef[]> {
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new CliError(`--stack ${spec}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT_USAGE);
  }
  if (!st.isFile()) throw new CliError(`--stack ${spec}: not a file`, EXIT_USAGE);
  let mod: Record<string, unknown>;
  const dir = findPackageDir(C_ALLOCATOR_PACKAGE, cwd);
  try {
    // A variable specifier: the package is optional for a user of the CLI, so it is looked up at run time.
    const specifier: string = dir ? pathToFileURL(packageEntry(dir)).href : C_ALLOCATOR_PACKAGE;
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch {
    throw new CliError(`--stack ${spec}: a .wasm C allocator needs ${C_ALLOCATOR_PACKAGE}; install it (npm install ${C_ALLOCATOR_PACKAGE}) and build the allocator with 'io-pgtable build-c'`, EXIT_USAGE);
  }
  const loader = mod[WASM_LOADER];
  if (typeof loader !== 'function') throw new CliError(`--stack ${spec}: ${C_ALLOCATOR_PACKAGE} does not export ${WASM_LOADER}; update it`, EXIT_USAGE);
  const def = (loader as (path: string) => unknown)(file) as WasmStackDef;
  if (!isStackDef(def)) throw new CliError(`--stack ${spec}: ${C_ALLOCATOR_PACKAGE}.${WASM_LOADER} did not return a stack definition`, EXIT_USAGE);
  const why = def.unavailable?.() ?? null;
  if (why !== null) throw new CliError(`--stack ${spec}: ${why.split('\n')[0]!.slice(0, 300)}`, EXIT_USAGE);
  // A C allocator that implements the reservation ops prepares each job before its run phase.
  const probe = def.build(probeEnv());
  const reserves = probe.hooks?.runJob !== undefined;
  probe.teardown();
  return [{ name: def.name, description: def.description, traits: { reservesBeforeRun: reserves }, build: (env) => def.build(env) }];
}

function probeEnv(): StackEnv {
  const memory = new PhysMemory();
  return { memory, system: createSystemAllocator({ memory, base: 0x8000_0000, limit: 0x10_0000 }), contexts: 1 };
}

/** Resolve one `--stack` entry to its stack definitions (a plugin may bring several). */
export async function resolveStack(spec: string, cwd: string): Promise<StackDef[]> {
  const builtin = findStack(spec);
  if (builtin) return [builtin];
  if (spec.endsWith('.wasm')) return wasmStacks(resolve(cwd, spec), spec, cwd);
  if (isPathLike(spec)) {
    const file = resolve(cwd, spec);
    if (!existsSync(file)) throw new CliError(`--stack ${spec}: cannot read: ENOENT`, EXIT_USAGE);
    return stacksFromModule(await importFile(file, spec), spec);
  }
  if (!/^(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*$/i.test(spec)) {
    throw new CliError(`--stack: unknown stack ${JSON.stringify(spec.slice(0, 80))}; known: ${STACKS.map((x) => x.name).join(', ')}, a plugin package name, a .js module or a .wasm file`, EXIT_USAGE);
  }
  const dir = findPackageDir(spec, cwd);
  if (!dir) throw new CliError(`--stack: unknown stack ${JSON.stringify(spec)}: not a built-in (${STACKS.map((x) => x.name).join(', ')}) and no package ${spec} in node_modules`, EXIT_USAGE);
  return stacksFromModule(await importFile(packageEntry(dir), spec), spec);
}

/**
 * `all`, or a comma-separated list; a leading `+` adds to the built-ins instead of
 * restricting them (`--stack +my-plugin`). Names are unique in the result.
 */
export async function selectStacks(v: string | undefined, cwd: string): Promise<Array<{ def: StackDef; spec: string }>> {
  const builtins = STACKS.map((def) => ({ def, spec: def.name }));
  if (v === undefined || v === 'all') return builtins;
  const add = v.startsWith('+');
  const specs = (add ? v.slice(1) : v).split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (specs.length === 0) throw new CliError('--stack: no stack named', EXIT_USAGE);
  const out = add ? builtins : [];
  for (const spec of specs) {
    const defs = spec === 'all' ? STACKS : await resolveStack(spec, cwd);
    for (const def of defs) if (!out.some((o) => o.def.name === def.name)) out.push({ def, spec: spec === 'all' ? def.name : spec });
  }
  return out;
}
