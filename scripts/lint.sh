#!/usr/bin/env bash
# Formatting and lints, as every change must pass them.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian/target}"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
