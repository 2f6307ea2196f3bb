#!/usr/bin/env bash
# permgate beside nginx (and haproxy) on loopback, all in front of the same
# backend and permission API (examples/bench_upstream.rs), pinned (load
# generator on CPU 0, every server on CPU 1), one worker each, the setups
# alternating over rounds (medians). Rows:
#
#   plain HTTP/1.1, for each connection count: nginx-proxy (`proxy_pass`,
#     no authorization), haproxy-proxy, permgate (grants cached, ratio to
#     nginx-proxy), nginx-authreq (`auth_request`: the permission API per
#     request) and permgate-nocache (ttl 0 s, ratio to nginx-authreq);
#   TLS 1.3 (the same throwaway P-256 certificate for both): keep-alive,
#     new connections (a handshake per request: `Connection: close`), and
#     HTTP/2 over TLS with h2load when it is installed;
#   memory: RSS of permgate and of the nginx-proxy worker before, at the
#     peak under `wrk -c MEMCONNS` keep-alive, and 30 s after it closes.
#
# Each row has requests/s, the ratio to its peer, p50/p99 (wrk), and the
# proxy's CPU µs per request (utime+stime from /proc over the run).
# Writes OUT/peers.md, OUT/peers.csv and OUT/peers.png (the bar chart,
# examples/peer_chart.rs) and prints the Markdown.
#
#   benches/peers.sh [-c 32,128] [-d 8] [-r 3] [-m 5000] [--no-tls] [--no-mem] [-o DIR]
#
# Needs nginx (with auth_request), wrk, openssl, curl and taskset; haproxy
# and h2load (nghttp2-client) add rows when present. Installs nothing: it
# names what is missing. Stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."

CONNS=32,128 DURATION=8 ROUNDS=3 MEMCONNS=5000 TLS=1 MEM=1 OUT=target/peers
while (($#)); do
  case "$1" in
    -c) CONNS=$2; shift 2 ;;
    -d) DURATION=$2; shift 2 ;;
    -r) ROUNDS=$2; shift 2 ;;
    -m) MEMCONNS=$2; shift 2 ;;
    -o) OUT=$2; shift 2 ;;
    --no-tls) TLS=0; shift ;;
    --no-mem) MEM=0; shift ;;
    *) echo "usage: $0 [-c 32,128] [-d SECONDS] [-r ROUNDS] [-m MEMCONNS] [--no-tls] [--no-mem] [-o DIR]" >&2; exit 2 ;;
  esac
done
IFS=, read -r -a CONN_LIST <<<"$CONNS"

