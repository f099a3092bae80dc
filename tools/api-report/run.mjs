#!/usr/bin/env node
/**
 * API reports: api-extractor reads a package's published declarations (dist/index.d.ts, built
 * from the TSDoc-commented sources) and writes its public API, signature by signature, to
 * `<package>/api/<name>.api.md`. The reports are checked in, so a change to a public API shows
 * up in review as a diff of that file, and `npm test` fails when the report is out of date.
 *
 *   node tools/api-report/run.mjs            check the package in the current directory (nx `api` target)
 *   node tools/api-report/run.mjs --update   rewrite its report (after an intended API change)
 *   node tools/api-report/run.mjs --all [--update]   every publishable package (npm run api:update)
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const update = process.argv.includes('--update');
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));

function packageDirs() {
  if (!process.argv.includes('--all')) return [process.cwd()];
  return readJson(join(repoRoot, 'package.json'))
    .workspaces.map((ws) => join(repoRoot, ws))
    .filter((d) => existsSync(join(d, 'package.json')) && !readJson(join(d, 'package.json')).private);
}

function report(dir) {
  const pkg = readJson(join(dir, 'package.json'));
  const entry = join(dir, 'dist/index.d.ts');
  const where = relative(repoRoot, dir);
  if (!existsSync(entry)) throw new Error(`${where}: no dist/index.d.ts; build first (npx nx run ${pkg.name}:build)`);
  mkdirSync(join(dir, 'api'), { recursive: true });
  const config = ExtractorConfig.prepare({
    configObject: {
      projectFolder: dir,
      mainEntryPointFilePath: entry,
      compiler: { overrideTsconfig: { compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true, types: ['node'] }, files: [entry] } },
      apiReport: { enabled: true, reportFolder: join(dir, 'api'), reportTempFolder: join(tmpdir(), 'io-pgtable-api-report', pkg.name.replace(/[@/]/g, '_')), reportFileName: '<unscopedPackageName>' },
      docModel: { enabled: false },
      dtsRollup: { enabled: false },
      tsdocMetadata: { enabled: false },
      newlineKind: 'lf',
      messages: {
        // The report is the review artefact; these rules would ask for release tags and
        // TSDoc syntax this repository does not use, so they are off rather than noise.
        extractorMessageReporting: {
          default: { logLevel: 'warning' },
          'ae-missing-release-tag': { logLevel: 'none' },
          'ae-forgotten-export': { logLevel: 'none', addToApiReportFile: true },
          'ae-internal-missing-underscore': { logLevel: 'none' },
          'ae-undocumented': { logLevel: 'none' },
          'ae-unresolved-link': { logLevel: 'none' },
        },
        tsdocMessageReporting: { default: { logLevel: 'none' } },
        compilerMessageReporting: { default: { logLevel: 'warning' } },
      },
    },
    configObjectFullPath: join(dir, 'api-extractor.json'),
    packageJsonFullPath: join(dir, 'package.json'),
  });
  const result = Extractor.invoke(config, { localBuild: update, showVerboseMessages: false, messageCallback: (m) => {
    if (m.logLevel === 'none') m.handled = true;
  } });
  const file = relative(repoRoot, config.reportFilePath);
  if (result.apiReportChanged && !update) {
    return `${file} is out of date: the public API of ${pkg.name} changed. If that is intended, run \`npm run api:update\` and commit the report (the diff is the API change for review).`;
  }
  if (!result.succeeded && !result.apiReportChanged) return `${pkg.name}: api-extractor failed (${result.errorCount} errors)`;
  console.log(`${file}: ${update && result.apiReportChanged ? 'updated' : 'up to date'}`);
  return null;
}

const problems = packageDirs().map(report).filter(Boolean);
if (problems.length) {
  for (const p of problems) console.error(p);
  process.exitCode = 1;
}
