/**
 * The bad-input catalogue's section of docs/reliability.md. No option: print it.
 * `--write`: rewrite the section in place. `--check`: exit 1 if the doc is stale.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ALL_CASES } from '../src/catalogue/index.js';
import { renderCatalogue, replaceSection } from '../src/catalogue/render.js';
import { findDoc } from '../src/catalogue/doc-path.js';

const DOC_PATH = findDoc();

const section = renderCatalogue(ALL_CASES);
const mode = process.argv[2];
if (mode === undefined) console.log(section);
else if (mode === '--write' || mode === '--check') {
  const doc = readFileSync(DOC_PATH, 'utf8');
  const next = replaceSection(doc, section);
  if (mode === '--write') {
    if (next !== doc) writeFileSync(DOC_PATH, next);
    console.log(`${DOC_PATH}: ${ALL_CASES.length} cases${next === doc ? ' (unchanged)' : ''}`);
  } else if (next !== doc) {
    console.error(`${DOC_PATH} is stale: run \`npm run catalogue -- --write\` in tools/reliability`);
    process.exitCode = 1;
  }
} else {
  console.error(`unknown option ${JSON.stringify(mode)}: use --write or --check`);
  process.exitCode = 2;
}