missing=()
for tool in nginx wrk openssl curl taskset cargo; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
((${#missing[@]} == 0)) || { echo "missing: ${missing[*]}" >&2; exit 1; }
nginx -V 2>&1 | grep -q -- --with-http_auth_request_module \
  || { echo "missing: nginx with the auth_request module" >&2; exit 1; }
HAPROXY=1 H2=1
command -v haproxy >/dev/null || { HAPROXY=0; echo "note: haproxy missing: no haproxy-proxy rows" >&2; }
command -v h2load >/dev/null || { H2=0; echo "note: h2load missing (apt-get install nghttp2-client): no HTTP/2 rows" >&2; }
# Descriptors: the memory run holds MEMCONNS client connections and up to
# as many upstream ones in the proxy, and MEMCONNS in wrk.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
NOFILE=$(ulimit -n)
if ((MEM)) && ((NOFILE < 2 * MEMCONNS + 1024)); then
  echo "note: ulimit -n is $NOFILE, under the $((2 * MEMCONNS + 1024)) that $MEMCONNS connections need: no memory rows" >&2
  MEM=0
fi

HOST=127.0.0.1 BACKEND=19300 GRANTS=19301
declare -A PORT=(
  [nginx-proxy]=19310 [haproxy-proxy]=19311 [nginx-authreq]=19312
  [permgate]=19313 [permgate-nocache]=19314 [nginx-tls]=19315 [permgate-tls]=19316
)
# shellcheck source=benches/common.sh
. benches/common.sh
ports_free $BACKEND $GRANTS "${PORT[@]}" 19320 19321 19322
cargo build --release --quiet --bin permgate
cargo build --release --quiet --example bench_upstream --example peer_chart
mkdir -p "$OUT"

start_backend
make_cert

declare -A PROC=()
start_permgate() { # name port admin-port ttl [tls]
  permgate_config "$@"
  taskset -c 1 target/release/permgate run --config "$DIR/$1.toml" &
  PIDS+=($!) PROC[$1]=$!
}

start_nginx() { # name listen-extra location-extra
  nginx_config "$1" "${PORT[$1]}" "$2" "$3"
  taskset -c 1 nginx -c "$DIR/$1/nginx.conf" -e "$DIR/$1/error.log" &
  PIDS+=($!) PROC[$1]=$!
}

start_haproxy() {
  cat >"$DIR/haproxy.cfg" <<HAPROXY
global
    nbthread 1
    maxconn $((NOFILE / 2 - 100))
defaults
    mode http
    option http-keep-alive
    http-reuse safe
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout http-keep-alive 120s
frontend fe
    bind $HOST:${PORT[haproxy-proxy]}
    default_backend be
backend be
    server app $HOST:$BACKEND
HAPROXY
  taskset -c 1 haproxy -db -f "$DIR/haproxy.cfg" >"$DIR/haproxy.log" 2>&1 &
  PIDS+=($!) PROC[haproxy-proxy]=$!
}

start_nginx nginx-proxy "" ""
start_nginx nginx-authreq "" "auth_request /_authz;"
start_permgate permgate "${PORT[permgate]}" 19320 60s
start_permgate permgate-nocache "${PORT[permgate-nocache]}" 19321 0s
((HAPROXY)) && start_haproxy
if ((TLS)); then
  start_nginx nginx-tls "ssl http2" ""
  start_permgate permgate-tls "${PORT[permgate-tls]}" 19322 60s tls
fi
# Only the setups started: without TLS or haproxy their ports stay closed.
STARTED=(nginx-proxy nginx-authreq permgate permgate-nocache)
((HAPROXY)) && STARTED+=(haproxy-proxy)
((TLS)) && STARTED+=(nginx-tls permgate-tls)
for s in "${STARTED[@]}"; do wait_ports "${PORT[$s]}"; done
wait_ports $BACKEND $GRANTS

TARGET=/api/v2/integrations/credentials/42
AUTH='Authorization: Bearer bench-token'
url() { # setup
  case $1 in
    *-tls) echo "https://$HOST:${PORT[$1]}$TARGET" ;;
    *) echo "http://$HOST:${PORT[$1]}$TARGET" ;;
  esac
}
for s in "${!PROC[@]}"; do
  status=$(curl -s -k -o /dev/null -w '%{http_code}' -H "$AUTH" "$(url "$s")" || true)
  [[ $status == 200 ]] || { echo "$s answered $status, not 200" >&2; exit 1; }
done
for s in permgate permgate-nocache nginx-authreq; do
  status=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$(url "$s")" || true)
  [[ $status == 401 || $status == 403 ]] || { echo "$s let a wrong token through ($status)" >&2; exit 1; }
done

# RSS in KiB of a process, or of its one child (the nginx worker).
rss_of() { # setup
  local pid=${PROC[$1]} child
  if [[ $1 == nginx-* ]]; then
    child=$(awk -v p="$pid" '{ if ($4 == p) print $1 }' /proc/[0-9]*/stat 2>/dev/null | head -n1)
    pid=${child:-$pid}
  fi
  awk '/^VmRSS/ {print $2}' "/proc/$pid/status"
}

# One measured run: "req/s p50 p99 cpu-µs/req errors".
measure() { # setup mode conns
  local s=$1 mode=$2 c=$3 u out before after n rps p50 p99 errors
  u=$(url "$s")
  local args=(-t1 -c"$c" -H "$AUTH")
  [[ $mode == new ]] && args+=(-H 'Connection: close')
  if [[ $mode == h2 ]]; then
    before=$(cpu_ticks "${PROC[$s]}")
    out=$(taskset -c 0 h2load -t1 -c"$c" -m1 -D "$DURATION" --warm-up-time 1 -H "$AUTH" "$u" 2>&1)
    after=$(cpu_ticks "${PROC[$s]}")
    n=$(awk '/^requests:/ {print $8}' <<<"$out")
    rps=$(awk '/^finished in/ {print $4}' <<<"$out")
    errors=$(awk '/^requests:/ {print $10 + $12}' <<<"$out")
    p50=- p99=-
  else
    taskset -c 0 wrk "${args[@]}" -d1s "$u" >/dev/null
    before=$(cpu_ticks "${PROC[$s]}")
    out=$(taskset -c 0 wrk "${args[@]}" -d"${DURATION}s" --latency "$u")
    after=$(cpu_ticks "${PROC[$s]}")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out" | to_ms)
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out" | to_ms)
    errors=$(awk '/Non-2xx/ {e += $NF} /Socket errors/ {gsub(",", ""); e += $4 + $6 + $8 + $10} END {print e + 0}' <<<"$out")
  fi
  echo "${rps:-0} $p50 $p99 $(awk -v t=$((after - before)) -v n="${n:-0}" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }') ${errors:-0}"
}

# Rows: "group|setup|mode|peer".
ROWS=()
for c in "${CONN_LIST[@]}"; do
  ROWS+=("HTTP/1.1 $c conns|nginx-proxy|ka|" "HTTP/1.1 $c conns|permgate|ka|nginx-proxy")
  ((HAPROXY)) && ROWS+=("HTTP/1.1 $c conns|haproxy-proxy|ka|nginx-proxy")
  ROWS+=("HTTP/1.1 $c conns|nginx-authreq|ka|" "HTTP/1.1 $c conns|permgate-nocache|ka|nginx-authreq")
done
if ((TLS)); then
  c=${CONN_LIST[0]}
  ROWS+=("TLS keep-alive $c conns|nginx-tls|ka|" "TLS keep-alive $c conns|permgate-tls|ka|nginx-tls")
  ROWS+=("TLS new connection per request $c conns|nginx-tls|new|" "TLS new connection per request $c conns|permgate-tls|new|nginx-tls")
  ((H2)) && ROWS+=("HTTP/2 over TLS $c conns|nginx-tls|h2|" "HTTP/2 over TLS $c conns|permgate-tls|h2|nginx-tls")
fi

declare -A RPS=() P50=() P99=() CPU=() ERR=()
n=${#ROWS[@]}
for r in $(seq 1 "$ROUNDS"); do
  for ((i = 0; i < n; i++)); do
    row=${ROWS[$(((i + r - 1) % n))]} # a different order each round
    IFS='|' read -r group s mode _ <<<"$row"
    c=${group% conns}; c=${c##* }
    read -r rps p50 p99 cpu errors < <(measure "$s" "$mode" "$c")
    key="$group|$s"
    RPS[$key]+="$rps " P50[$key]+="$p50 " P99[$key]+="$p99 " CPU[$key]+="$cpu "
    ERR[$key]=$((${ERR[$key]:-0} + errors))
    sleep 0.3
  done
  echo "round $r of $ROUNDS done" >&2
done

med() { [[ $1 == *-* ]] && echo - || median <<<"$1"; }
{
  echo "## permgate beside its peers"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs; $(nginx -v 2>&1 | sed 's/.*: //'); $(wrk -v 2>&1 | awk 'NR == 1 {print $1, $2}')$( ((H2)) && echo "; $(h2load --version | head -n1)")."
  echo "Pinned: load generator on CPU 0, servers on CPU 1, one worker each; ${DURATION}s runs after a 1 s warm-up, $ROUNDS rounds alternating, medians."
  echo
  echo "| test | setup | req/s | vs | p50 | p99 | proxy CPU µs/req | errors |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|"
} >"$OUT/peers.md"
echo "group,setup,rps,ratio,peer,p50_ms,p99_ms,cpu_us_per_req,errors" >"$OUT/peers.csv"
for row in "${ROWS[@]}"; do
  IFS='|' read -r group s mode peer <<<"$row"
  key="$group|$s"
  rps=$(median <<<"${RPS[$key]}")
  ratio=- vs=""
  if [[ -n $peer ]]; then
    base=$(median <<<"${RPS[$group|$peer]}")
    ratio=$(awk -v a="$rps" -v b="$base" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    vs="${ratio}x $peer"
  fi
  p50=$(med "${P50[$key]}") p99=$(med "${P99[$key]}") cpu=$(median <<<"${CPU[$key]}")
  printf '| %s | %s | %.0f | %s | %s | %s | %s | %s |\n' "$group" "$s" "$rps" "${vs:--}" \
    "${p50/%/ ms}" "${p99/%/ ms}" "$cpu" "${ERR[$key]}" | sed 's/- ms/-/g' >>"$OUT/peers.md"
  echo "$group,$s,$rps,$ratio,$peer,$p50,$p99,$cpu,${ERR[$key]}" >>"$OUT/peers.csv"
done

if ((MEM)); then
  # The two proxies one after the other, each idle for 5 s first.
  {
    echo
    echo "Memory: RSS with $MEMCONNS keep-alive connections (\`wrk -c $MEMCONNS -d 10s\`), the nginx worker against permgate."
    echo
    echo "| process | before | peak under load | 30 s after close | per connection at peak |"
    echo "|---|---:|---:|---:|---:|"
  } >>"$OUT/peers.md"
  for s in nginx-proxy permgate; do
    sleep 5
    before=$(rss_of "$s")
    peak=$before
    taskset -c 0 wrk -t1 -c"$MEMCONNS" -d10s --timeout 10s -H "$AUTH" "$(url "$s")" >"$DIR/mem-$s.txt" 2>&1 &
    load=$!
    while kill -0 "$load" 2>/dev/null; do
      now=$(rss_of "$s"); ((now > peak)) && peak=$now
      sleep 0.2
    done
    wait "$load" || true
    sleep 30
    after=$(rss_of "$s")
    awk -v s="$s" -v b="$before" -v p="$peak" -v a="$after" -v n="$MEMCONNS" 'BEGIN {
      printf "| %s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f KiB |\n", s, b / 1024, p / 1024, a / 1024, (p - b) / n }' >>"$OUT/peers.md"
    echo "memory,$s,$before,$peak,$after" >>"$OUT/peers.csv"
  done
fi

target/release/examples/peer_chart "$OUT/peers.csv" "$OUT/peers.png"
cat "$OUT/peers.md"
echo >&2
echo "written: $OUT/peers.md $OUT/peers.csv $OUT/peers.png" >&2
