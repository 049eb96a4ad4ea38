# Sourced by the benchmark scripts: three `meridian start` processes on loopback (fsync on,
# 3 replicas, zones z1-z3 of region "local"), initialized, with 3 voters and a leaseholder
# for every range. Stopped when the sourcing script exits.
# start_three_nodes BIN WORKDIR PORT_PREFIX: node i listens on 127.0.0.1:PORT_PREFIX<i>;
# sets pids (the processes) and H (the --host and --certs-dir flags for node 1).
start_three_nodes() {
  local M=$1 W=$2 P=$3
  "$M" cert create-ca --certs-dir "$W/certs" >/dev/null
  "$M" cert create-node --certs-dir "$W/certs" 127.0.0.1 localhost >/dev/null
  pids=()
  for i in 1 2 3; do
    MERIDIAN_LOG=warn "$M" start --store "$W/n$i" --listen "127.0.0.1:$P$i" \
      --join "127.0.0.1:${P}1,127.0.0.1:${P}2" --certs-dir "$W/certs" \
      --locality "region=local,zone=z$i" >"$W/n$i.log" 2>&1 &
    pids+=($!)
  done
  trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
  sleep 1
  "$M" init --host "127.0.0.1:${P}1" --certs-dir "$W/certs"
  H="--host 127.0.0.1:${P}1 --certs-dir $W/certs"
  for _ in $(seq 1 120); do
    if "$M" debug ranges $H --json 2>/dev/null | python3 -c '
import json,sys; r=json.load(sys.stdin); sys.exit(0 if r and all(len(x["voters"])==3 and x["leaseholder"] for x in r) else 1)'; then return 0; fi
    sleep 1
  done
  echo "the cluster did not get 3 voters and a leaseholder for every range in 120 s" >&2
  return 1
}
