/**
 * The self-contained HTML report: one file, no network, charts as inline SVG. The page
 * is built with the escaping `html` template (every data value is escaped), and a
 * Content-Security-Policy allows only this page's own style sheet and script, by hash.
 * Order: the answer (recommendation per workload and the criteria), costs per metric as
 * small multiples (one facet per workload), the per-stack timeline of the selected
 * workload, then the sortable table of every number.
 */
import { createHash } from 'node:crypto';
import { criteria, type Recommendation } from '../sim/recommend.js';
import { TABLE_HEADERS, spreadPct } from '../sim/run.js';
import type { SimResult } from '../sim/simulate.js';
import { fmtInt, fmtPct } from '../table.js';
import { barFacet, compact, lineCell, nsTick, pagesTick, type BarRow } from './charts.js';
import type { ReportData } from './data.js';
import { html, raw, type Html } from './template.js';

export type { ReportData } from './data.js';

const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

const CSS = `body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1240px;padding:0 16px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:14px;margin:14px 0 6px}
.meta{color:#666}.recs{display:grid;grid-template-columns:repeat(auto-fill,minmax(370px,1fr));gap:10px}
.rec{border:1px solid #cfe3cf;background:#f5fbf5;border-radius:6px;padding:8px 12px}.rec h3{margin:0 0 2px}.rec .pick{font-size:16px;margin:2px 0}
.rec .pick b{color:#1d6b2a}.rec p{margin:3px 0}.rec .runner,.rec .needs{color:#555;font-size:13px}.rec.none{border-color:#e6c3c3;background:#fdf5f5}
.facets{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:8px}figure{margin:0;border:1px solid #eee;border-radius:6px;padding:4px}
svg.chart{width:100%;height:auto;display:block}.title{font-size:12px;font-weight:600}.tick{font-size:9px;fill:#555}.tick.pick{font-weight:700;fill:#1d6b2a}
.axis-label{font-size:10px;fill:#333}.grid{stroke:#eee}.whisker{stroke:#222;stroke-width:1.2}rect.pick{stroke:#1d6b2a;stroke-width:1.5}
.tl-row{display:grid;grid-template-columns:130px repeat(3,minmax(0,340px));gap:6px;align-items:center;border-bottom:1px solid #f0f0f0}.tl-row .name{font-weight:600;font-size:13px}
.swatch{display:inline-block;width:11px;height:11px;margin-right:5px;vertical-align:-1px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}th{background:#f6f6f6;position:sticky;top:0}th button{font:inherit;font-weight:600;border:0;background:none;cursor:pointer;padding:0}
th[aria-sort=ascending] button::after{content:" ▲"}th[aria-sort=descending] button::after{content:" ▼"}tr.pick td{background:#f5fbf5}
select{font:inherit;padding:2px 4px}details{margin:8px 0}`;

/** Sorts the table by a clicked column (numbers by their data-v), and shows the selected workload's timeline. */
const SCRIPT = `(function(){
var table=document.getElementById('results');
var heads=table.querySelectorAll('thead th');
heads.forEach(function(th,col){th.querySelector('button').addEventListener('click',function(){
var asc=th.getAttribute('aria-sort')!=='ascending';
heads.forEach(function(h){h.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',asc?'ascending':'descending');
var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
rows.sort(function(a,b){var x=a.cells[col],y=b.cells[col];var vx=x.dataset.v,vy=y.dataset.v;
var d=(vx!==undefined&&vy!==undefined)?(Number(vx)-Number(vy)):x.textContent.localeCompare(y.textContent);return asc?d:-d;});
rows.forEach(function(r){body.appendChild(r);});});});
var sel=document.getElementById('timeline-workload');
function show(){document.querySelectorAll('.timeline').forEach(function(t){t.hidden=t.dataset.workload!==sel.value;});}
sel.addEventListener('change',show);
document.querySelectorAll('.rec[data-workload]').forEach(function(r){r.addEventListener('click',function(){sel.value=r.dataset.workload;show();});});
show();})();`;

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64');
}

/** Only our own style sheet and script run; nothing is fetched. */
export const CONTENT_SECURITY_POLICY = `default-src 'none'; style-src 'sha256-${sha256(CSS)}'; script-src 'sha256-${sha256(SCRIPT)}'; img-src 'none'; base-uri 'none'; form-action 'none'`;

interface Metric {
  kind: string;
  title: string;
  axis: string;
  value: (r: SimResult) => number;
  tick: (n: number) => string;
  spread?: (r: SimResult) => [number, number];
  ticks?: number;
}

