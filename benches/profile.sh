#!/usr/bin/env bash
# Where each proxy's CPU time goes under the same load: perf samples
# (software cpu-clock, so it works in VMs without hardware counters) of
# permgate and of the nginx worker, each pinned on CPU 1 with the load
# generator on CPU 0, grouped by component (kernel, hyper, h2, tokio,
# rustls/ring, the allocator, permgate's own code...), then the hottest
# symbols.
#
#   benches/profile.sh [-d SECONDS] [-c CONNS] [--nocache | --h2] [BINARY]
#
#   default    HTTP/1.1 keep-alive, grants cached, beside nginx proxy_pass
#   --nocache  the permission API asked per request, beside nginx auth_request
#   --h2       HTTP/2 over TLS (h2load), beside nginx `ssl http2`
#
# Writes target/profile/{permgate,nginx}.{data,txt}. Needs perf, wrk (or
# h2load with --h2), nginx and openssl; installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=10 CONNS=32 MODE=cached
while (($#)); do
  case "$1" in
    -d) DURATION=$2; shift 2 ;;
    -c) CONNS=$2; shift 2 ;;
    --nocache) MODE=nocache; shift ;;
    --h2) MODE=h2; shift ;;
    -*) echo "usage: $0 [-d SECONDS] [-c CONNS] [--nocache | --h2] [BINARY]" >&2; exit 2 ;;
    *) break ;;
  esac
done
BIN=${1:-target/release/permgate}
LOAD=wrk
[[ $MODE == h2 ]] && LOAD=h2load
missing=()
for tool in perf nginx openssl taskset "$LOAD"; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
((${#missing[@]} == 0)) || { echo "missing: ${missing[*]}" >&2; exit 1; }
if (($# == 0)); then
  cargo build --release --quiet --bin permgate
fi
cargo build --release --quiet --example bench_upstream

HOST=127.0.0.1 BACKEND=19340 GRANTS=19341 PERMGATE=19342 ADMIN=19343 NGINX_PORT=19344
# shellcheck source=benches/common.sh
. benches/common.sh
ports_free $BACKEND $GRANTS $PERMGATE $ADMIN $NGINX_PORT
start_backend
make_cert

TTL=60s TLS="" LISTEN="" AUTHREQ="" SCHEME=http
case $MODE in
  nocache) TTL=0s AUTHREQ="auth_request /_authz;" ;;
  h2) TLS=tls LISTEN="ssl http2" SCHEME=https ;;
esac
permgate_config permgate $PERMGATE $ADMIN $TTL $TLS
taskset -c 1 "$BIN" run --config "$DIR/permgate.toml" &
PG=$!
PIDS+=("$PG")
nginx_config nginx $NGINX_PORT "$LISTEN" "$AUTHREQ"
taskset -c 1 nginx -c "$DIR/nginx/nginx.conf" -e "$DIR/nginx/error.log" &
PIDS+=($!)
NG_MASTER=$!
wait_ports $BACKEND $GRANTS $PERMGATE $NGINX_PORT
NG=$(awk -v p="$NG_MASTER" '{ if ($4 == p) print $1 }' /proc/[0-9]*/stat 2>/dev/null | head -n1)
[[ -n $NG ]] || { echo "nginx worker not found" >&2; exit 1; }

TARGET=/api/v2/integrations/credentials/42
AUTH='Authorization: Bearer bench-token'
OUTDIR=target/profile
mkdir -p "$OUTDIR"

# Load on port $1 for $2 seconds; prints the number of requests answered.
load() {
  if [[ $MODE == h2 ]]; then
    taskset -c 0 h2load -t1 -c"$CONNS" -m1 -D "$2" -H "$AUTH" "$SCHEME://$HOST:$1$TARGET" 2>&1 \
      | awk '/^requests:/ {print $8}'
  else
    taskset -c 0 wrk -t1 -c"$CONNS" -d"${2}s" -H "$AUTH" "$SCHEME://$HOST:$1$TARGET" \
      | awk '/requests in/ {print $1}'
  fi
}


# Components, matched on the symbol (first match wins), then on the DSO.
GROUPS_AWK='
  function group(dso, sym) {
    if (dso ~ /kernel/) return "kernel"
    if (sym ~ /^(mi_|_mi_|mi_heap|mi_segment|mi_page)/) return "allocator (mimalloc)"
    if (sym ~ /(^|[<( ])hyper(_util)?::/) return "hyper"
    if (sym ~ /(^|[<( ])h2::/) return "h2"
    if (sym ~ /(^|[<( ])tokio(_rustls)?::/ && sym !~ /rustls/) return "tokio"
    if (sym ~ /rustls|ring_core|ring::/) return "TLS (rustls, ring)"
    if (sym ~ /(^|[<( ])moka::/) return "grants cache (moka)"
    if (sym ~ /(^|[<( ])(http|httparse|bytes|serde_json|serde_core|serde)::/) return "http, httparse, bytes, serde"
    if (sym ~ /(^|[<( ])permgate::/) return "permgate"
    if (sym ~ /(^|[<( ])(core|alloc|std)::/) return "Rust std"
    if (dso ~ /vdso/) return "clock reads (vdso)"
    if (dso ~ /libc|ld-linux/) return "libc (memcpy, syscall stubs)"
    if (dso ~ /libssl|libcrypto/) return "TLS (OpenSSL)"
    if (dso ~ /nginx/) return "nginx"
    return "other"
  }'

# perf record of pid $2 under load on port $3; the report in $OUTDIR/$1.txt.
profile() { # name pid port
  local name=$1 pid=$2 port=$3
  local before after requests us
  load "$port" 2 >/dev/null # warm-up
  before=$(cpu_ticks "$pid")
  load "$port" "$DURATION" >"$OUTDIR/$name.requests" &
  local lg=$!
  sleep 1
  perf record -q -e cpu-clock -F 4999 -p "$pid" -o "$OUTDIR/$name.data" -- sleep $((DURATION - 2)) 2>/dev/null
  wait "$lg"
  after=$(cpu_ticks "$pid")
  requests=$(cat "$OUTDIR/$name.requests")
  us=$(awk -v t=$((after - before)) -v n="${requests:-0}" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", (n > 0 ? t * 1e6 / hz / n : 0) }')
  perf report -i "$OUTDIR/$name.data" --stdio --no-children -n --sort dso,sym --percent-limit 0 2>/dev/null \
    | awk '/^ +[0-9.]+%/' >"$OUTDIR/$name.symbols"
  {
    echo "## $name ($MODE, $CONNS connections): $requests requests, $us µs CPU per request"
    echo
    echo "  share   µs/req  component"
    awk -v us="$us" "$GROUPS_AWK"'
      { n = $2; dso = $3; sym = $0
        sub(/^ +[0-9.]+% +[0-9]+ +[^ ]+ +\[[^]]+\] +/, "", sym)
        samples[group(dso, sym)] += n; total += n }
      END { for (g in samples) { f = samples[g] / total
              printf "%6.1f%%  %6.2f  %s\n", 100 * f, f * us, g } }' "$OUTDIR/$name.symbols" | sort -rn
    echo
    echo "hottest symbols:"
    head -n 20 "$OUTDIR/$name.symbols" | cut -c1-150
    echo
  } >"$OUTDIR/$name.txt"
  cat "$OUTDIR/$name.txt"
}

profile permgate "$PG" $PERMGATE
profile nginx "$NG" $NGINX_PORT
