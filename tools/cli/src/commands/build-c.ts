/** `io-pgtable build-c`: compile a C allocator to wasm32 with the documented clang invocation. */
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { CBuildError, buildC, clangArgs, clangProblem } from '@io-pgtable/c-allocator';
import { flag, str, type Command } from '../command.js';
import { CliError, EXIT_FAIL, EXIT_OK, write } from '../io.js';

export const buildCCommand: Command = {
  name: 'build-c',
  summary: 'compile a C page-table allocator (io_pgtable_alloc.h) to wasm32 for the conformance suite and compare',
  usage: ['FILE.c [-o FILE.wasm] [--define NAME[=VALUE]]... [--print-command]'],
  description: `Runs Debian's clang (+ lld for wasm-ld) with the invocation documented in
@io-pgtable/c-allocator's README: --target=wasm32, no libc, bulk-memory, no entry point, the
package's include/ directory for io_pgtable_alloc.h. IO_PGTABLE_CLANG selects another clang.

Examples:
  io-pgtable build-c alloc.c -o alloc.wasm
  io-pgtable build-c pool.c --define HIGH_WATERMARK=128
  io-pgtable build-c alloc.c --print-command`,
  options: {
    output: { type: 'string', short: 'o', arg: 'FILE', help: 'output module (default: FILE.wasm next to the source)' },
    define: { type: 'string', short: 'D', multiple: true, arg: 'NAME[=VALUE]', help: 'a preprocessor definition (repeatable)' },
    'print-command': { type: 'boolean', help: 'print the clang command instead of running it' },
  },
  async run(p, io) {
    if (p.positionals.length !== 1) throw new CliError('give exactly one C source file (see --help)');
    const input = resolve(io.cwd, p.positionals[0]!);
    if (!input.endsWith('.c')) throw new CliError(`${p.positionals[0]}: expected a .c file`);
    const out = resolve(io.cwd, str(p, 'output') ?? input.replace(/\.c$/, '.wasm'));
    const defines = (p.values.define as string[] | undefined) ?? [];
    for (const d of defines) if (!/^[A-Za-z_][A-Za-z0-9_]*(=.*)?$/.test(d)) throw new CliError(`--define: ${JSON.stringify(d)} is not NAME or NAME=VALUE`);
    const flags = defines.map((d) => `-D${d}`);
    if (flag(p, 'print-command')) {
      const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
      await write(io.stdout, [io.env.IO_PGTABLE_CLANG ?? 'clang', ...clangArgs(input, out, { flags })].map(quote).join(' ') + '\n');
      return EXIT_OK;
    }
    if (!existsSync(input)) throw new CliError(`${p.positionals[0]}: no such file`);
    const problem = clangProblem();
    if (problem !== null) throw new CliError(problem, EXIT_FAIL);
    try {
      buildC(input, out, { flags });
    } catch (e) {
      if (e instanceof CBuildError) throw new CliError(e.message);
      throw e;
    }
    if (flag(p, 'json')) await write(io.stdout, JSON.stringify({ input, output: out }) + '\n');
    else await write(io.stdout, `built ${basename(out)} from ${basename(input)}\n`);
    return EXIT_OK;
  },
};
