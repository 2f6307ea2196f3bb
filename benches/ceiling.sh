#!/usr/bin/env bash
# How far permgate is from what its HTTP stack allows: nginx `proxy_pass`,
# a bare hyper proxy (examples/bare_proxy.rs: the same hyper settings, no
# timers, no rewriting, no authorization) and permgate with cached grants,
# all in front of examples/bench_upstream, pinned (wrk on CPU 0, servers on
# CPU 1), one worker each, alternating over rounds (medians).
#
#   benches/ceiling.sh [-c 32,128] [-d 8] [-r 3] [BINARY]
#
# Prints requests/s, p99 and the proxy's CPU µs per request of each, and
# the ratios to nginx. Needs nginx, wrk and taskset; installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=32,128 DURATION=8 ROUNDS=3
while (($#)); do
  case "$1" in
    -c) CONNS=$2; shift 2 ;;
    -d) DURATION=$2; shift 2 ;;
    -r) ROUNDS=$2; shift 2 ;;
    -*) echo "usage: $0 [-c 32,128] [-d SECONDS] [-r ROUNDS] [BINARY]" >&2; exit 2 ;;
    *) break ;;
  esac
done
IFS=, read -r -a CONN_LIST <<<"$CONNS"
BIN=${1:-target/release/permgate}
for tool in nginx wrk taskset openssl; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
(($# == 0)) && cargo build --release --quiet --bin permgate
cargo build --release --quiet --example bench_upstream --example bare_proxy

HOST=127.0.0.1 BACKEND=19350 GRANTS=19351
declare -A PORT=([nginx-proxy]=19352 [bare-hyper]=19353 [permgate]=19354) PROC=()
# shellcheck source=benches/common.sh
. benches/common.sh
ports_free $BACKEND $GRANTS "${PORT[@]}" 19355
start_backend
make_cert
nginx_config nginx-proxy "${PORT[nginx-proxy]}" "" ""
taskset -c 1 nginx -c "$DIR/nginx-proxy/nginx.conf" -e "$DIR/nginx-proxy/error.log" &
PIDS+=($!) PROC[nginx-proxy]=$!
taskset -c 1 target/release/examples/bare_proxy "$HOST:${PORT[bare-hyper]}" "$HOST:$BACKEND" &
PIDS+=($!) PROC[bare-hyper]=$!
permgate_config permgate "${PORT[permgate]}" 19355
taskset -c 1 "$BIN" run --config "$DIR/permgate.toml" 2>/dev/null &
PIDS+=($!) PROC[permgate]=$!
wait_ports $BACKEND $GRANTS "${PORT[@]}"

TARGET=/api/v2/integrations/credentials/42
AUTH='Authorization: Bearer bench-token'
declare -A RPS=() P99=() CPU=()
for ((r = 1; r <= ROUNDS; r++)); do
  for c in "${CONN_LIST[@]}"; do
    for s in nginx-proxy bare-hyper permgate; do
      u="http://$HOST:${PORT[$s]}$TARGET"
      taskset -c 0 wrk -t1 -c"$c" -d1s -H "$AUTH" "$u" >/dev/null
      before=$(cpu_ticks "${PROC[$s]}")
      out=$(taskset -c 0 wrk -t1 -c"$c" -d"${DURATION}s" --latency -H "$AUTH" "$u")
      after=$(cpu_ticks "${PROC[$s]}")
      n=$(awk '/requests in/ {print $1}' <<<"$out")
      RPS[$s,$c]+=" $(awk '/^Requests\/sec/ {print $2}' <<<"$out")"
      P99[$s,$c]+=" $(awk '$1 == "99%" {print $2}' <<<"$out" | to_ms)"
      CPU[$s,$c]+=" $(awk -v t=$((after - before)) -v n="$n" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')"
    done
  done
  echo "round $r of $ROUNDS done" >&2
done

echo "| conns | setup | req/s | vs nginx-proxy | vs bare-hyper | p99 | proxy CPU µs/req |"
echo "|---:|---|---:|---:|---:|---:|---:|"
for c in "${CONN_LIST[@]}"; do
  ng=$(median <<<"${RPS[nginx-proxy,$c]}")
  bare=$(median <<<"${RPS[bare-hyper,$c]}")
  for s in nginx-proxy bare-hyper permgate; do
    rps=$(median <<<"${RPS[$s,$c]}")
    awk -v c="$c" -v s="$s" -v r="$rps" -v n="$ng" -v b="$bare" -v p="$(median <<<"${P99[$s,$c]}")" \
      -v cpu="$(median <<<"${CPU[$s,$c]}")" \
      'BEGIN { printf "| %s | %s | %.0f | %.2fx | %.2fx | %.2f ms | %.1f |\n", c, s, r, r / n, r / b, p, cpu }'
  done
done
