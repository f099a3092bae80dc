#!/usr/bin/env node
// A committed entry point: npm links a package's bin only if the file exists at install
// time, and dist/ does not exist yet in a fresh clone. The CLI itself is dist/bin.js.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/bin.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('io-pgtable: the CLI is not built yet; run `npm run build` (npm start and npm test build it too)\n');
  process.exit(2);
}
await import(entry.href);
