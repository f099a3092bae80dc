/**
 * The catalogue as markdown: the generated part of docs/reliability.md, between the
 * BEGIN and END markers. `npm run catalogue -- --write` rewrites it; a test fails when
 * the committed doc differs from what the catalogue renders.
 */
import { CLASSES, type Case, type IssueClass } from './types.js';

export const BEGIN = '<!-- catalogue:begin (generated from src/catalogue by `npm run catalogue -- --write`; do not edit) -->';
export const END = '<!-- catalogue:end -->';

const esc = (s: string): string => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** Where a case applies, for the tables: the API call, `trace`, the CLI command or the check's own label. */
export function whereOf(c: Case): string {
  if (c.surface === 'api') return `api: \`${c.call}\``;
  if (c.surface === 'cli') return `cli: \`${c.args[0] ?? ''}\``;
  if (c.surface === 'trace') return 'trace';
  return c.where;
}

/** The expected outcome in words. */
export function describeExpect(c: Case): string {
  if (c.surface === 'trace') return `TraceError at line ${c.line}: /${c.match.source}/`;
  if (c.surface === 'cli') return `exit ${c.exit}, stderr /${c.match.source}/${c.stdout ? `, stdout /${c.stdout.source}/` : ''}`;
  if (c.surface === 'check') return c.expected;
  const e = c.expect;
  if (e.kind === 'errno') return `{ error: '${e.code}' }, message /${e.match.source}/`;
  if (e.kind === 'ret') return `returns ${e.value}`;
  return `throws ${e.cls}${e.code ? ` (${e.code})` : ''}: /${e.match.source}/`;
}

export const categoryOf = (c: Case): IssueClass => c.category ?? 'bad-value';

/** The generated section: counts, the class coverage table and one row per case. */
export function renderCatalogue(cases: readonly Case[]): string {
  const bySurface = (s: Case['surface']) => cases.filter((c) => c.surface === s).length;
  const out = [
    BEGIN,
    '',
    `${cases.length} cases: ${bySurface('api')} API, ${bySurface('trace')} trace format, ${bySurface('cli')} CLI, ${bySurface('check')} other checks.`,
    '',
    '| class | cases | where |',
    '|---|---:|---|',
  ];
  for (const [cls, what] of Object.entries(CLASSES) as [IssueClass, string][]) {
    const mine = cases.filter((c) => categoryOf(c) === cls);
    const where = new Map<string, number>();
    for (const c of mine) where.set(whereOf(c), (where.get(whereOf(c)) ?? 0) + 1);
    const list = [...where].map(([w, n]) => `${w} (${n})`).join(', ');
    out.push(`| \`${cls}\`: ${esc(what)} | ${mine.length} | ${esc(list)} |`);
  }
  out.push('', '| # | id | class | where | input | expected |', '|---|---|---|---|---|---|');
  cases.forEach((c, i) => {
    out.push(`| ${i + 1} | \`${c.id}\` | ${categoryOf(c)} | ${esc(whereOf(c))} | ${esc(c.input)} | ${esc(describeExpect(c))} |`);
  });
  out.push('', END);
  return out.join('\n');
}

/** `doc` with its generated section replaced by `section`; throws if the markers are missing. */
export function replaceSection(doc: string, section: string): string {
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`docs/reliability.md lacks the catalogue markers ${BEGIN} ... ${END}`);
  return doc.slice(0, a) + section + doc.slice(b + END.length);
}
