#!/usr/bin/env node
// `io-pgtable replay` on long traces (issue 14: memory constant in the trace length; issue 15:
// replay ops/s). Generates dumpEvery:false traces of N ops (map / iova_to_phys / unmap over a
// 64 MiB window of a 48-bit 4K stage-1 table), replays each through the built CLI in a child
// process, and prints what it measured in this run: the child's peak RSS (getrusage maxRSS,
// read by a preload at exit) and ops/s (wall time of the child, so Node start-up included).
// Usage: node bench/replay.mjs [--ops 2000000] [--small 100000] [--reps 3] [--json]
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(here, '../dist/bin.js');
const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const BIG = opt('ops', 2_000_000);
const SMALL = opt('small', 100_000);
const REPS = opt('reps', 3);
const jsonOnly = args.includes('--json');
const RSS_TARGET_MB = 200;

const tmp = mkdtempSync(join(os.tmpdir(), 'iopgt-replay-bench-'));
const preload = join(tmp, 'maxrss.cjs');
// ru_maxrss is in KiB on Linux; CPU time in microseconds (wall time on a loaded machine
// mostly measures the other jobs, so ops per CPU-second is printed too).
writeFileSync(preload, `process.on('exit', () => { const u = process.resourceUsage(); require('fs').writeFileSync(process.env.IOPGT_MAXRSS_FILE, JSON.stringify({ maxRSS: u.maxRSS, cpu: u.userCPUTime + u.systemCPUTime })); });\n`);

/** Write an n-op trace (plus the header) without holding it in memory. */
async function generate(file, n) {
  const out = createWriteStream(file);
  const put = (s) => (out.write(s) ? undefined : new Promise((r) => out.once('drain', r)));
  await put('{"format":"ARM_64_LPAE_S1","pgsizeBitmap":"0x40201000","ias":48,"oas":48,"dumpEvery":false}\n');
  let lines = [];
  for (let j = 0; j < n; j++) {
    const slot = Math.floor(j / 3) % 16384; // 16384 pages: 64 MiB, 32 level-3 tables
    const iova = '0x' + (0x4000_0000 + slot * 0x1000).toString(16);
    const step = j % 3;
    lines.push(
      step === 0
        ? `{"op":"map","iova":"${iova}","paddr":"0x${(0x1_0000_0000 + slot * 0x1000).toString(16)}","pgsize":"0x1000","pgcount":1,"prot":["read","write"]}`
        : step === 1
          ? `{"op":"iova_to_phys","iova":"${iova}"}`
          : `{"op":"unmap","iova":"${iova}","pgsize":"0x1000","pgcount":1}`,
    );
    if (lines.length === 4096) {
      await put(lines.join('\n') + '\n');
      lines = [];
    }
  }
  if (lines.length) await put(lines.join('\n') + '\n');
  await new Promise((r) => out.end(r));
}

/** Replay `file` through the CLI to /dev/null (`stdin`: piped in); returns wall seconds and peak RSS. */
function runCli(file, viaStdin) {
  const rssFile = join(tmp, `rss-${Math.random().toString(36).slice(2)}`);
  const argv = ['--require', preload, BIN, 'replay', ...(viaStdin ? [] : [file])];
  return new Promise((done, fail) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, argv, { stdio: [viaStdin ? 'pipe' : 'ignore', 'ignore', 'pipe'], env: { ...process.env, IOPGT_MAXRSS_FILE: rssFile } });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    if (viaStdin) {
      createReadStream(file, { highWaterMark: 1 << 16 }).pipe(child.stdin);
    }
    child.on('close', (status) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      if (status !== 0) return fail(new Error(`replay exited ${status}: ${stderr}`));
      const u = JSON.parse(readFileSync(rssFile, 'utf8'));
      done({ seconds, cpuSeconds: u.cpu / 1e6, maxRssMB: u.maxRSS / 1024 });
    });
  });
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0], median: s[Math.floor(s.length / 2)], max: s[s.length - 1] };
};

const bigFile = join(tmp, 'big.trace.jsonl');
const smallFile = join(tmp, 'small.trace.jsonl');
try {
  await generate(smallFile, SMALL);
  await generate(bigFile, BIG);
  const small = [];
  for (let i = 0; i < REPS; i++) small.push(await runCli(smallFile, false));
  const bigFromFile = await runCli(bigFile, false);
  const bigFromStdin = await runCli(bigFile, true);
  const smallOps = stats(small.map((r) => SMALL / r.seconds));
  const smallCpu = stats(small.map((r) => SMALL / r.cpuSeconds));
  const result = {
    machine: { cpus: os.cpus().length, node: process.version, date: new Date().toISOString(), loadavg: os.loadavg() },
    small: { ops: SMALL, reps: REPS, opsPerSec: smallOps, opsPerCpuSec: smallCpu, maxRssMB: stats(small.map((r) => r.maxRssMB)) },
    big: {
      ops: BIG,
      file: { seconds: bigFromFile.seconds, opsPerSec: BIG / bigFromFile.seconds, opsPerCpuSec: BIG / bigFromFile.cpuSeconds, maxRssMB: bigFromFile.maxRssMB },
      stdin: { seconds: bigFromStdin.seconds, opsPerSec: BIG / bigFromStdin.seconds, opsPerCpuSec: BIG / bigFromStdin.cpuSeconds, maxRssMB: bigFromStdin.maxRssMB },
      rssTargetMB: RSS_TARGET_MB,
    },
  };
  if (jsonOnly) console.log(JSON.stringify(result));
  else {
    const f = (x) => Math.round(x).toLocaleString('en-US');
    console.log(`io-pgtable replay, dumpEvery:false, output to /dev/null (${result.machine.cpus} CPUs, node ${result.machine.node}, ${result.machine.date})`);
    console.log(`  load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')} at the end (wall-clock ops/s is only meaningful on an idle machine)`);
    console.log(`  ${f(SMALL)} ops, ${REPS} runs: ${f(smallOps.median)} ops/s wall median (min ${f(smallOps.min)}, max ${f(smallOps.max)}); ${f(smallCpu.median)} ops per CPU-second median (min ${f(smallCpu.min)}, max ${f(smallCpu.max)}); Node start-up included`);
    for (const [how, r] of Object.entries(result.big)) {
      if (typeof r !== 'object') continue;
      const verdict = r.maxRssMB < RSS_TARGET_MB ? 'under' : 'OVER';
      console.log(`  ${f(BIG)} ops from ${how}: peak RSS ${r.maxRssMB.toFixed(1)} MB (${verdict} the ${RSS_TARGET_MB} MB target), ${f(r.opsPerSec)} ops/s wall (${r.seconds.toFixed(1)} s), ${f(r.opsPerCpuSec)} ops per CPU-second`);
    }
    console.log(JSON.stringify(result));
  }
  if (bigFromFile.maxRssMB >= RSS_TARGET_MB || bigFromStdin.maxRssMB >= RSS_TARGET_MB) process.exitCode = 1;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
