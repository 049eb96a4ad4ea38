#!/usr/bin/env bash
# `meridian bench kv` against a 3-process cluster on this machine, fsync on,
# 256-byte values: concurrency 1, 16 and 64, write-only and 95% reads.
# Then etcd 3.4 the same way, through ../shared/peers/etcd/peer-etcd.sh, in
# the same run, when that script exists beside the checkout. Usage: scripts/bench-kv.sh [SECONDS] [WORKDIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-20}
W=${2:-/tmp/meridian-bench-kv}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/meridian/target}"
# --workspace: the same features as every other build, so RocksDB is built once per profile.
(cd "$here" && cargo build --release --workspace --bins >&2)
M="$CARGO_TARGET_DIR/release/meridian"
rm -rf "$W" && mkdir -p "$W"
"$M" cert create-ca --certs-dir "$W/certs" >/dev/null
"$M" cert create-node --certs-dir "$W/certs" 127.0.0.1 localhost >/dev/null
pids=()
for i in 1 2 3; do
  MERIDIAN_LOG=warn "$M" start --store "$W/n$i" --listen 127.0.0.1:2646$i \
    --join 127.0.0.1:26461,127.0.0.1:26462 --certs-dir "$W/certs" \
    --locality region=local,zone=z$i >"$W/n$i.log" 2>&1 &
  pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
sleep 1
"$M" init --host 127.0.0.1:26461 --certs-dir "$W/certs"
H="--host 127.0.0.1:26461 --certs-dir $W/certs"
# Wait for 3 replicas of every range.
for _ in $(seq 1 120); do
  if "$M" debug ranges $H --json 2>/dev/null | python3 -c '
import json,sys; r=json.load(sys.stdin); sys.exit(0 if r and all(len(x["voters"])==3 and x["leaseholder"] for x in r) else 1)'; then break; fi
  sleep 1
done
"$M" debug ranges $H
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/{print $2}') GiB; $(date -u +%F)"
for read in 0 95; do
  for c in 1 16 64; do
    echo "== meridian bench kv --concurrency $c --read-percent $read --duration $secs"
    "$M" bench kv $H --concurrency "$c" --read-percent "$read" --duration "$secs" \
      --keys 100000 --value-bytes 256 --json 2>/dev/null | python3 -c '
import json,sys; s=json.load(sys.stdin)
for k in ("write","read","total"):
    o=s[k]
    if o["ops"] or o["errors"]:
        print("  %-5s %9.0f ops/s  p50 %.2f ms  p99 %.2f ms  max %.1f ms  errors %d"
              % (k, o["ops_per_sec"], o["p50_ms"], o["p99_ms"], o["max_ms"], o["errors"]))'
  done
done
kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true
# The peer is measured by a script kept outside this repository (beside the
# checkout, in ../shared/peers). Without it the Meridian figures still stand,
# but they have no peer to be compared with in this run.
peer="$here/../shared/peers/etcd/peer-etcd.sh"
if [ -f "$peer" ]; then
  echo "== etcd 3.4 ($peer)"
  bash "$peer" "$W/etcd"
else
  echo "== etcd 3.4: skipped, no peer script at $peer (the figures above have no peer in this run)"
fi