const METRICS: Metric[] = [
  { kind: 'backing-calls', title: 'Backing calls (page allocator, hot path)', axis: 'calls into the page allocator', value: (r) => r.backingCalls, tick: compact },
  { kind: 'secure-calls', title: 'Secure-monitor calls', axis: 'secure calls (each ~50 µs)', value: (r) => r.secureCalls, tick: compact },
  { kind: 'peak-pages', title: 'Peak pages held', axis: 'pages held at peak (4 KiB each)', value: (r) => r.peakPages, tick: pagesTick, ticks: 2 },
  { kind: 'over-provisioning', title: 'Over-provisioning', axis: 'peak held / peak live − 1 (%)', value: (r) => r.overProvisioning * 100, tick: (n) => `${+n.toFixed(1)}%` },
  { kind: 'ns-per-op', title: 'Time per range op', axis: 'ns per op (median; whisker: fastest–slowest run)', value: (r) => r.nsPerOp, tick: nsTick, spread: (r) => [r.nsPerOpMin, r.nsPerOpMax] },
];

/** Stacks ruled out for the same reason, together. */
function excludedGroups(r: Recommendation): Array<[string, string[]]> {
  const by = new Map<string, string[]>();
  for (const e of r.excluded) by.set(e.why, [...(by.get(e.why) ?? []), e.stack]);
  return [...by];
}

function recCard(r: Recommendation, needs: string[]): Html {
  return html`<article class="rec${r.stack ? '' : ' none'}" data-workload="${r.workload}">
<h3>${r.workload}</h3>
<p class="pick">→ <b class="stack">${r.stack ?? 'no stack qualifies'}</b></p>
<p class="reason">${r.reason}</p>
${r.runnerUp ? html`<p class="runner">Runner-up <b>${r.runnerUp}</b>: ${r.tradeOff}</p>` : ''}
<p class="needs">Hard constraints: ${needs.length ? needs.join(', ') : 'none'}${r.excluded.length ? html` · ruled out: ${excludedGroups(r).map(([why, names], i) => html`${i ? '; ' : ''}${names.join(', ')} (${why})`)}` : ''}</p>
</article>`;
}

