import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { configByName } from '../src/configs.js';
import { formatFailure, fuzzConfig, rerunCommand } from '../src/fuzz.js';

const PKG = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');

function sh(cmd: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(cmd, { cwd: PKG, shell: true, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
}

describe('a printed fuzz failure reproduces as printed', () => {
  // Kernel mode, no device accesses and a stack other than the default: every option the
  // printed commands must carry for the re-run to build the same case.
  const r = fuzzConfig(configByName('s2-4k-42-42-concat8'), { mode: 'kernel', numRuns: 100, seed: 11, maxCommands: 20, stackName: 'scribbler', access: false });

  it('the re-run command prints the same report, word for word, and exits 1', () => {
    expect(r.failure).not.toBeNull();
    const f = r.failure!;
    const cmd = rerunCommand(f);
    expect(cmd).toContain('--stack scribbler');
    expect(cmd).toContain('--mode kernel');
    expect(cmd).toContain('--no-access');
    const out = sh(cmd);
    expect(out.stderr).not.toMatch(/unknown option/);
    expect(out.status).toBe(1);
    expect(out.stdout).toContain(formatFailure(f));
  });

  it('the printed replay command, with the trace saved to FILE, fails the same way', () => {
    const f = r.failure!;
    const printed = formatFailure(f);
    const m = /replay with `(npm run fuzz -- --replay FILE [^`]+)`/.exec(printed);
    expect(m).not.toBeNull();
    const dir = mkdtempSync(join(tmpdir(), 'iopgt-rerun-'));
    try {
      const file = join(dir, 'fail.trace');
      writeFileSync(file, f.trace);
      const out = sh(m![1]!.replace('FILE', JSON.stringify(file)));
      expect(out.status).toBe(1);
      // The scribbler breaks the tree again: the same check fails on the replayed trace.
      expect(out.stdout).toMatch(/^FAIL after \d+ of \d+ ops: \[s2-4k-42-42-concat8 kernel scribbler\] tables/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
