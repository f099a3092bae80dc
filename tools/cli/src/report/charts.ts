/**
 * Inline SVG charts for the report (no chart library, no network). Every chart is an
 * `<svg class="chart">` with a title, labelled axes (`.axis-label`, with the unit) and
 * ticks (`.tick`); its data marks have the class `mark`, so a browser test can check that
 * each one drew. All text goes through the escaping `html` template.
 */
import { html, type Html } from './template.js';

export function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export function compact(n: number): string {
  if (Math.abs(n) >= 1e6) return `${+(n / 1e6).toFixed(1)}M`;
  if (Math.abs(n) >= 1e4) return `${+(n / 1e3).toFixed(1)}k`;
  return `${+n.toFixed(2)}`;
}

/** A page count as a tick: the count and its size in KiB/MiB (4 KiB pages). */
export function pagesTick(n: number): string {
  const kib = n * 4;
  const size = kib >= 1024 * 1024 ? `${+(kib / 1024 / 1024).toFixed(1)} GiB` : kib >= 1024 ? `${+(kib / 1024).toFixed(1)} MiB` : `${+kib.toFixed(0)} KiB`;
  return `${compact(n)} · ${size}`;
}

export function nsTick(n: number): string {
  return n >= 1000 ? `${+(n / 1000).toFixed(1)} µs` : `${+n.toFixed(0)} ns`;
}

export interface BarRow {
  label: string;
  value: number;
  /** Spread of repeated runs (whisker). */
  lo?: number;
  hi?: number;
  color: string;
  highlight?: boolean;
}

const BW = 380;
const ROW = 17;
const BL = 118;
const BR = 26;

/** Horizontal bars, one row per stack: a facet of a metric for one workload. */
export function barFacet(o: { kind: string; workload: string; title: string; axis: string; rows: BarRow[]; tick: (n: number) => string; ticks?: number }): Html {
  const top = 24;
  const plotH = o.rows.length * ROW;
  const h = top + plotH + 40;
  const max = niceMax(Math.max(...o.rows.map((r) => Math.max(r.value, r.hi ?? 0)), 0));
  const plotW = BW - BL - BR;
  const x = (v: number) => BL + (plotW * v) / max;
  // Long tick labels (pages with their size) get fewer ticks so they never overlap.
  const nt = o.ticks ?? 4;
  const ticks = Array.from({ length: nt + 1 }, (_, i) => (max * i) / nt);
  return html`<svg class="chart" data-chart="${o.kind}" data-workload="${o.workload}" viewBox="0 0 ${BW} ${h}" role="img" aria-label="${o.title}">
<text x="4" y="15" class="title">${o.title}</text>
${ticks.map((t, i) => html`<line class="grid" x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${top - 2}" y2="${top + plotH}"/><text class="tick" data-axis="x" x="${x(t).toFixed(1)}" y="${top + plotH + 12}" text-anchor="${i === nt ? 'end' : 'middle'}">${o.tick(t)}</text>`)}
${o.rows.map((r, i) => {
    const y = top + i * ROW;
    const w = Math.max(1, x(r.value) - BL);
    const whisker = r.lo !== undefined && r.hi !== undefined && r.hi > r.lo ? html`<line class="whisker" x1="${x(r.lo).toFixed(1)}" x2="${x(r.hi).toFixed(1)}" y1="${y + ROW / 2 - 1}" y2="${y + ROW / 2 - 1}"/>` : '';
    return html`<text class="tick${r.highlight ? ' pick' : ''}" data-axis="y" x="${BL - 6}" y="${y + ROW / 2 + 3}" text-anchor="end">${r.highlight ? '★ ' : ''}${r.label}</text><rect class="mark${r.highlight ? ' pick' : ''}" x="${BL}" y="${y + 2}" width="${w.toFixed(1)}" height="${ROW - 5}" fill="${r.color}"><title>${r.label}: ${o.tick(r.value)}</title></rect>${whisker}`;
  })}
<text class="axis-label" data-axis="x" x="${BL + plotW / 2}" y="${h - 6}" text-anchor="middle">${o.axis}</text>
<text class="axis-label" data-axis="y" x="4" y="${top + plotH + 12}">stack</text>
</svg>`;
}

const LW = 330;
const LH = 130;
const LM = { l: 84, r: 10, t: 20, b: 30 };

/** One line over the jobs of a workload: a cell of the per-stack timeline. */
export function lineCell(o: { kind: string; workload: string; stack: string; title: string; axis: string; series: number[]; jobs: number; color: string; tick: (n: number) => string }): Html {
  const max = niceMax(Math.max(...o.series, 0));
  const plotW = LW - LM.l - LM.r;
  const plotH = LH - LM.t - LM.b;
  const n = o.series.length;
  const y = (v: number) => LH - LM.b - (plotH * v) / max;
  const pts = o.series.map((v, i) => `${(LM.l + (n <= 1 ? 0 : (plotW * i) / (n - 1))).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const yt = [0, 0.5, 1].map((f) => max * f);
  const xt = [0, 0.5, 1].map((f) => Math.round(o.jobs * f));
  return html`<svg class="chart" data-chart="${o.kind}" data-workload="${o.workload}" data-stack="${o.stack}" viewBox="0 0 ${LW} ${LH}" role="img" aria-label="${o.title}">
<text x="4" y="13" class="title">${o.title}</text>
${yt.map((t) => html`<line class="grid" x1="${LM.l}" x2="${LW - LM.r}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}"/><text class="tick" data-axis="y" x="${LM.l - 4}" y="${(y(t) + 3).toFixed(1)}" text-anchor="end">${o.tick(t)}</text>`)}
${xt.map((t, i) => html`<text class="tick" data-axis="x" x="${(LM.l + (plotW * i) / 2).toFixed(1)}" y="${LH - LM.b + 11}" text-anchor="middle">${t.toLocaleString('en-US')}</text>`)}
<polyline class="mark" points="${pts}" fill="none" stroke="${o.color}" stroke-width="1.5"><title>${o.stack}: up to ${o.tick(Math.max(...o.series, 0))}</title></polyline>
<text class="axis-label" data-axis="x" x="${LM.l + plotW / 2}" y="${LH - 3}" text-anchor="middle">job (VM_BIND batch)</text>
<text class="axis-label" data-axis="y" transform="translate(10 ${LM.t + plotH / 2}) rotate(-90)" text-anchor="middle">${o.axis}</text>
</svg>`;
}
