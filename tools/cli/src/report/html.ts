/**
 * The self-contained HTML report: one file, no network, charts as inline SVG drawn
 * here (no chart library). Every chart is an `<svg class="chart">` whose marks carry the
 * class `mark`, so a browser test can check that each one drew data.
 */
import type { SimResult } from '../sim/simulate.js';
import type { MatrixResult } from '../sim/run.js';
import { TABLE_HEADERS } from '../sim/run.js';
import { fmtInt, fmtPct } from '../table.js';

export interface ReportData extends MatrixResult {
  tool: string;
  version: string;
  config: { seed: number; scale: number; trace: string | null };
  /** Node version and platform the numbers were measured on. */
  machine: string;
}

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function compact(n: number): string {
  if (Math.abs(n) >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (Math.abs(n) >= 1e4) return `${+(n / 1e3).toFixed(1)}k`;
  return `${+n.toFixed(2)}`;
}

const W = 560;
const H = 260;
const M = { l: 56, r: 12, t: 28, b: 40 };

function axes(title: string, yMax: number, yLabel: string, fmt: (n: number) => string = compact): string {
  const parts = [`<text x="${M.l}" y="16" class="title">${esc(title)}</text>`];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    const y = H - M.b - ((H - M.t - M.b) * i) / 4;
    parts.push(`<line x1="${M.l}" x2="${W - M.r}" y1="${y}" y2="${y}" class="grid"/>`);
    parts.push(`<text x="${M.l - 6}" y="${y + 4}" class="tick" text-anchor="end">${fmt(v)}</text>`);
  }
  parts.push(`<text transform="translate(12 ${(H - M.b + M.t) / 2}) rotate(-90)" class="axis" text-anchor="middle">${esc(yLabel)}</text>`);
  return parts.join('');
}

function legend(names: string[], color: (n: string) => string): string {
  return `<div class="legend">${names.map((n) => `<span><i style="background:${color(n)}"></i>${esc(n)}</span>`).join('')}</div>`;
}

/** Line chart: held pages after each job, one line per stack. */
function pagesChart(workload: string, rs: SimResult[], color: (n: string) => string): string {
  const yMax = niceMax(Math.max(...rs.flatMap((r) => r.pagesOverTime), 1));
  const plotW = W - M.l - M.r;
  const plotH = H - M.t - M.b;
  const lines = rs.map((r) => {
    const n = r.pagesOverTime.length;
    const pts = r.pagesOverTime.map((v, i) => `${(M.l + (n <= 1 ? 0 : (plotW * i) / (n - 1))).toFixed(1)},${(H - M.b - (plotH * v) / yMax).toFixed(1)}`).join(' ');
    return `<polyline class="mark" data-series="${esc(r.stack)}" points="${pts}" fill="none" stroke="${color(r.stack)}" stroke-width="1.6"><title>${esc(r.stack)}: peak ${fmtInt(r.peakPages)} pages</title></polyline>`;
  });
  return (
    `<figure><svg class="chart" data-chart="pages-over-time" data-workload="${esc(workload)}" viewBox="0 0 ${W} ${H}" role="img" aria-label="pages over time, ${esc(workload)}">` +
    axes(`Pages held over time — ${workload}`, yMax, 'pages held') +
    `<text x="${(M.l + W - M.r) / 2}" y="${H - 10}" class="axis" text-anchor="middle">jobs (VM_BIND batches) →</text>` +
    lines.join('') +
    `</svg></figure>`
  );
}

/** Grouped bars: groups along x, one bar per series in each group. */
function barChart(kind: string, title: string, yLabel: string, groups: string[], series: string[], value: (g: string, s: string) => number | null, color: (n: string) => string, fmt: (n: number) => string): string {
  const vals = groups.flatMap((g) => series.map((s) => value(g, s) ?? 0));
  const yMax = niceMax(Math.max(...vals, 0));
  const plotW = W - M.l - M.r;
  const plotH = H - M.t - M.b;
  const gw = plotW / groups.length;
  const bw = Math.max(2, (gw * 0.8) / series.length);
  const marks: string[] = [];
  groups.forEach((g, gi) => {
    series.forEach((s, si) => {
      const v = value(g, s);
      if (v === null) return;
      const h = Math.max(1, (plotH * v) / yMax);
      const x = M.l + gi * gw + gw * 0.1 + si * bw;
      marks.push(`<rect class="mark" x="${x.toFixed(1)}" y="${(H - M.b - h).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${color(s)}"><title>${esc(g)} / ${esc(s)}: ${fmt(v)}</title></rect>`);
    });
    marks.push(`<text x="${(M.l + gi * gw + gw / 2).toFixed(1)}" y="${H - M.b + 14}" class="tick" text-anchor="middle">${esc(g)}</text>`);
  });
  return `<figure><svg class="chart" data-chart="${kind}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">${axes(title, yMax, yLabel, fmt)}${marks.join('')}</svg></figure>`;
}

