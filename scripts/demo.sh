#!/usr/bin/env bash
# Meridian's front door: a 9-node cluster in 3 regions (us-east1, us-west1,
# europe-west1, with their round trips injected) in one process, and a SQL
# shell on it. On a fresh Debian machine it first installs what RocksDB's
# build needs, as scripts/test.sh does (scripts/lib/build-deps.sh), then
# builds the workspace in the dev profile exactly as the tests build it, so
# a build made by scripts/test.sh (or CI) on this machine is reused, and
# the other way round. The first build compiles RocksDB's C++: 10 to 30
# minutes on two cores.
#
# Arguments go to `meridian demo`, e.g. `scripts/demo.sh --nodes 3` or
# `scripts/demo.sh -e "SELECT gateway_region()"`; `--help` lists them.
set -euo pipefail
cd "$(dirname "$0")/.."
script=scripts/demo.sh
. scripts/lib/build-deps.sh

# What `cargo nextest run --workspace` (scripts/test.sh, CI) builds: the
# binaries and the test binaries. `cargo build --workspace --bins` would be
# less to build, but without the dev-dependencies cargo resolves other
# features for bindgen's dependencies, which changes RocksDB's build hash and
# compiles RocksDB a second time. Cargo's output goes to stderr; stdout
# carries the demo's alone.
cargo test --workspace --no-run >&2
exec "$CARGO_TARGET_DIR/debug/meridian" demo "$@"
