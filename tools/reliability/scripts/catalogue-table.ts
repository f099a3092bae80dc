/** Print the bad-input catalogue as the markdown table in docs/reliability.md. */
import { ALL_CASES, describeExpect } from '../src/catalogue.js';

const esc = (s: string): string => s.replace(/\|/g, '\\|');
const lines = ['| # | id | surface | input | expected |', '|---|---|---|---|---|'];
ALL_CASES.forEach((c, i) => {
  const where = c.surface === 'api' ? `api: \`${c.call}\`` : c.surface;
  lines.push(`| ${i + 1} | \`${c.id}\` | ${where} | ${esc(c.input)} | ${esc(describeExpect(c))} |`);
});
console.log(lines.join('\n'));