export function renderReport(d: ReportData): string {
  const stacks = d.stacks.map((s) => s.name);
  const colorOf = new Map(stacks.map((s, i) => [s, PALETTE[i % PALETTE.length]!]));
  const color = (n: string) => colorOf.get(n) ?? '#888';
  const get = (w: string, s: string) => d.results.find((r) => r.workload === w && r.stack === s);
  const workloads = d.workloads.map((w) => w.name);

  const pageCharts = workloads.map((w) => pagesChart(w, d.results.filter((r) => r.workload === w), color)).join('');
  const backing = barChart('backing-calls', 'Backing (page-allocator) calls per stack', 'calls', workloads, stacks, (w, s) => get(w, s)?.backingCalls ?? null, color, compact);
  const overProv = barChart('over-provisioning', 'Over-provisioning per workload (peak held / peak live − 1)', 'over-provisioning', workloads, stacks, (w, s) => {
    const r = get(w, s);
    return r ? r.overProvisioning * 100 : null;
  }, color, (n) => `${+n.toFixed(1)}%`);

  const rows = d.results
    .map(
      (r) =>
        `<tr><td>${esc(r.workload)}</td><td><i class="sw" style="background:${color(r.stack)}"></i>${esc(r.stack)}</td><td>${fmtInt(r.tablesAllocated)}</td><td>${fmtInt(r.backingCalls)}</td><td>${fmtInt(r.peakPages)}</td><td>${fmtPct(r.overProvisioning)}</td><td>${fmtPct(r.poolHitRate)}</td><td>${fmtInt(r.secureCalls)}</td><td>${(r.secureNs / 1e6).toFixed(1)}</td><td>${fmtInt(r.nsPerOp)}</td></tr>`,
    )
    .join('\n');
  const skipped = d.skipped.length
    ? `<p class="note">Not measured: ${d.skipped.map((s) => `<b>${esc(s.stack)}</b> (${esc(s.reason)})`).join('; ')}.</p>`
    : '';
  const wl = d.workloads.map((w) => `<li><b>${esc(w.name)}</b> — ${esc(w.description)} (${w.contexts} context${w.contexts > 1 ? 's' : ''}, ${esc(w.format)}, ${fmtInt(w.jobs)} jobs, ${fmtInt(w.rangeOps)} range ops)</li>`).join('');
  const st = d.stacks.map((s) => `<li><i class="sw" style="background:${color(s.name)}"></i><b>${esc(s.name)}</b> — ${esc(s.description)}</li>`).join('');

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>io-pgtable allocator comparison</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}th{background:#f6f6f6;position:sticky;top:0}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}figure{margin:0;border:1px solid #eee;border-radius:6px;padding:6px}
svg.chart{width:100%;height:auto;display:block}.title{font-size:13px;font-weight:600}.tick{font-size:10px;fill:#555}.axis{font-size:11px;fill:#333}.grid{stroke:#eee}
.legend{display:flex;flex-wrap:wrap;gap:12px;margin:6px 0 10px}.legend i,.sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:5px;vertical-align:-1px}
.note{color:#8a5a00;background:#fff7e6;padding:6px 10px;border-radius:4px}.meta{color:#666}
</style></head><body>
<h1>Which page-table allocator should my driver use?</h1>
<p class="meta">${esc(d.tool)} ${esc(d.version)} · seed ${d.config.seed} · scale ${d.config.scale}${d.config.trace ? ` · trace ${esc(d.config.trace)}` : ''} · ${esc(d.machine)}</p>
${skipped}
<h2>Comparison</h2>
<table><thead><tr>${TABLE_HEADERS.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>
${rows}
</tbody></table>
<p class="meta">tables: page-table pages allocated · backing calls: calls into the page allocator (a bulk refill counts once) · peak pages: most pages held from the page allocator · over-prov: peak held / peak live in tables − 1 · pool hits: allocations served from a pool · secure: secure-monitor calls and modelled time · ns/op: wall time per range op on this machine.</p>
<h2>Charts</h2>
${legend(stacks, color)}
<div class="charts">${pageCharts}${backing}${overProv}</div>
<h2>Workloads</h2><ul>${wl}</ul>
<h2>Stacks</h2><ul>${st}</ul>
<script type="application/json" id="report-data">${JSON.stringify(d).replace(/</g, '\\u003c')}</script>
</body></html>
`;
}
