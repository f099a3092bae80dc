#!/usr/bin/env node
/**
 * Does `io-pgtable import-ftrace` stream? Feeds generated captures of growing size (a
 * seeded map/unmap churn in the tracefs layout, written into the CLI's stdin as it is
 * generated, so nothing large is held here or on disk) and prints, per size, the bytes
 * read, events, seconds and the CLI's peak RSS (getrusage maxRSS, read at its exit).
 * Constant memory = the same peak RSS whatever the capture size.
 *
 *   node tools/cli/bench/import-ftrace-rss.mjs [MiB...]      (default: 16 256 1024)
 */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'bin.js');
const sizes = (process.argv.slice(2).length ? process.argv.slice(2) : ['16', '256', '1024']).map(Number);
// The child reports its own peak RSS when it exits.
const HOOK = 'data:text/javascript,process.on("exit",()=>process.stderr.write("maxrss_kb="+process.resourceUsage().maxRSS+"\\n"))';
const h16 = (v) => '0x' + v.toString(16).padStart(16, '0');

function* capture(bytes) {
  let made = 0;
  let x = 0x2545f491;
  const rnd = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>> 0) / 2 ** 32);
  const live = [];
  let i = 0;
  while (made < bytes) {
    let chunk = '';
    for (let k = 0; k < 2000; k++, i++) {
      const ts = (1000 + i * 1e-5).toFixed(6);
      let line;
      if (live.length > 64 || (live.length > 0 && rnd() < 0.5)) {
        const [iova, size] = live.splice(Math.floor(rnd() * live.length), 1)[0];
        line = `     kworker/u16:2-101    [001] ..... ${ts}: unmap: IOMMU: iova=${h16(iova)} - ${h16(iova + size)} size=${size} unmapped_size=${size}`;
      } else {
        const size = (1 + Math.floor(rnd() * 64)) * 4096;
        const iova = 0x1_0000_0000 + (i % 1024) * 0x40_0000; // a bounded set of windows: the tables stay the same
        if (live.some(([a]) => a === iova)) continue;
        live.push([iova, size]);
        line = `  composer@2.4-se-500    [002] ..... ${ts}: map: IOMMU: iova=${h16(iova)} - ${h16(iova + size)} paddr=${h16(0x9000_0000 + Math.floor(rnd() * 0x20000) * 4096)} size=${size}`;
      }
      chunk += line + '\n';
    }
    made += chunk.length;
    yield chunk;
  }
}

async function run(mib) {
  const bytes = mib * 2 ** 20;
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', HOOK, BIN, 'import-ftrace'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  let fed = 0;
  for (const chunk of capture(bytes)) {
    fed += chunk.length;
    if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
  }
  child.stdin.end();
  const code = await new Promise((r) => child.on('close', r));
  const secs = (performance.now() - t0) / 1000;
  const rss = /maxrss_kb=(\d+)/.exec(stderr);
  if (code !== 0 || !rss) throw new Error(`import-ftrace exited ${code}: ${stderr.slice(0, 500)}`);
  return { mib, fed, secs, rssMiB: Number(rss[1]) / 1024 };
}

console.log(`import-ftrace streaming bench: node ${process.version}, ${process.platform}/${process.arch}, ${new Date().toISOString()}`);
console.log('input MiB   bytes fed        seconds   MiB/s   peak RSS MiB');
for (const mib of sizes) {
  const r = await run(mib);
  console.log(`${String(r.mib).padStart(9)}   ${String(r.fed).padStart(13)}   ${r.secs.toFixed(1).padStart(7)}   ${(r.fed / 2 ** 20 / r.secs).toFixed(1).padStart(5)}   ${r.rssMiB.toFixed(1).padStart(12)}`);
}
