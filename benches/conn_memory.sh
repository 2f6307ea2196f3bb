#!/usr/bin/env bash
# Memory per idle keep-alive connection: permgate (grants cached, one
# worker) in front of examples/bench_upstream; examples/hold_connections
# opens CONNS connections, one request each (at most INFLIGHT at a time),
# and holds them idle. Prints permgate's RSS before, while holding, and
# 1 s and 30 s after the connections close, and the bytes per connection.
#
#   benches/conn_memory.sh [-n CONNS] [-k INFLIGHT] [BINARY]
#
# BINARY defaults to target/release/permgate, built with the examples
# first; with a BINARY nothing is built (the examples must exist). Installs
# nothing; stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=5000 INFLIGHT=32
while (($#)); do
  case "$1" in
    -n) CONNS=$2; shift 2 ;;
    -k) INFLIGHT=$2; shift 2 ;;
    -*) echo "usage: $0 [-n CONNS] [-k INFLIGHT] [BINARY]" >&2; exit 2 ;;
    *) break ;;
  esac
done
BIN=${1:-target/release/permgate}
if (($# == 0)); then
  cargo build --release --quiet --bin permgate
  cargo build --release --quiet --example bench_upstream --example hold_connections --example fixed_load
fi
# Every held connection is a descriptor here and in the backend.
ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) > CONNS + 512)) || { echo "ulimit -n is $(ulimit -n); $CONNS connections need more" >&2; exit 1; }

HOST=127.0.0.1 BACKEND=19290 GRANTS=19291 PERMGATE=19292 ADMIN=19293
# shellcheck source=benches/common.sh
. benches/common.sh
ports_free $BACKEND $GRANTS $PERMGATE $ADMIN
start_backend
permgate_config permgate $PERMGATE $ADMIN
taskset -c 1 "$BIN" run --config "$DIR/permgate.toml" &
PG=$!
PIDS+=("$PG")
wait_ports $BACKEND $GRANTS $PERMGATE

TARGET=/api/v2/integrations/credentials/42
AUTH='Bearer bench-token'
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PG/status"; }
target/release/examples/fixed_load "$HOST:$PERMGATE" "$TARGET" 2000 "$INFLIGHT" "$AUTH"
before=$(rss)

coproc HOLD { target/release/examples/hold_connections "$HOST:$PERMGATE" "$TARGET" "$CONNS" "$INFLIGHT" "$AUTH"; }
HOLD_PID=$HOLD_PID
read -r _ held <&"${HOLD[0]}"
sleep 1
holding=$(rss)
exec {HOLD[1]}>&-
wait "$HOLD_PID"
sleep 1
after1=$(rss)
sleep 29
after30=$(rss)

printf '| connections | before | holding | 1 s after close | 30 s after close | per connection |\n|---:|---:|---:|---:|---:|---:|\n'
awk -v n="$held" -v b="$before" -v h="$holding" -v a="$after1" -v z="$after30" 'BEGIN {
  printf "| %d | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f KiB |\n", n, b / 1024, h / 1024, a / 1024, z / 1024, (h - b) / n }'