export function renderReport(d: ReportData): string {
  const stacks = d.stacks.map((s) => s.name);
  const colorOf = new Map(stacks.map((s, i) => [s, PALETTE[i % PALETTE.length]!]));
  const color = (n: string) => colorOf.get(n) ?? '#888';
  const byPair = new Map(d.results.map((r) => [`${r.workload}\0${r.stack}`, r]));
  const get = (w: string, s: string) => byPair.get(`${w}\0${s}`);
  const pickOf = new Map((d.recommendations ?? []).map((r) => [r.workload, r.stack]));

  const answer = d.recommendations
    ? html`<section id="answer"><h2>Recommendation (goal: ${d.config.goal})</h2>
<div class="recs">${d.recommendations.map((r) => recCard(r, d.workloads.find((w) => w.name === r.workload)?.needs ?? []))}</div>
<details open><summary>Criteria, applied in order</summary><ol class="criteria">${criteria(d.config.goal).map((c) => html`<li>${c.replace(/^\d+\. /, '')}</li>`)}</ol></details>
</section>`
    : html`<section id="answer"><h2>Recommendation</h2><p class="note">This file holds shard ${d.shard?.index}/${d.shard?.count} only: merge the shards (io-pgtable report --merge) for the answer.</p></section>`;

  const facets = METRICS.map(
    (m) => html`<h3>${m.title}</h3><div class="facets" data-metric="${m.kind}">${d.workloads.map((w) => {
      const rows: BarRow[] = stacks.flatMap((s) => {
        const r = get(w.name, s);
        if (!r) return [];
        const sp = m.spread?.(r);
        return [{ label: s, value: m.value(r), color: color(s), highlight: pickOf.get(w.name) === s, ...(sp ? { lo: sp[0], hi: sp[1] } : {}) }];
      });
      return html`<figure>${barFacet({ kind: m.kind, workload: w.name, title: w.name, axis: m.axis, rows, tick: m.tick, ...(m.ticks ? { ticks: m.ticks } : {}) })}</figure>`;
    })}</div>`,
  );

  const timelines = d.workloads.map(
    (w, wi) => html`<div class="timeline" data-workload="${w.name}"${wi === 0 ? '' : raw(' hidden')}>
${stacks.map((s) => {
      const r = get(w.name, s);
      if (!r) return '';
      const cell = (kind: string, title: string, axis: string, series: number[], tick: (n: number) => string) =>
        lineCell({ kind, workload: w.name, stack: s, title, axis, series, jobs: w.jobs, color: color(s), tick });
      return html`<div class="tl-row"><div class="name"><svg class="swatch" viewBox="0 0 10 10"><rect width="10" height="10" fill="${color(s)}"/></svg>${s}${pickOf.get(w.name) === s ? ' ★' : ''}</div>
${cell('timeline-pages', 'pages held', 'pages', r.pagesOverTime, pagesTick)}
${cell('timeline-backing', 'backing calls (cumulative)', 'calls', r.backingOverTime, compact)}
${cell('timeline-secure', 'secure calls (cumulative)', 'calls', r.secureOverTime, compact)}</div>`;
    })}</div>`,
  );

  const num = (v: number, text: string) => html`<td data-v="${v}">${text}</td>`;
  const rows = d.results.map(
    (r) => html`<tr${pickOf.get(r.workload) === r.stack ? raw(' class="pick"') : ''}><td>${r.workload}</td><td><svg class="swatch" viewBox="0 0 10 10"><rect width="10" height="10" fill="${color(r.stack)}"/></svg>${r.stack}${pickOf.get(r.workload) === r.stack ? ' ★' : ''}</td>${num(r.tablesAllocated, fmtInt(r.tablesAllocated))}${num(r.backingCalls, fmtInt(r.backingCalls))}${num(r.peakPages, fmtInt(r.peakPages))}${num(r.overProvisioning, fmtPct(r.overProvisioning))}${num(r.poolHitRate ?? -1, fmtPct(r.poolHitRate))}${num(r.secureCalls, fmtInt(r.secureCalls))}${num(r.secureNs, (r.secureNs / 1e6).toFixed(1))}${num(r.nsPerOp, fmtInt(r.nsPerOp))}${num(r.nsPerOpRuns > 1 && r.nsPerOp > 0 ? (r.nsPerOpMax - r.nsPerOpMin) / r.nsPerOp : -1, spreadPct(r))}</tr>\n`,
  );

  const page = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>io-pgtable allocator comparison</title>
<style>${raw(CSS)}</style></head><body>
<h1>Which page-table allocator should my driver use?</h1>
<p class="meta">${d.tool} ${d.version} · seed ${d.config.seed} · scale ${d.config.scale}${d.config.traces.length ? ` · traces ${d.config.traces.join(', ')}` : ''} · ns/op: median of ${d.config.reps} runs · ${d.machine} · ${d.jobs} worker${d.jobs > 1 ? 's' : ''}</p>
${answer}
<section id="metrics"><h2>Costs per metric (one panel per workload; ★ = recommended)</h2>${facets}</section>
<section id="timeline"><h2>Timeline per stack</h2>
<p><label>Workload <select id="timeline-workload">${d.workloads.map((w) => html`<option value="${w.name}">${w.name}</option>`)}</select></label> <span class="meta">after each job: pages held from the page allocator, and backing and secure calls so far</span></p>
${timelines}</section>
<section id="table-section"><h2>All results</h2><p class="meta">Click a column to sort.</p>
<table id="results" class="sortable"><thead><tr>${TABLE_HEADERS.map((h) => html`<th scope="col"><button type="button">${h}</button></th>`)}</tr></thead><tbody>
${rows}</tbody></table>
<p class="meta">tables: page-table pages allocated · backing calls: calls into the page allocator (a bulk refill counts once) · peak pages: most pages held from the page allocator · over-prov: peak held / peak live in tables − 1 · pool hits: allocations served from a pool · secure: secure-monitor calls and modelled time · ns/op: wall time per range op on this machine, median of the runs, spread = ±half the fastest-to-slowest range.</p>
</section>
<section id="about"><h2>Workloads</h2><ul>${d.workloads.map((w) => html`<li><b>${w.name}</b> — ${w.description} (${w.contexts} context${w.contexts > 1 ? 's' : ''}, ${w.format}, ${fmtInt(w.jobs)} jobs, ${fmtInt(w.rangeOps)} range ops${w.needs.length ? `; needs ${w.needs.join(', ')}` : ''})</li>`)}</ul>
<h2>Stacks</h2><ul>${d.stacks.map((s) => html`<li><svg class="swatch" viewBox="0 0 10 10"><rect width="10" height="10" fill="${color(s.name)}"/></svg><b>${s.name}</b> — ${s.description}</li>`)}</ul></section>
<script type="application/json" id="report-data">${raw(JSON.stringify(d).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029'))}</script>
<script>${raw(SCRIPT)}</script>
</body></html>
`;
  return page.text;
}
