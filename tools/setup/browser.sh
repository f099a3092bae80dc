#!/usr/bin/env bash
# Make a Chromium available for the HTML report's browser test (tools/cli/test/report.browser.test.ts).
# CI calls this where it runs as root (.ci/run); elsewhere install a Chromium yourself and put it
# on PATH, or point IOPGT_CHROMIUM at its executable. The test never installs anything itself.
set -euo pipefail

find_browser() {
  if [[ -n "${IOPGT_CHROMIUM:-}" && -x "${IOPGT_CHROMIUM}" ]]; then echo "${IOPGT_CHROMIUM}"; return 0; fi
  local name
  for name in chromium chromium-browser google-chrome-stable google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
  done
  return 1
}

if found=$(find_browser); then
  echo "browser: ${found}"
  exit 0
fi

if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
  echo "browser: none found; installing Debian's chromium with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
  found=$(find_browser) || { echo "browser: apt-get installed chromium but it is not on PATH" >&2; exit 1; }
  echo "browser: ${found}"
  exit 0
fi

echo "browser: no Chromium found and cannot install one here (needs root and apt-get)." >&2
echo "browser: install Chromium or Chrome, then put it on PATH or set IOPGT_CHROMIUM=/path/to/chrome." >&2
exit 1
