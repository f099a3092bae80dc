import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PUBLIC_VECTORS } from '@io-pgtable/vectors';

export const CLI_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = resolve(CLI_ROOT, '../..');
export const BIN = join(CLI_ROOT, 'dist/bin.js');
/** The kernel-generated reference vectors (never produced by our code), checked in as @io-pgtable/vectors. */
export const VECTORS = PUBLIC_VECTORS;

if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build the CLI first (npx nx run @io-pgtable/cli:build)`);

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Run the built bin as a user would: a child process whose stdio are pipes (so not a
 * TTY), with CI/colour variables cleared unless the test sets them.
 */
export function cli(args: string[], opts: { input?: string; env?: Record<string, string>; cwd?: string } = {}): RunResult {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.CI;
  delete env.NO_COLOR;
  delete env.FORCE_COLOR;
  const r = spawnSync(process.execPath, [BIN, ...args], {
    input: opts.input ?? '',
    env: { ...env, ...opts.env },
    cwd: opts.cwd ?? REPO_ROOT,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function tempDir(prefix = 'iopgt-cli-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Any ANSI escape or carriage return: what plain (non-TTY) output must not contain. */
export const TERMINAL_CONTROL = /\x1b\[|\r/;
