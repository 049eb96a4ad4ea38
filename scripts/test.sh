#!/usr/bin/env bash
# Runs Meridian's whole test suite. On a fresh Debian machine it first
# installs what RocksDB's build needs (as root, with apt); otherwise it stops
# and names the missing packages (scripts/lib/build-deps.sh).
#
# Build output goes to $CARGO_TARGET_DIR, by default ~/.cache/meridian/target,
# outside the checkout: a second run on the same machine (CI included) reuses
# the RocksDB build, which takes 10-30 minutes on two cores.
#
# Extra arguments go to the test runner, e.g. `scripts/test.sh -p meridian-keys`.
set -euo pipefail
cd "$(dirname "$0")/.."
script=scripts/test.sh
. scripts/lib/build-deps.sh

if cargo nextest --version >/dev/null 2>&1; then
  # No doctests: the code blocks in doc comments are `text` or `ignore`.
  # A `cargo test --doc` build would also resolve other features for
  # build-time dependencies (the root package's dev-dependencies bring
  # proc-macros) and compile RocksDB a second time.
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
