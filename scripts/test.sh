#!/usr/bin/env bash
# Runs Meridian's whole test suite. On a fresh Debian machine it first
# installs what RocksDB's build needs (as root, with apt); otherwise it stops
# and names the missing packages.
#
# Build output goes to $CARGO_TARGET_DIR, by default ~/.cache/meridian/target,
# outside the checkout: a second run on the same machine (CI included) reuses
# the RocksDB build, which takes 10-30 minutes on two cores.
#
# Extra arguments go to the test runner, e.g. `scripts/test.sh -p meridian-keys`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
if command -v dpkg-query >/dev/null 2>&1; then
  # libclang-dev brings libclang (bindgen) and clang's own headers (stdbool.h).
  for pkg in libclang-dev g++ make; do
    have_pkg "$pkg" || missing+=("$pkg")
  done
else
  ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=("libclang (LLVM/clang development files)")
  command -v c++ >/dev/null 2>&1 || missing+=("a C++ compiler")
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q "${missing[@]}" >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
  else
    echo "scripts/test.sh: missing system packages: ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian/target}"
echo "scripts/test.sh: build output in $CARGO_TARGET_DIR" >&2

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  # nextest does not run doctests.
  cargo test --workspace --doc "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
