/**
 * The Chromium the browser test drives: $IOPGT_CHROMIUM, else the first of the usual
 * names on PATH. Installing one is the project's setup step (tools/setup/browser.sh,
 * run by .ci/run as root), never the test's.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

const NAMES = ['chromium', 'chromium-browser', 'google-chrome-stable', 'google-chrome'];

export const NO_BROWSER =
  'no Chromium for the report test: run `bash tools/setup/browser.sh` as root (installs Debian chromium), or install Chromium/Chrome and put it on PATH or set IOPGT_CHROMIUM=/path/to/chrome';

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function findChromium(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.IOPGT_CHROMIUM;
  if (fromEnv) {
    if (executable(fromEnv)) return fromEnv;
    throw new Error(`IOPGT_CHROMIUM=${fromEnv} is not an executable; ${NO_BROWSER}`);
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const n of NAMES) if (executable(join(dir, n))) return join(dir, n);
  }
  throw new Error(NO_BROWSER);
}
