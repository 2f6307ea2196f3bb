#!/usr/bin/env bash
# A/B comparison of two permgate binaries on loopback: the same backend and
# permission API, both gateways running side by side, measured in
# alternating rounds so drift of the machine hits both alike. Prints the
# median requests/s and p99 of each, and B/A. For "does this change cost
# throughput?".
#
#   benches/ab.sh A_BINARY B_BINARY [-c CONNS] [-d SECONDS] [-r ROUNDS] [--nocache]
#
# --nocache sets the grants cache TTL to 0 s (a permission API call per
# request). Pinned like the peer harness: wrk on CPU 0, servers on CPU 1.
# Needs wrk and taskset; installs nothing; stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

(($# >= 2)) || { echo "usage: $0 A_BINARY B_BINARY [-c CONNS] [-d SECONDS] [-r ROUNDS] [--nocache]" >&2; exit 2; }
A=$(realpath "$1") B=$(realpath "$2")
shift 2
CONNS=32 DURATION=5 ROUNDS=5 TTL=60s
while (($#)); do
  case "$1" in
    -c) CONNS=$2; shift 2 ;;
    -d) DURATION=$2; shift 2 ;;
    -r) ROUNDS=$2; shift 2 ;;
    --nocache) TTL=0s; shift ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
for tool in wrk taskset; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

HOST=127.0.0.1 BACKEND=19190 GRANTS=19191
declare -A PORT=([A]=19192 [B]=19193) ADMIN=([A]=19194 [B]=19195) BIN=([A]=$A [B]=$B)
# shellcheck source=benches/common.sh
. benches/common.sh
ports_free $BACKEND $GRANTS 19192 19193 19194 19195
cargo build --release --quiet --example bench_upstream

start_backend
for side in A B; do
  permgate_config "$side" "${PORT[$side]}" "${ADMIN[$side]}" "$TTL"
  taskset -c 1 "${BIN[$side]}" run --config "$DIR/$side.toml" &
  PIDS+=($!)
done
wait_ports $BACKEND $GRANTS ${PORT[A]} ${PORT[B]}

TARGET=/api/v2/integrations/credentials/42
declare -A RPS=() P99=()
for side in A B; do
  status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer bench-token' "http://$HOST:${PORT[$side]}$TARGET" || true)
  [[ $status == 200 ]] || { echo "$side answered $status, not 200" >&2; exit 1; }
  taskset -c 0 wrk -t1 -c"$CONNS" -d1s -H 'Authorization: Bearer bench-token' "http://$HOST:${PORT[$side]}$TARGET" >/dev/null
done
for round in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H 'Authorization: Bearer bench-token' "http://$HOST:${PORT[$side]}$TARGET")
    RPS[$side]+="$(awk '/^Requests\/sec/ {print $2}' <<<"$out") "
    P99[$side]+="$(awk '$1 == "99%" {print $2}' <<<"$out") "
  done
  last() { awk '{print $NF}' <<<"$1"; }
  echo "round $round: A $(last "${RPS[A]}") B $(last "${RPS[B]}") req/s" >&2
done
a=$(median <<<"${RPS[A]}") b=$(median <<<"${RPS[B]}")
printf '%-3s %-50s %10s  %s\n' side binary "req/s" "p99 per round"
printf '%-3s %-50s %10s  %s\n' A "$A" "$a" "${P99[A]}"
printf '%-3s %-50s %10s  %s\n' B "$B" "$b" "${P99[B]}"
awk -v a="$a" -v b="$b" -v c="$CONNS" -v t="$TTL" 'BEGIN { printf "B/A = %.3f  (%d connections, cache ttl %s, medians of rounds)\n", b / a, c, t }'
