#!/usr/bin/env bash
# Makes sure a C compiler that targets wasm32 is available for @io-pgtable/c-allocator's tests
# and examples: Debian's `clang` (the wasm32 backend is built in) plus `lld` (which provides
# `wasm-ld`, the linker clang runs for --target=wasm32).
#
# - Both already present: prints what it found and exits 0.
# - Missing and running as root with apt-get: installs them from Debian (no other network).
# - Missing and not installable: prints ONE line saying what is missing and how to get it,
#   and exits 0, so the rest of CI still runs; the tests that need the compiler then fail
#   with the same message (packages/c-allocator/test/helpers/compiler.ts).
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }
found() { have clang && { have wasm-ld || have wasm-ld-14 || have wasm-ld-15 || have wasm-ld-16; }; }

if found; then
  echo "clang.sh: $(clang --version | head -n1); wasm-ld present"
  exit 0
fi

if [[ $(id -u) -eq 0 ]] && have apt-get; then
  echo "clang.sh: installing Debian's clang and lld (wasm32 compiler and linker)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends clang lld >/dev/null
fi

if found; then
  echo "clang.sh: $(clang --version | head -n1); wasm-ld present"
else
  echo "clang.sh: clang and wasm-ld (lld) not found and could not be installed: run 'sudo apt-get install clang lld' (Debian/Ubuntu) or put an LLVM with the wasm32 target on PATH (or set IO_PGTABLE_CLANG)" >&2
fi
