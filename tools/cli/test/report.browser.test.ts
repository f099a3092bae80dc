/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The HTML report in a real browser: Debian's chromium, headless, driven by
 * playwright-core. The project installs chromium itself when it is missing (CI machines
 * start clean); we run as root there.
 */
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, tempDir } from './helpers';

const CHROMIUM = '/usr/bin/chromium';
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

let browser: Browser;
let outDir: string;

beforeAll(() => {
  if (!existsSync(CHROMIUM)) {
    execSync('apt-get update && apt-get install -y chromium', { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }, timeout: 900_000 });
  }
  outDir = tempDir('iopgt-report-');
  const r = cli(['compare', '--out-dir', outDir, '--scale', '0.05']);
  if (r.status !== 0) throw new Error(`compare failed (${r.status}): ${r.stderr}`);
}, 960_000);

beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
}, 120_000);

afterAll(async () => {
  await browser?.close();
});

describe('report/index.html in headless chromium', () => {
  it('loads without console errors or network requests, and every chart draws data', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('request', (req) => {
      if (!req.url().startsWith('file:')) requests.push(req.url());
    });
    await page.goto(pathToFileURL(join(outDir, 'index.html')).href, { waitUntil: 'load' });

    const charts = await page.evaluate(() =>
      [...document.querySelectorAll<SVGSVGElement>('svg.chart')].map((svg) => {
        const marks = [...svg.querySelectorAll<SVGGraphicsElement>('.mark')];
        const drawn = marks.filter((m) => {
          const b = m.getBBox();
          return b.width > 0 || b.height > 0;
        });
        const box = svg.getBoundingClientRect();
        return { kind: svg.dataset.chart ?? '', marks: marks.length, drawn: drawn.length, width: box.width, height: box.height };
      }),
    );
    const rows = await page.locator('table tbody tr').count();
    await page.screenshot({ path: join(outDir, 'report.png'), fullPage: true });
    console.log(`report screenshot: ${join(outDir, 'report.png')}`);

    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    expect(charts.filter((c) => c.kind === 'pages-over-time')).toHaveLength(5);
    expect(charts.filter((c) => c.kind === 'backing-calls')).toHaveLength(1);
    expect(charts.filter((c) => c.kind === 'over-provisioning')).toHaveLength(1);
    for (const c of charts) {
      expect(c.width, c.kind).toBeGreaterThan(200);
      expect(c.height, c.kind).toBeGreaterThan(80);
      expect(c.marks, c.kind).toBeGreaterThan(0);
      expect(c.drawn, c.kind).toBe(c.marks);
    }
    expect(rows).toBeGreaterThanOrEqual(5);
  }, 120_000);
});
