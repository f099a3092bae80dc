/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The HTML report in a real browser: headless Chromium driven by playwright-core. The
 * browser comes from the project's setup step (see ./browser.ts); without one this test
 * fails with one line saying how to get it.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium } from './browser';
import { cli, tempDir } from './helpers';

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let browser: Browser;
let outDir: string;
let data: {
  workloads: Array<{ name: string }>;
  stacks: Array<{ name: string }>;
  recommendations: Array<{ workload: string; stack: string; reason: string; runnerUp: string }>;
};

beforeAll(async () => {
  const executablePath = findChromium();
  outDir = tempDir('iopgt-report-');
  const r = cli(['compare', '--out-dir', outDir, '--scale', '0.05', '--reps', '3']);
  if (r.status !== 0) throw new Error(`compare failed (${r.status}): ${r.stderr}`);
  data = JSON.parse(readFileSync(join(outDir, 'data.json'), 'utf8'));
  browser = await chromium.launch({ executablePath, args: FLAGS });
}, 300_000);

afterAll(async () => {
  await browser?.close();
});

/** Open a page, recording console errors, page errors, dialogs and every non-file request. */
async function open(file: string): Promise<{ page: Page; errors: string[]; requests: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('dialog', (d) => {
    errors.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('request', (req) => {
    if (!req.url().startsWith('file:')) requests.push(req.url());
  });
  await page.goto(pathToFileURL(file).href, { waitUntil: 'load' });
  return { page, errors, requests };
}

describe('report/index.html in headless chromium', () => {
  it('answers first, draws every chart with labelled axes, and loads nothing from the network', async () => {
    const { page, errors, requests } = await open(join(outDir, 'index.html'));
    // The recommendation is the first thing under the title, one card per workload, as in data.json.
    const firstSection = await page.evaluate(() => document.querySelector('h1')!.nextElementSibling!.nextElementSibling!.id);
    expect(firstSection).toBe('answer');
    const cards = await page.$$eval('#answer .rec', (els) => els.map((e) => ({ workload: e.getAttribute('data-workload'), stack: e.querySelector('.stack')!.textContent, reason: e.querySelector('.reason')!.textContent, runner: e.querySelector('.runner')?.textContent ?? '' })));
    expect(cards).toHaveLength(data.workloads.length);
    for (const [i, rec] of data.recommendations.entries()) {
      expect(cards[i]).toMatchObject({ workload: rec.workload, stack: rec.stack, reason: rec.reason });
      expect(cards[i]!.runner).toContain(rec.runnerUp);
    }
    expect(await page.locator('#answer ol.criteria li').count()).toBe(4);

    const charts = await page.evaluate(() =>
      [...document.querySelectorAll<SVGSVGElement>('svg.chart')].map((svg) => {
        const visible = svg.getBoundingClientRect().width > 0;
        const marks = [...svg.querySelectorAll<SVGGraphicsElement>('.mark')];
        const drawn = marks.filter((m) => {
          const b = m.getBBox();
          return b.width > 0 || b.height > 0;
        });
        const label = (axis: string) => svg.querySelector(`.axis-label[data-axis="${axis}"]`)?.textContent ?? '';
        const ticks = (axis: string) => [...svg.querySelectorAll(`.tick[data-axis="${axis}"]`)].map((t) => t.textContent ?? '');
        return { kind: svg.dataset.chart ?? '', workload: svg.dataset.workload ?? '', visible, marks: marks.length, drawn: drawn.length, xLabel: label('x'), yLabel: label('y'), xTicks: ticks('x'), yTicks: ticks('y'), width: svg.getBoundingClientRect().width };
      }),
    );
    const W = data.workloads.length;
    const S = data.stacks.length;
    // Small multiples: one facet per workload for each metric.
    for (const kind of ['backing-calls', 'secure-calls', 'peak-pages', 'over-provisioning', 'ns-per-op']) {
      expect(charts.filter((c) => c.kind === kind).map((c) => c.workload), kind).toEqual(data.workloads.map((w) => w.name));
    }
    for (const kind of ['timeline-pages', 'timeline-backing', 'timeline-secure']) expect(charts.filter((c) => c.kind === kind)).toHaveLength(W * S);
    for (const c of charts.filter((x) => x.visible)) {
      const id = `${c.kind}/${c.workload}`;
      expect(c.width, id).toBeGreaterThan(150);
      expect(c.marks, id).toBeGreaterThan(0);
      expect(c.drawn, id).toBe(c.marks);
      expect(c.xLabel, id).not.toBe('');
      expect(c.yLabel, id).not.toBe('');
      expect(c.xTicks.length, id).toBeGreaterThanOrEqual(2);
      expect(c.yTicks.length, id).toBeGreaterThanOrEqual(2);
    }
    // Units on the axes; pages also in KiB/MiB.
    const peak = charts.find((c) => c.kind === 'peak-pages')!;
    expect(peak.xLabel).toContain('pages');
    expect(peak.xTicks.at(-1)).toMatch(/ · [\d.]+ (KiB|MiB|GiB)$/);
    expect(charts.find((c) => c.kind === 'ns-per-op')!.xTicks.at(-1)).toMatch(/(ns|µs)$/);

    // The timeline shows the selected workload only, and follows the selection.
    const shown = () => page.evaluate(() => [...document.querySelectorAll<HTMLElement>('.timeline')].filter((t) => !t.hidden).map((t) => t.dataset.workload));
    expect(await shown()).toEqual([data.workloads[0]!.name]);
    await page.selectOption('#timeline-workload', data.workloads[3]!.name);
    expect(await shown()).toEqual([data.workloads[3]!.name]);
    expect(await page.locator('.timeline:not([hidden]) svg.chart').count()).toBe(3 * S);
    // Clicking a recommendation selects its workload's timeline.
    await page.click(`#answer .rec[data-workload="${data.workloads[1]!.name}"]`);
    expect(await shown()).toEqual([data.workloads[1]!.name]);

    // The table sorts by a clicked column, numerically, both ways.
    const rows = await page.locator('#results tbody tr').count();
    expect(rows).toBe(W * S);
    const column = async (i: number) => page.$$eval(`#results tbody tr td:nth-child(${i})`, (tds) => tds.map((td) => Number((td as HTMLElement).dataset.v)));
    await page.click('#results th:nth-child(5) button');
    const asc = await column(5);
    expect(asc).toEqual([...asc].sort((a, b) => a - b));
    expect(await page.getAttribute('#results th:nth-child(5)', 'aria-sort')).toBe('ascending');
    await page.click('#results th:nth-child(5) button');
    const desc = await column(5);
    expect(desc).toEqual([...asc].sort((a, b) => b - a));

    await page.selectOption('#timeline-workload', data.workloads[0]!.name);
    await page.click('#results th:nth-child(1) button');
    await page.screenshot({ path: join(outDir, 'report.png'), fullPage: true });
    console.log(`report screenshot: ${join(outDir, 'report.png')}`);
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
  }, 240_000);

  it('hostile strings in every data.json field are shown as text: no script runs, nothing is fetched', async () => {
    const payloads = [
      '<img src=x onerror="window.__pwned=1">',
      '"><script>window.__pwned=2</script>',
      "'><svg onload=window.__pwned=3>",
      '</script><script>window.__pwned=4</script><!--',
      '</style><img src=https://example.invalid/x>',
      '`${window.__pwned=5}`&amp;<b>bold</b>',
    ];
    const src = JSON.parse(readFileSync(join(outDir, 'data.json'), 'utf8'));
    let n = 0;
    const evil = () => `${payloads[n++ % payloads.length]}#${n}`;
    const wNames = new Map<string, string>(src.workloads.map((w: { name: string }) => [w.name, evil()]));
    const sNames = new Map<string, string>(src.stacks.map((s: { name: string }) => [s.name, evil()]));
    const d = {
      ...src,
      tool: evil(),
      version: evil(),
      machine: evil(),
      config: { ...src.config, traces: [evil(), evil()] },
      workloads: src.workloads.map((w: Record<string, unknown>) => ({ ...w, name: wNames.get(w.name as string), description: evil(), format: evil() })),
      stacks: src.stacks.map((s: Record<string, unknown>) => ({ ...s, name: sNames.get(s.name as string), description: evil() })),
      results: src.results.map((r: Record<string, unknown>) => ({ ...r, workload: wNames.get(r.workload as string), stack: sNames.get(r.stack as string) })),
      // Stored recommendations are recomputed, but make them hostile too.
      recommendations: src.recommendations.map((x: Record<string, unknown>) => ({ ...x, workload: evil(), reason: evil(), tradeOff: evil() })),
    };
    const dir = tempDir('iopgt-hostile-');
    writeFileSync(join(dir, 'data.json'), JSON.stringify(d));
    const r = cli(['report', '--in', join(dir, 'data.json')]);
    expect(r.status, r.stderr).toBe(0);
    const { page, errors, requests } = await open(join(dir, 'index.html'));
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.locator('img, body script:not([id]) ~ script, svg [onload]').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(2);
    const text = await page.evaluate(() => document.body.innerText);
    for (const name of [...wNames.values(), ...sNames.values(), d.tool, d.machine]) expect(text).toContain(name);
    const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
    expect(csp).toMatch(/^default-src 'none'; style-src 'sha256-[^']+'; script-src 'sha256-[^']+';/);
    // The page still works: its own script ran (sorting), under the policy.
    await page.click('#results th:nth-child(4) button');
    expect(await page.getAttribute('#results th:nth-child(4)', 'aria-sort')).toBe('ascending');
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
  }, 240_000);
});
