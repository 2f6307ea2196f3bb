#!/usr/bin/env bash
# TLS beside nginx on loopback: permgate (grants cached) and nginx
# `proxy_pass` both terminating TLS with the same throwaway certificate in
# front of the same backend, pinned like the peer harness (wrk on CPU 0,
# servers on CPU 1, one worker each), measured in alternating rounds.
# Prints keep-alive requests/s and the new-connection rate (a TLS handshake
# per request: `Connection: close`), medians of the rounds.
#
#   benches/tls.sh [-c CONNS] [-d SECONDS] [-r ROUNDS]
#
# Needs nginx, wrk, openssl and taskset; installs nothing; stops what it
# started.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=32 DURATION=5 ROUNDS=3
while (($#)); do
  case "$1" in
    -c) CONNS=$2; shift 2 ;;
    -d) DURATION=$2; shift 2 ;;
    -r) ROUNDS=$2; shift 2 ;;
    *) echo "usage: $0 [-c CONNS] [-d SECONDS] [-r ROUNDS]" >&2; exit 2 ;;
  esac
done
missing=()
for tool in nginx wrk openssl taskset; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
((${#missing[@]} == 0)) || { echo "missing: ${missing[*]}" >&2; exit 1; }

HOST=127.0.0.1 BACKEND=19280 GRANTS=19281 PERMGATE=19282 ADMIN=19283 NGINX=19284
# shellcheck source=benches/common.sh
. benches/common.sh
ports_free $BACKEND $GRANTS $PERMGATE $ADMIN $NGINX
cargo build --release --quiet --bin permgate --example bench_upstream


make_cert

start_backend
permgate_config permgate $PERMGATE $ADMIN 60s tls
taskset -c 1 target/release/permgate run --config "$DIR/permgate.toml" &
PIDS+=($!)

nginx_config nginx $NGINX "ssl http2" ""
taskset -c 1 nginx -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/error.log" &
PIDS+=($!)

wait_ports $BACKEND $GRANTS $PERMGATE $NGINX

TARGET=/api/v2/integrations/credentials/42
AUTH='Authorization: Bearer bench-token'
for side in permgate:$PERMGATE nginx:$NGINX; do
  status=$(curl -s -k -o /dev/null -w '%{http_code}' -H "$AUTH" "https://$HOST:${side#*:}$TARGET" || true)
  [[ $status == 200 ]] || { echo "${side%%:*} answered $status, not 200" >&2; exit 1; }
  taskset -c 0 wrk -t1 -c"$CONNS" -d1s -H "$AUTH" "https://$HOST:${side#*:}$TARGET" >/dev/null
done

declare -A KEEP=() NEW=() P99=()
for round in $(seq 1 "$ROUNDS"); do
  for side in permgate:$PERMGATE nginx:$NGINX; do
    name=${side%%:*} url="https://$HOST:${side#*:}$TARGET"
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "$AUTH" "$url")
    KEEP[$name]+="$(awk '/^Requests\/sec/ {print $2}' <<<"$out") "
    P99[$name]+="$(awk '$1 == "99%" {print $2}' <<<"$out") "
    out=$(taskset -c 0 wrk -t1 -c"$CONNS" -d"${DURATION}s" -H "$AUTH" -H 'Connection: close' "$url")
    NEW[$name]+="$(awk '/^Requests\/sec/ {print $2}' <<<"$out") "
  done
  echo "round $round done" >&2
done
printf '%-9s %6s %18s %20s  %s\n' setup conns "keep-alive req/s" "new connections/s" "keep-alive p99 per round"
for name in permgate nginx; do
  printf '%-9s %6s %18s %20s  %s\n' "$name" "$CONNS" "$(median <<<"${KEEP[$name]}")" "$(median <<<"${NEW[$name]}")" "${P99[$name]}"
done
awk -v a="$(median <<<"${KEEP[nginx]}")" -v b="$(median <<<"${KEEP[permgate]}")" \
    -v c="$(median <<<"${NEW[nginx]}")" -v d="$(median <<<"${NEW[permgate]}")" \
    'BEGIN { printf "permgate/nginx: keep-alive %.2fx, new connections %.2fx\n", b / a, d / c }'
