#!/usr/bin/env bash
# SQL and transactions on a 3-process cluster beside PostgreSQL 15, in one run:
#   1. pgbench's minimal-SQL workloads (../shared/peers/pgbench/peer-pg.sh) against node 1's SQL port;
#   2. bank transfers at SERIALIZABLE over pgwire (peer-pg-bank.sh) at 1, 16 and 64 clients;
#   3. `meridian bench bank` (the same transfers through the KV transaction coordinator) at 1, 16, 64,
#      with the accounts on 1 range (one-phase commits), then on 10 (mostly parallel commits);
#   4. the same pgbench and bank scripts against a throwaway PostgreSQL 15.
# Usage: scripts/bench-sql.sh [SECONDS] [WORKDIR]. MERIDIAN_BIN=path skips the build.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-15}
W=${2:-/tmp/meridian-bench-sql}
peers="$here/../shared/peers/pgbench"
. "$here/scripts/lib/three-nodes.sh"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian/target}"
if [ -z "${MERIDIAN_BIN:-}" ]; then
  # --workspace: the same features as every other build, so RocksDB is built once per profile.
  (cd "$here" && cargo build --release --workspace --bins >&2)
  MERIDIAN_BIN="$CARGO_TARGET_DIR/release/meridian"
fi
M=$MERIDIAN_BIN
rm -rf "$W" && mkdir -p "$W"
start_three_nodes "$M" "$W" 2647
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%F)"
export PGHOST=127.0.0.1 PGPORT=26471 PGUSER=root
psql -X -q -d defaultdb -c "CREATE DATABASE bench" -c "CREATE DATABASE bank"
echo "== Meridian (3 processes, 3 replicas, fsync on): pgbench minimal-SQL workloads, scale 1"
PEER_PG_DIR="$W/pg-meridian" bash "$peers/peer-pg.sh" 127.0.0.1:26471 1 root bench
echo "== Meridian: bank transfers over pgwire, 1000 accounts, ${secs}s per concurrency"
PEER_PG_DIR="$W/pg-meridian-bank" bash "$peers/peer-pg-bank.sh" 127.0.0.1:26471 1000 "$secs" root bank || true
echo "== Meridian: meridian bench bank (KV transactions), 1000 accounts, on 1 range, then on 10"
# On one range a transfer commits in one phase; on ten, most transfers
# touch two ranges and commit in parallel.
for r in 1 10; do
  for c in 1 16 64; do
    "$M" bench bank $H --accounts 1000 --ranges "$r" --concurrency "$c" --duration "$secs" --json 2>/dev/null | python3 -c '
import json,sys; s=json.load(sys.stdin)
print("bank-kv ranges %-2s c%-3s %s" % (sys.argv[1], sys.argv[2], {k: s[k] for k in s if k in ("txn_per_sec","p50_ms","p99_ms","max_ms","retries","failed","total","expected_total")}))' "$r" "$c"
  done
done
kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true
unset PGHOST PGPORT PGUSER
echo "== PostgreSQL 15 (one process, fsync on): the same scripts"
PEER_PG_DIR="$W/pg" bash "$peers/peer-pg.sh" postgres 1
PEER_PG_DIR="$W/pg-bank" bash "$peers/peer-pg-bank.sh" postgres 1000 "$secs" || true
