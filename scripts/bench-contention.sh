#!/usr/bin/env bash
# Contention over pgwire, binary against binary: for each meridian binary given, a fresh
# 3-process cluster on loopback (fsync on, 3 replicas), pgbench's minimal-SQL tpcb-like at
# scale 1 (8 clients, 15 s, simple then extended; pgbench does not retry, so a 40001 is a
# failed transaction; the errors go to WORKDIR/tpcb-MODE.err), then the SERIALIZABLE bank
# transfers of peer-pg-bank.sh at 16 and 64 clients (pgbench retries 40001), then one hot row
# under 32 clients (scripts/pgbench/hot_*.sql).
# The PostgreSQL peer: ../shared/peers/pgbench/peer-pg.sh postgres 1 and peer-pg-bank.sh.
# Usage: scripts/bench-contention.sh BIN [BIN...]
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
peers="$here/../shared/peers/pgbench"
. "$here/scripts/lib/three-nodes.sh"
# One hot row, 32 clients: increments in auto-commit, then explicit read-then-update
# transactions (pgbench does not retry: a 40001 is a failed transaction).
hot_key() { # tag, database (PGHOST/PGPORT/PGUSER set)
  psql -X -q -d "$2" -c "CREATE TABLE hot (k INT PRIMARY KEY, v BIGINT)" -c "INSERT INTO hot VALUES (1, 0)"
  for w in hot_update hot_txn; do
    out=$(pgbench -n -c 32 -j 2 -T 15 -M extended -f "$here/scripts/pgbench/$w.sql" -r "$2" 2>&1)
    echo "$1 $w c32: $(echo "$out" | grep -E '^tps|failed trans|latency average' | tr '\n' ' ')"
  done
}
for M in "$@"; do
TAG=$(basename "$M"); W=/tmp/meridian-bench-contention/$TAG
rm -rf "$W" && mkdir -p "$W"
start_three_nodes "$M" "$W" 2647 >/dev/null
export PGHOST=127.0.0.1 PGPORT=26471 PGUSER=root
psql -X -q -d defaultdb -c "CREATE DATABASE bench" -c "CREATE DATABASE bank"
"$peers"/gen_init.sh 1 > $W/init.sql
psql -X -q -v ON_ERROR_STOP=1 -d bench -f $W/init.sql > $W/init.log 2>&1
for m in simple extended; do
out=$(pgbench -n -c 8 -j 2 -T 15 -M $m -D scale=1 -f "$peers"/mb_tpcb.sql --failures-detailed --verbose-errors bench 2>$W/tpcb-$m.err)
echo "$TAG tpcb $m: $(echo "$out" | grep -E '^tps|failed trans' | tr '\n' ' ')"
done
{
  echo "CREATE TABLE mb_bank (id INT PRIMARY KEY, balance BIGINT);"
  awk -v n=1000 'BEGIN { print "BEGIN;"; for (i = 1; i <= n; i++) printf "INSERT INTO mb_bank (id, balance) VALUES (%d, 1000);\n", i; print "COMMIT;" }'
} > "$W/bank.sql"
psql -X -q -v ON_ERROR_STOP=1 -d bank -f "$W/bank.sql" >/dev/null 2>&1
for c in 16 64; do
out=$(pgbench -n -c $c -j 2 -T 15 -M extended --max-tries=100 -D accounts=1000 -f "$peers"/mb_bank.sql bank 2>&1)
echo "$TAG bank c$c: $(echo "$out" | grep -E '^tps|retried|latency average' | tr '\n' ' ')"
done
hot_key "$TAG" bank
kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null
done
echo "== PostgreSQL 15 (one process, fsync on): the same workloads"
unset PGHOST PGPORT PGUSER
PEER_PG_DIR=/tmp/meridian-bench-contention/pg bash "$peers/peer-pg.sh" postgres 1 | grep tpcb
PEER_PG_DIR=/tmp/meridian-bench-contention/pg-bank bash "$peers/peer-pg-bank.sh" postgres 1000 15 | grep -E "c16|c64"
# The hot row on a throwaway PostgreSQL 15, as peer-pg.sh starts one.
B=/usr/lib/postgresql/15/bin; P=/tmp/meridian-bench-contention/pg-hot
rm -rf "$P" && mkdir -p "$P/data" "$P/sock" && chown -R postgres:postgres "$P"
su postgres -c "$B/initdb -D $P/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8" >/dev/null
su postgres -c "$B/pg_ctl -D $P/data -l $P/server.log -o \"-p 55432 -k $P/sock -c listen_addresses=127.0.0.1 -c max_connections=200\" -w start" >/dev/null
trap "su postgres -c '$B/pg_ctl -D $P/data -m fast stop' >/dev/null" EXIT
export PGHOST=127.0.0.1 PGPORT=55432 PGUSER=postgres
createdb hot
hot_key postgres hot
